"""The owner connects a Microsoft 365 mailbox in a real browser, through the loopback sign-in page."""

from common import MAILBOX_LOGIN
from test_oauth import INTRUDER, OAuthCase


class TestOAuthTour(OAuthCase):
    def setUp(self):
        super().setUp()
        # start_tour logs in with the login as password
        self.mailbox_user.password = MAILBOX_LOGIN

    def tearDown(self):
        self.providers["microsoft"].browser_account = None
        super().tearDown()

    def test_owner_connects_in_the_browser(self):
        """Connect page, Sign in with Microsoft, the provider's page, back to Odoo: connected, then verified."""
        mailbox = self.create_oauth_mailbox("microsoft")
        self.providers["microsoft"].browser_account = MAILBOX_LOGIN
        self.start_tour(
            f"/smtp_invoicing/mailbox/{mailbox.id}/connect", "smtp_invoicing_oauth_connect", login=MAILBOX_LOGIN
        )
        self.env.invalidate_all()
        self.assertEqual(mailbox.smtp_invoicing_oauth_account, MAILBOX_LOGIN)
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)

    def test_another_account_is_refused_in_the_browser(self):
        """Signing in as another account on the provider's page shows the refusal; nothing is saved."""
        mailbox = self.create_oauth_mailbox("microsoft")
        self.providers["microsoft"].browser_account = INTRUDER
        self.start_tour(
            f"/smtp_invoicing/mailbox/{mailbox.id}/connect", "smtp_invoicing_oauth_refused", login=MAILBOX_LOGIN
        )
        self.env.invalidate_all()
        self.assertTrue(mailbox.smtp_invoicing_awaiting_connection)
        self.assertEqual(self.token_columns(mailbox), (None, None, None))
