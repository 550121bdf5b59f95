"""Shared Odoo-side fixtures: loopback SMTP servers, certificates, users, mailboxes."""

import contextlib
from unittest.mock import patch

import odoo
from odoo import Command
from odoo.tests.common import new_test_user

from odoo.addons.account.tests.common import AccountTestInvoicingCommon
from odoo.addons.base.tests.common import BaseCommon
from odoo.addons.mail.tests.common import mail_new_test_user

from smtp_servers import Pki, SmtpServer

PASSWORD = "app-pass-4f9Kq2"
MAILBOX_LOGIN = "billing@invoicing.test"


@contextlib.contextmanager
def real_smtp():
    """Let Odoo connect and send for real, as outside test mode (loopback servers only)."""
    with patch.object(odoo.modules.module, "current_test", False):
        yield


def closed_udp_nameserver():
    """``smtp_invoicing.dns_nameservers`` value of a loopback port where no resolver listens.

    The deliverability hint asks DNS when a mailbox form is read; tests never ask
    anything beyond loopback, so the hint reads "could not be checked" unless a test
    starts its own DNS server (tests/dns_server.py).
    """
    return "127.0.0.1:9"


class MailboxFixture:
    """A licensed mailbox user and a STARTTLS loopback server, in Odoo's registry test mode.

    The verification and the mail queue open cursors of their own and commit, exactly
    as in production; in Odoo's registry test mode those cursors share this test's
    transaction (TestCursor), so nothing outlives the test.
    """

    @classmethod
    def setup_mailbox_fixture(cls, company):
        if cls.registry.test_cr is None:  # an HttpCase has entered it already
            cls.registry.enter_test_mode(cls.cr)
            cls.addClassCleanup(cls.registry.leave_test_mode)
        cls.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.dns_nameservers", closed_udp_nameserver())
        cls.pki = Pki()
        cls.addClassCleanup(cls.pki.cleanup)
        cls.server = cls.start_server(mode="starttls")
        cls.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.enabled", "True")
        cls.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.verify_timeout", "3")
        cls.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.verify_deadline", "6")
        cls.company = company
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
    def create_mailbox(cls, server=None, context=None, **values):
        server = server or cls.server
        vals = {
            "name": "Invoices mailbox",
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
        return cls.env["smtp_invoicing.mailbox"].with_context(**(context or {})).create(vals)

    def verify(self, mailbox):
        """Request verification and run the scheduled action, as the cron worker would."""
        mailbox.action_verify()
        self.run_verification_cron()
        return mailbox

    def run_verification_cron(self):
        """The verification scheduled action, then a fresh look at what it committed."""
        self.env.flush_all()
        self.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        self.env.invalidate_all()


class MailboxCase(MailboxFixture, BaseCommon):
    """Mailboxes without an accounting: the user and company of ``SmtpInvoicingCase``
    (an accounting manager in a company of its own), without the chart of accounts,
    taxes, products and partners that only invoices need."""

    @classmethod
    def setup_independent_company(cls, **kwargs):
        return cls._create_company(name="company_1_data", **kwargs)

    @classmethod
    def setup_independent_user(cls):
        # the groups of AccountTestInvoicingCommon's user (ProductCommon adds Settings)
        groups = (
            cls.get_default_groups()
            | cls.env.ref("base.group_system")
            | cls.env.ref("account.group_account_manager")
            | cls.env.ref("account.group_account_user")
        )
        return new_test_user(
            cls.env,
            name="Because I am accountman!",
            login="accountman",
            password="accountman",
            email="accountman@test.com",
            groups_id=groups.ids,
            company_id=cls.env.company.id,
        )

    @classmethod
    def setup_other_company(cls, **kwargs):
        """A second company, as AccountTestInvoicingCommon's (without its accounting data)."""
        return {"company": cls._create_company(**{"name": "company_2"} | kwargs)}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_mailbox_fixture(cls.env.company)


class SmtpInvoicingCase(MailboxFixture, AccountTestInvoicingCommon):
    """An accounting company (chart of accounts, partners, products) with a licensed mailbox
    user and a STARTTLS loopback server: for tests that send invoices."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_mailbox_fixture(cls.company_data["company"])

    @classmethod
    def create_invoice(cls, move_type, partner=None, invoice_date=None, post=False, amounts=None, company=False):
        """The move core's ``init_invoice`` makes (its date, partner and one "test line" per amount, taxes
        and accounts by default), created directly rather than through the invoice form's onchanges:
        these tests send invoices, they do not enter them, and the form cost 0.8 s per invoice."""
        move = (
            cls.env["account.move"]
            .with_company(company or cls.env.company)
            .create(
                {
                    "move_type": move_type,
                    "partner_id": (partner or cls.partner_a).id,
                    "invoice_date": invoice_date or "2019-01-01",
                    "invoice_line_ids": [
                        Command.create({"name": "test line", "price_unit": amount}) for amount in amounts or []
                    ],
                }
            )
        )
        if post:
            move.action_post()
        return move

    def invoice_mailbox(self):
        """A fresh loopback server and a verified mailbox on it that the invoice template sends from."""
        self.server = self.start_server()
        self.mailbox = self.verify(self.create_mailbox(self.server))
        self.assertEqual(self.mailbox.verification_state, "verified", self.mailbox.verification_message)
        self.env.ref("account.email_template_edi_invoice").mail_server_id = self.mailbox.mail_server_id
        return self.mailbox

    def send_and_print(self, invoice, user=None, **context):
        """Send & Print by email, as a user does from the invoice; mails really leave."""
        wizard = (
            self.env["account.move.send.wizard"]
            .with_user(user or self.env.user)
            .with_context(active_model="account.move", active_ids=invoice.ids, **context)
            .create({"sending_methods": ["email"]})
        )
        with real_smtp():
            wizard.action_send_and_print()
        return wizard

    def send_in_background(self, moves, job_count=10):
        """Send & Print on many invoices, then what the scheduled actions do, batch after batch."""
        self.env["account.move.send.batch.wizard"].with_context(
            active_model="account.move", active_ids=moves.ids
        ).create({}).action_send_and_print()
        self.assertTrue(all(moves.mapped("sending_data")), "large batches are queued for the background")
        with real_smtp():
            while self.env["account.move"].search_count([("id", "in", moves.ids), ("sending_data", "!=", False)]):
                self.env["account.move"]._cron_account_move_send(job_count=job_count)
            self.env["mail.mail"].process_email_queue()

    def new_invoicing_user(self, login="clerk@invoicing.test"):
        """An internal user with invoicing rights only, in the mailbox's company."""
        return mail_new_test_user(
            self.env,
            login=login,
            email=login,
            groups="base.group_user,account.group_account_invoice",
            company_id=self.company.id,
        )
