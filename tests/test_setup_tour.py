"""The setup flow in a real browser: switch on, Gmail preset, save, verify, see the status."""

from odoo.tests import HttpCase

from odoo.addons.mail.tests.common import mail_new_test_user

from common import MAILBOX_LOGIN, PASSWORD
from smtp_servers import Pki, SmtpServer


class TestSetupTour(HttpCase):
    def test_admin_sets_up_and_verifies_a_mailbox(self):
        """An administrator switches the feature on, adds a Gmail-preset mailbox, verifies it and sees Verified."""
        pki = Pki()
        self.addCleanup(pki.cleanup)
        server = SmtpServer(mode="starttls", cert=pki.leaf(), users={MAILBOX_LOGIN: PASSWORD})
        server.__enter__()
        self.addCleanup(server.__exit__, None, None, None)
        company = self.env.ref("base.main_company")
        mail_new_test_user(
            self.env,
            login=MAILBOX_LOGIN,
            email=MAILBOX_LOGIN,
            company_id=company.id,
            groups="base.group_user,account.group_account_invoice",
        )
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("smtp_invoicing.tour_smtp_port", str(server.port))
        params.set_param("smtp_invoicing.tour_smtp_ca", pki.ca_pem)

        self.start_tour("/odoo/action-account.action_account_config", "smtp_invoicing_setup", login="admin")

        mailbox = self.env["smtp_invoicing.mailbox"].search([("name", "=", "Gmail invoices")])
        self.assertEqual(len(mailbox), 1)
        self.assertEqual(mailbox.verification_state, "pending")
        self.assertTrue(params.get_param("smtp_invoicing.enabled"))
        self.assertEqual(mailbox.smtp_invoicing_preset, "gmail")
        self.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        self.assertEqual([attempt[1:] for attempt in server.auth_attempts], [(MAILBOX_LOGIN, PASSWORD)])

        self.start_tour(
            "/odoo/action-smtp_invoicing.smtp_invoicing_mailbox_action", "smtp_invoicing_status", login="admin"
        )
