"""Shared Odoo-side fixtures: loopback SMTP servers, certificates, users, mailboxes."""

import contextlib
from unittest.mock import patch

import odoo

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.addons.mail.tests.common import mail_new_test_user

from smtp_servers import Pki, SmtpServer

PASSWORD = "app-pass-4f9Kq2"
MAILBOX_LOGIN = "billing@invoicing.test"


@contextlib.contextmanager
def real_smtp():
    """Let Odoo connect and send for real, as outside test mode (loopback servers only)."""
    with patch.object(odoo.modules.module, "current_test", False):
        yield


class SmtpInvoicingCase(AccountTestInvoicingCommon):
    """An accounting company with a licensed mailbox user and a STARTTLS loopback server."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = Pki()
        cls.addClassCleanup(cls.pki.cleanup)
        cls.server = cls.start_server(mode="starttls")
        cls.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.enabled", "True")
        cls.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.verify_timeout", "3")
        cls.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.verify_deadline", "6")
        cls.company = cls.company_data["company"]
        cls.mailbox_user = mail_new_test_user(
            cls.env,
            login=MAILBOX_LOGIN,
            email=MAILBOX_LOGIN,
            name="Billing Desk",
            groups="base.group_user,account.group_account_invoice",
            company_id=cls.company.id,
        )

    @classmethod
    def start_server(cls, mode="starttls", users=None, hosts=("127.0.0.1",), **options):
        server = SmtpServer(
            mode=mode, cert=cls.pki.leaf(hosts=hosts), users=users or {MAILBOX_LOGIN: PASSWORD}, **options
        )
        server.__enter__()
        cls.addClassCleanup(server.__exit__, None, None, None)
        return server

    @classmethod
    def create_mailbox(cls, server=None, **values):
        server = server or cls.server
        vals = {
            "name": "Invoices mailbox",
            "smtp_invoicing_mailbox": True,
            "sender_name": "ACME Billing",
            "sender_email": MAILBOX_LOGIN,
            "smtp_user": MAILBOX_LOGIN,
            "smtp_pass": PASSWORD,
            "smtp_host": server.host,
            "smtp_port": server.port,
            "smtp_encryption": "ssl" if server.mode == "ssl" else "starttls",
            "smtp_authentication": "login",
            "smtp_invoicing_ca_cert": cls.pki.ca_pem,
            "smtp_invoicing_company_id": cls.company.id,
        }
        vals.update(values)
        return cls.env["ir.mail_server"].create(vals)

    def verify(self, mailbox):
        """Request verification and run the scheduled action, as the cron worker would."""
        mailbox.action_verify()
        self.env["ir.mail_server"]._cron_verify_mail_servers()
        return mailbox
