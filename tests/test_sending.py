"""Sending invoices through own mailboxes, end to end, and keeping mailboxes to their templates."""

from email.utils import getaddresses

import odoo
from odoo.exceptions import ValidationError

from common import MAILBOX_LOGIN, PASSWORD, SmtpInvoicingCase, real_smtp
from smtp_servers import SmtpServer


class TestSending(SmtpInvoicingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.invoice_template = cls.env.ref("account.email_template_edi_invoice")
        cls.partner_a.email = "customer@client.test"
        # wkhtmltopdf fetches the report's stylesheets from this test's own HTTP server
        cls.env["ir.config_parameter"].sudo().set_param(
            "report.url", f"http://127.0.0.1:{odoo.tools.config['http_port']}"
        )

    def setUp(self):
        super().setUp()
        self.invoice_mailbox()

    def send_and_print(self, invoice, user=None):
        # a real PDF, as outside test mode
        wizard = super().send_and_print(invoice, user=user, force_report_rendering=True)
        self.assertEqual(wizard.mail_template_id, self.invoice_template)
        return wizard

    def test_send_and_print_leaves_from_the_mailbox(self):
        """Send & Print: the loopback server receives the invoice from the mailbox, with From, To, subject, PDF."""
        invoice = self.create_invoice("out_invoice", partner=self.partner_a, amounts=[1000.0], post=True)
        self.send_and_print(invoice)
        self.assertEqual(len(self.server.messages), 1)
        received = self.server.messages[0]
        message = received.message
        self.assertEqual(received.mail_from, MAILBOX_LOGIN)
        self.assertEqual(received.rcpt_tos, ["customer@client.test"])
        sender = message["From"].addresses
        self.assertEqual([(a.display_name, a.addr_spec) for a in sender], [("ACME Billing", MAILBOX_LOGIN)])
        self.assertIn("customer@client.test", message["To"])
        self.assertIn(invoice.name, message["Subject"])
        self.assertTrue(message["Reply-To"])
        pdfs = [part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"]
        self.assertEqual(len(pdfs), 1)
        self.assertTrue(pdfs[0].get_content().startswith(b"%PDF"))
        self.assertIn(invoice.name.replace("/", "_"), pdfs[0].get_filename())
        self.assertEqual([attempt[1:] for attempt in self.server.auth_attempts][-1], (MAILBOX_LOGIN, PASSWORD))
        self.assertTrue(invoice.is_move_sent)

    def test_invoicing_user_sends_without_reading_credentials(self):
        """An invoicing user sends through the mailbox but cannot read its settings."""
        accountant = self.new_invoicing_user()
        invoice = self.create_invoice("out_invoice", partner=self.partner_a, amounts=[50.0], post=True)
        self.send_and_print(invoice.with_user(accountant), user=accountant)
        self.assertEqual(len(self.server.messages), 1)
        self.assertEqual(self.server.messages[0].mail_from, MAILBOX_LOGIN)
        self.assertFalse(self.env["smtp_invoicing.mailbox"].with_user(accountant).has_access("read"))
        self.assertFalse(self.env["ir.mail_server"].with_user(accountant).has_access("read"))

    def test_feature_off_behaves_as_without_the_module(self):
        """With the switch off, the mailbox carries nothing: the mail goes to Odoo's default routing."""
        self.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.enabled", "False")
        mail = self.env["mail.mail"].create(
            {
                "email_to": "customer@client.test",
                "subject": "x",
                "body_html": "<p>x</p>",
                "email_from": "company@invoicing.test",
                "mail_server_id": self.mailbox.mail_server_id.id,
                "record_company_id": self.company.id,
            }
        )
        ((server_id, _alias, _smtp_from, ids),) = list(mail._split_by_mail_configuration())
        self.assertNotEqual(server_id, self.mailbox.mail_server_id.id)
        self.assertFalse(mail.mail_server_id)

    def test_mailbox_never_carries_other_companies_mail(self):
        """A mail of another company's record never leaves through this company's mailbox."""
        other_company = self.setup_other_company()["company"]
        mails = self.env["mail.mail"].create(
            [
                {
                    "email_to": "customer@client.test",
                    "subject": "x",
                    "body_html": "<p>x</p>",
                    "email_from": MAILBOX_LOGIN,
                    "mail_server_id": self.mailbox.mail_server_id.id,
                    "record_company_id": company.id,
                }
                for company in (self.company, other_company)
            ]
        )
        routes = {tuple(ids): server_id for server_id, _a, _f, ids in mails._split_by_mail_configuration()}
        self.assertEqual(routes[(mails[0].id,)], self.mailbox.mail_server_id.id)
        self.assertNotEqual(routes[(mails[1].id,)], self.mailbox.mail_server_id.id)

    def test_mailbox_is_never_a_fallback(self):
        """Mails without a chosen server never fall back to an own mailbox, even one matching their sender."""
        core = self.env["ir.mail_server"].create(
            {"name": "Core", "smtp_host": "127.0.0.1", "smtp_port": 25, "sequence": 50}
        )
        server, _from = self.env["ir.mail_server"]._find_mail_server(MAILBOX_LOGIN)
        self.assertEqual(server, core)
        core.active = False
        server, _from = self.env["ir.mail_server"]._find_mail_server(MAILBOX_LOGIN)
        self.assertFalse(server)

    def test_template_accepts_only_verified_mailboxes(self):
        """A template cannot choose a mailbox that is not verified."""
        draft = self.create_mailbox(name="Draft mailbox")
        with self.assertRaisesRegex(ValidationError, "only use a verified mailbox"):
            self.invoice_template.mail_server_id = draft.mail_server_id

    def test_core_server_keeps_its_clear_password_and_sends(self):
        """A core outgoing server is not the module's business: its password stays in core's column, and it sends."""
        plain = SmtpServer(mode="plain", users={"relay": "relay-secret"}, advertise_auth_without_tls=True)
        plain.__enter__()
        self.addCleanup(plain.__exit__, None, None, None)
        core = self.env["ir.mail_server"].create(
            {
                "name": "Relay",
                "smtp_host": plain.host,
                "smtp_port": plain.port,
                "smtp_encryption": "none",
                "smtp_user": "relay",
                "smtp_pass": "relay-secret",
            }
        )
        message = self.env["ir.mail_server"].build_email(
            "company@invoicing.test", ["customer@client.test"], "Relay test", "body"
        )
        with real_smtp():
            self.env["ir.mail_server"].send_email(message, mail_server_id=core.id)
        self.assertEqual(plain.auth_attempts[-1][1:], ("relay", "relay-secret"))
        self.assertEqual(len(plain.messages), 1)
        self.env.flush_all()
        self.env.cr.execute("SELECT smtp_pass FROM ir_mail_server WHERE id = %s", [core.id])
        self.assertEqual(self.env.cr.fetchone(), ("relay-secret",))
        # no mailbox behind it: no encrypted copy, company or verification of the module
        self.env.cr.execute("SELECT count(*) FROM smtp_invoicing_mailbox WHERE mail_server_id = %s", [core.id])
        self.assertEqual(self.env.cr.fetchone(), (0,))
        self.assertFalse(core.smtp_invoicing_mailbox_ids)


class TestReplyTo(SmtpInvoicingCase):
    """Where replies to a mail from an own mailbox go, as the customer's mail client reads it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner_a.email = "customer@client.test"

    def setUp(self):
        super().setUp()
        self.invoice_mailbox()

    def reply_to(self, invoice):
        self.send_and_print(invoice)
        self.assertEqual(len(self.server.messages), 1)
        return self.server.messages[0].message["Reply-To"]

    def test_reply_to_is_the_alias_where_the_company_has_an_alias_domain(self):
        """With an alias domain, Reply-To is core's alias of the invoice: replies reach its chatter."""
        self.company.alias_domain_id = self.env["mail.alias.domain"].create({"name": "acme-replies.test"})
        invoice = self.create_invoice("out_invoice", partner=self.partner_a, amounts=[100.0], post=True)
        expected = invoice._notify_get_reply_to()[invoice.id]
        self.assertIn("@acme-replies.test", expected)
        reply_to = self.reply_to(invoice)
        self.assertEqual([(a.display_name, a.addr_spec) for a in reply_to.addresses], getaddresses([expected]))

    def test_reply_to_is_the_mailbox_without_an_alias_domain(self):
        """Without an alias domain, Reply-To is the mailbox's sender, never the author (here OdooBot)."""
        self.company.alias_domain_id = False
        invoice = self.create_invoice("out_invoice", partner=self.partner_a, amounts=[100.0], post=True)
        invoice.invoice_user_id = self.env.ref("base.user_root")
        reply_to = self.reply_to(invoice)
        self.assertEqual([(a.display_name, a.addr_spec) for a in reply_to.addresses], [("ACME Billing", MAILBOX_LOGIN)])
