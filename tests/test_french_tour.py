"""A French-speaking administrator's first hour, in a real browser: from Settings to a delivered invoice."""

import odoo
from odoo.tests import HttpCase

from common import MAILBOX_LOGIN, PASSWORD, SmtpInvoicingCase, real_smtp


class TestFrenchAdministrator(SmtpInvoicingCase, HttpCase):
    def test_french_administrator_sends_an_invoice_from_the_mailbox(self):
        """In French: find the setting, switch it on, add and verify a mailbox, choose it, send, see Delivered."""
        self.env.user.lang = "fr_FR"
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("smtp_invoicing.enabled", False)  # off: the administrator switches it on
        params.set_param("smtp_invoicing.tour_smtp_port", str(self.server.port))
        params.set_param("smtp_invoicing.tour_smtp_ca", self.pki.ca_pem)
        # wkhtmltopdf fetches the report's stylesheets from this test's own HTTP server
        params.set_param("report.url", f"http://127.0.0.1:{odoo.tools.config['http_port']}")
        # the document layout is chosen: Send opens the wizard, not the layout configurator first
        self.company.external_report_layout_id = self.env.ref("web.external_layout_standard")
        # the test company has cash basis taxes (AccountTestInvoicingCommon): Settings refuses to load without this
        self.company.tax_exigibility = True
        self.partner_a.email = "client@client.test"
        invoice = self.create_invoice("out_invoice", partner=self.partner_a, amounts=[1000.0], post=True)
        params.set_param("smtp_invoicing.tour_invoice_id", str(invoice.id))
        template = self.env.ref("account.email_template_edi_invoice")
        self.assertFalse(template.mail_server_id)

        self.start_tour("/odoo/action-account.action_account_config", "smtp_invoicing_french_setup", login="accountman")
        self.assertEqual(params.get_param("smtp_invoicing.enabled"), "True")
        mailbox = self.env["smtp_invoicing.mailbox"].search([("name", "=", "Boîte factures")])
        self.assertEqual(len(mailbox), 1)
        self.assertEqual(mailbox.smtp_port, self.server.port)
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)

        self.start_tour(
            f"/odoo/action-mail.action_email_template_tree_all/{template.id}",
            "smtp_invoicing_french_send",
            login="accountman",
        )
        self.env.invalidate_all()
        self.assertEqual(template.mail_server_id, mailbox.mail_server_id)
        self.assertEqual(self.server.messages, [], "the email waits in the queue")
        with real_smtp():
            self.env["mail.mail"].process_email_queue()
        self.env.invalidate_all()
        self.assertEqual(len(self.server.messages), 1)
        received = self.server.messages[0]
        self.assertEqual(received.mail_from, MAILBOX_LOGIN)
        self.assertEqual(received.rcpt_tos, ["client@client.test"])
        sender = received.message["From"].addresses
        self.assertEqual([(a.display_name, a.addr_spec) for a in sender], [("ACME Facturation", MAILBOX_LOGIN)])
        self.assertIn(invoice.name, received.message["Subject"])
        self.assertEqual([attempt[1:] for attempt in self.server.auth_attempts][-1], (MAILBOX_LOGIN, PASSWORD))
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")

        self.start_tour(
            f"/odoo/action-account.action_move_out_invoice_type/{invoice.id}",
            "smtp_invoicing_french_delivered",
            login="accountman",
        )
