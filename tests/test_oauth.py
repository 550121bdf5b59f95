"""OAuth mailboxes end to end: the owner signs in through Odoo's controllers and the loopback
authorization server, invoices leave through XOAUTH2, tokens are refreshed, revoked and renewed."""

import re
import urllib.parse
from datetime import timedelta

from freezegun import freeze_time

import odoo
from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.modules.neutralize import neutralize_database
from odoo.tests import HttpCase

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase, SmtpInvoicingCase
from oauth_server import OAuthServer
from oauth_smtp import XOAuth2ImapServer, XOAuth2SmtpServer
from smtp_servers import KNOWN_SECRETS, SmtpServer

USER_PASSWORD = "owner-login-pw-93Kd"
INTRUDER = "intruder@invoicing.test"
KNOWN_SECRETS.add(USER_PASSWORD)


class OAuthMixin:
    """Both providers on loopback, an XOAUTH2 SMTP server for each, and a mailbox owner who can log in."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.providers = {}
        cls.smtp_servers = {}
        params = cls.env["ir.config_parameter"].sudo()
        for kind in ("microsoft", "google"):
            provider = OAuthServer(kind, accounts=[MAILBOX_LOGIN, INTRUDER])
            provider.__enter__()
            cls.addClassCleanup(provider.__exit__, None, None, None)
            cls.providers[kind] = provider
            for key, value in provider.odoo_parameters().items():
                params.set_param(key, value)
            smtp_server = XOAuth2SmtpServer(provider, cert=cls.pki.leaf())
            smtp_server.__enter__()
            cls.addClassCleanup(smtp_server.__exit__, None, None, None)
            cls.smtp_servers[kind] = smtp_server
        cls.mailbox_user.password = USER_PASSWORD

    def setUp(self):
        super().setUp()
        for server in self.smtp_servers.values():
            server.auth_attempts.clear()
            server.messages.clear()
        for provider in self.providers.values():
            provider.token_requests.clear()

    def create_oauth_mailbox(self, kind="microsoft", **values):
        return self.create_mailbox(
            self.smtp_servers[kind], smtp_invoicing_auth_kind=kind, smtp_pass=False, name=f"{kind} invoices", **values
        )

    def csrf(self, server):
        page = self.url_open(f"/smtp_invoicing/mailbox/{server.id}/connect")
        self.assertEqual(page.status_code, 200, page.text[:300])
        return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    def sign_in(self, server, account=MAILBOX_LOGIN, login=MAILBOX_LOGIN, password=USER_PASSWORD):
        """The owner's browser: connect page, Sign in, the provider's page, back to Odoo's redirect URL."""
        self.authenticate(login, password)
        start = self.url_open(
            f"/smtp_invoicing/mailbox/{server.id}/sign_in",
            data={"csrf_token": self.csrf(server)},
            allow_redirects=False,
        )
        self.assertEqual(start.status_code, 303, start.text[:300])
        provider = self.providers[server.smtp_invoicing_auth_kind]
        authorize = start.headers["Location"]
        self.assertTrue(authorize.startswith(provider.base_url + provider.authorize_path), authorize)
        back = urllib.parse.urlsplit(provider.sign_in(authorize, account))
        expected = (
            "/microsoft_outlook/confirm" if server.smtp_invoicing_auth_kind == "microsoft" else "/google_gmail/confirm"
        )
        self.assertEqual(back.path, expected)
        response = self.url_open(f"{back.path}?{back.query}", allow_redirects=False)
        self.env.invalidate_all()
        return response

    def token_columns(self, server):
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT smtp_invoicing_oauth_refresh_enc, smtp_invoicing_oauth_access_enc, smtp_pass FROM ir_mail_server"
            " WHERE id = %s",
            [server.id],
        )
        return self.env.cr.fetchone()

    def issued_tokens(self, kind):
        provider = self.providers[kind]
        return set(provider.refresh_tokens) | set(provider.access_tokens)

    def due_now(self, server):
        server.smtp_invoicing_next_check_at = fields.Datetime.now() - timedelta(seconds=1)


class OAuthCase(OAuthMixin, MailboxCase, HttpCase):
    """OAuth mailboxes, without an accounting."""


class OAuthInvoiceCase(OAuthMixin, SmtpInvoicingCase, HttpCase):
    """OAuth mailboxes that send invoices."""


class TestOAuthMailboxes(OAuthInvoiceCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.invoice_template = cls.env.ref("account.email_template_edi_invoice")
        cls.partner_a.email = "customer@client.test"
        cls.env["ir.config_parameter"].sudo().set_param(
            "report.url", f"http://127.0.0.1:{odoo.tools.config['http_port']}"
        )

    def test_microsoft_mailbox_awaits_its_owner_then_sends_an_invoice(self):
        """Created by an admin it awaits its owner (to-do with link); once signed in, Send & Print leaves from it."""
        mailbox = self.create_oauth_mailbox("microsoft")
        self.assertTrue(mailbox.smtp_invoicing_awaiting_connection)
        self.assertIn(mailbox, self.env["ir.mail_server"].search([("smtp_invoicing_awaiting_connection", "=", True)]))
        activity = mailbox.activity_ids.filtered(lambda a: a.user_id == self.mailbox_user)
        self.assertEqual(len(activity), 1)
        self.assertIn(f"/smtp_invoicing/mailbox/{mailbox.id}/connect", activity.note)

        response = self.sign_in(mailbox)
        self.assertEqual(response.status_code, 303, response.text[:500])
        self.assertIn("done=1", response.headers["Location"])
        self.assertFalse(mailbox.smtp_invoicing_awaiting_connection)
        self.assertEqual(mailbox.smtp_invoicing_oauth_account, MAILBOX_LOGIN)
        self.assertEqual(mailbox.verification_state, "pending")
        self.assertFalse(mailbox.activity_ids.filtered(lambda a: a.user_id == self.mailbox_user))
        refresh_enc, access_enc, smtp_pass = self.token_columns(mailbox)
        self.assertTrue(refresh_enc.startswith("gAAAA") and access_enc.startswith("gAAAA"))
        self.assertFalse(smtp_pass)
        for token in self.issued_tokens("microsoft"):
            self.assertNotIn(token, refresh_enc + access_enc)

        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        server = self.smtp_servers["microsoft"]
        self.assertEqual(server.auth_attempts, [("XOAUTH2", MAILBOX_LOGIN, None)])

        self.invoice_template.mail_server_id = mailbox
        invoice = self.create_invoice("out_invoice", partner=self.partner_a, amounts=[1000.0], post=True)
        self.send_and_print(invoice, force_report_rendering=True)
        self.assertEqual(len(server.messages), 1)
        received = server.messages[0]
        self.assertEqual(received.mail_from, MAILBOX_LOGIN)
        self.assertEqual(received.rcpt_tos, ["customer@client.test"])
        sender = received.message["From"].addresses
        self.assertEqual([(a.display_name, a.addr_spec) for a in sender], [("ACME Billing", MAILBOX_LOGIN)])
        self.assertIn(invoice.name, received.message["Subject"])
        self.assertTrue(invoice.is_move_sent)
        self.assertEqual([attempt[2] for attempt in server.auth_attempts], [None, None])

    def test_gmail_mailbox_connects_and_verifies(self):
        """A Gmail (OAuth) mailbox: Google sign-in, identity from the ID token, verified over XOAUTH2."""
        mailbox = self.create_oauth_mailbox("google")
        self.assertEqual(self.sign_in(mailbox).status_code, 303)
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        self.assertEqual(self.smtp_servers["google"].auth_attempts, [("XOAUTH2", MAILBOX_LOGIN, None)])
        self.assertEqual(self.providers["google"].token_requests, [("authorization_code", 200)])

    def test_gmail_mailbox_reads_its_bounces_with_xoauth2(self):
        """Bounce tracking signs in to IMAP with the same access token (XOAUTH2), at verification."""
        imap_server = XOAuth2ImapServer(self.providers["google"], self.pki.leaf())
        imap_server.__enter__()
        self.addCleanup(imap_server.__exit__, None, None, None)
        mailbox = self.create_oauth_mailbox(
            "google",
            smtp_invoicing_track_bounces=True,
            smtp_invoicing_imap_host="127.0.0.1",
            smtp_invoicing_imap_port=imap_server.port,
        )
        self.sign_in(mailbox)
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        self.assertEqual(imap_server.attempts, [(MAILBOX_LOGIN, None)])

    def test_signing_in_as_another_account_is_refused(self):
        """Signing in as another account shows a clear refusal and saves nothing."""
        mailbox = self.create_oauth_mailbox("microsoft")
        response = self.sign_in(mailbox, account=INTRUDER)
        self.assertEqual(response.status_code, 200)
        self.assertIn(f"You signed in as {INTRUDER}, but this mailbox is {MAILBOX_LOGIN}", response.text)
        self.assertEqual(self.token_columns(mailbox), (None, None, None))
        self.assertTrue(mailbox.smtp_invoicing_awaiting_connection)
        self.assertEqual(mailbox.verification_state, "draft")

    def test_revoked_consent_fails_and_sign_in_again_fixes_it(self):
        """A revoked refresh token turns the mailbox Failed at the next check; the owner's Sign in again heals it."""
        mailbox = self.create_oauth_mailbox("google")
        self.sign_in(mailbox)
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified")
        self.providers["google"].revoke(MAILBOX_LOGIN)
        with freeze_time(fields.Datetime.now() + timedelta(hours=25)):
            self.run_verification_cron()
            self.assertEqual(mailbox.verification_state, "failed")
            self.assertIn("was withdrawn at Google", mailbox.verification_message)
            self.assertIn("must sign in again", mailbox.verification_message)
            self.assertTrue(mailbox.smtp_invoicing_sign_in_again)
            self.assertTrue(mailbox.activity_ids.filtered(lambda a: a.user_id == self.mailbox_user))
            action = mailbox.with_user(self.mailbox_user).action_smtp_invoicing_connect()
            self.assertEqual(action["url"], f"/smtp_invoicing/mailbox/{mailbox.id}/connect")
            self.assertIn("Sign in again", self.url_open(action["url"]).text)
            self.assertEqual(self.sign_in(mailbox).status_code, 303)
            self.run_verification_cron()
            self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
            self.assertFalse(mailbox.smtp_invoicing_sign_in_again)

    def test_reverification_refreshes_the_token_before_microsoft_expires_it(self):
        """After 80 days the re-check refreshes the token; 80 days later it still works, the first token has expired."""
        mailbox = self.create_oauth_mailbox("microsoft")
        self.sign_in(mailbox)
        self.run_verification_cron()
        provider = self.providers["microsoft"]
        first_refresh = mailbox._smtp_invoicing_token("smtp_invoicing_oauth_refresh_enc")
        start = fields.Datetime.now()
        with freeze_time(start + timedelta(days=80)):
            self.run_verification_cron()
            self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
            self.assertFalse(mailbox.smtp_invoicing_check_warning)
        # Microsoft handed out a new refresh token, with a new 90-day window
        self.assertNotEqual(mailbox._smtp_invoicing_token("smtp_invoicing_oauth_refresh_enc"), first_refresh)
        with freeze_time(start + timedelta(days=160)):
            self.run_verification_cron()
            self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        self.assertEqual([grant for grant, _status in provider.token_requests].count("refresh_token"), 2)
        self.assertEqual([attempt[2] for attempt in self.smtp_servers["microsoft"].auth_attempts], [None] * 3)

    def test_expired_refresh_token_reads_as_expired_from_disuse(self):
        """AADSTS700082 after 90 days unused: Failed, in words about disuse, with Sign in again."""
        mailbox = self.create_oauth_mailbox("microsoft")
        self.sign_in(mailbox)
        self.run_verification_cron()
        with freeze_time(fields.Datetime.now() + timedelta(days=95)):
            self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "failed")
        self.assertIn("has expired (unused for too long", mailbox.verification_message)
        self.assertTrue(mailbox.smtp_invoicing_sign_in_again)

    def test_token_refused_by_the_mail_server_is_forgotten(self):
        """A 535 5.7.3 on XOAUTH2 fails the check, drops the cached access token and asks for a new sign-in."""
        mailbox = self.create_oauth_mailbox("microsoft")
        self.sign_in(mailbox)
        self.run_verification_cron()
        provider = self.providers["microsoft"]
        for token in provider.access_tokens.values():
            token["revoked"] = True
        self.due_now(mailbox)
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "failed")
        self.assertEqual(mailbox.smtp_invoicing_failure_reason, "token_invalid")
        self.assertIn("The mail server refused the sign-in", mailbox.verification_message)
        self.assertIsNone(self.token_columns(mailbox)[1])
        # the refresh token still works: a new verification gets a fresh access token
        mailbox.action_verify()
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)

    def test_owner_types_the_app_password_the_admin_never_sees_it(self):
        """A password mailbox created without password awaits its owner, who types it on the connect page."""
        mailbox = self.create_mailbox(self.server, smtp_pass=False)
        self.assertTrue(mailbox.smtp_invoicing_awaiting_connection)
        self.authenticate(MAILBOX_LOGIN, USER_PASSWORD)
        response = self.url_open(
            f"/smtp_invoicing/mailbox/{mailbox.id}/password",
            data={"csrf_token": self.csrf(mailbox), "password": PASSWORD},
            allow_redirects=False,
        )
        self.assertEqual(response.status_code, 303, response.text[:300])
        self.env.invalidate_all()
        self.assertFalse(mailbox.smtp_invoicing_awaiting_connection)
        self.assertEqual(mailbox.verification_state, "pending")
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        values = mailbox.read()[0]
        self.assertNotIn(PASSWORD, repr(values))

    def test_disconnect_forgets_the_tokens(self):
        """Disconnecting erases the tokens; the mailbox awaits its owner again."""
        mailbox = self.create_oauth_mailbox("microsoft")
        self.sign_in(mailbox)
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified")
        self.url_open(
            f"/smtp_invoicing/mailbox/{mailbox.id}/disconnect", data={"csrf_token": self.csrf(mailbox)}
        ).raise_for_status()
        self.env.invalidate_all()
        self.assertEqual(self.token_columns(mailbox)[:2], (None, None))
        self.assertTrue(mailbox.smtp_invoicing_awaiting_connection)
        self.assertEqual(mailbox.verification_state, "draft")
        self.assertFalse(mailbox.smtp_invoicing_oauth_account)

    def test_neutralized_copy_forgets_the_tokens(self):
        """Neutralizing a database copy erases the OAuth tokens of own mailboxes."""
        mailbox = self.create_oauth_mailbox("google")
        self.sign_in(mailbox)
        self.env.flush_all()
        neutralize_database(self.env.cr)
        self.env.invalidate_all()
        self.assertEqual(self.token_columns(mailbox), (None, None, None))

    def test_tampered_or_foreign_state_is_forbidden(self):
        """A state not signed by Odoo, or made for another user, is refused at the redirect URL."""
        mailbox = self.create_oauth_mailbox("microsoft")
        clerk = self.new_invoicing_user()
        clerk.password = "clerk-login-pw-1"
        self.authenticate(MAILBOX_LOGIN, USER_PASSWORD)
        start = self.url_open(
            f"/smtp_invoicing/mailbox/{mailbox.id}/sign_in",
            data={"csrf_token": self.csrf(mailbox)},
            allow_redirects=False,
        )
        back = urllib.parse.urlsplit(self.providers["microsoft"].sign_in(start.headers["Location"], MAILBOX_LOGIN))
        self.authenticate(clerk.login, "clerk-login-pw-1")
        with self.assertLogs("odoo.addons.smtp_invoicing.controllers.main", "WARNING"):
            self.assertEqual(self.url_open(f"{back.path}?{back.query}", allow_redirects=False).status_code, 403)
        forged = urllib.parse.urlencode({"code": "x", "state": '{"smtp_invoicing": "AQAAAAAAAAAA"}'})
        self.authenticate(MAILBOX_LOGIN, USER_PASSWORD)
        with self.assertLogs("odoo.addons.smtp_invoicing.controllers.main", "WARNING"):
            self.assertEqual(self.url_open(f"/microsoft_outlook/confirm?{forged}").status_code, 403)
        self.env.invalidate_all()
        self.assertTrue(mailbox.smtp_invoicing_awaiting_connection)


class TestMovingOffPasswords(OAuthCase):
    def test_microsoft_password_mailbox_shows_the_deadline_and_switches(self):
        """A Microsoft 365 password mailbox is flagged; one action makes it OAuth, same record, templates kept."""
        mailbox = self.verify(self.create_mailbox(self.server, smtp_invoicing_preset="microsoft365"))
        self.assertTrue(mailbox.smtp_invoicing_basic_auth_notice)
        self.assertIn("December 2026", mailbox.smtp_invoicing_connection_notice)
        template = self.env.ref("account.email_template_edi_invoice")
        template.mail_server_id = mailbox
        line = self.env["smtp_invoicing.template.mailbox"].create(
            {"template_id": template.id, "company_id": self.company.id, "mail_server_id": mailbox.id}
        )
        before = mailbox.read(["name", "sender_name", "sender_email", "smtp_user", "smtp_invoicing_company_id"])
        mailbox.action_smtp_invoicing_switch_to_oauth()
        self.assertEqual(
            mailbox.read(["name", "sender_name", "sender_email", "smtp_user", "smtp_invoicing_company_id"]), before
        )
        self.assertEqual(mailbox.smtp_invoicing_auth_kind, "microsoft")
        self.assertFalse(mailbox.smtp_invoicing_basic_auth_notice)
        self.assertTrue(mailbox.smtp_invoicing_awaiting_connection)
        self.assertEqual(self.token_columns(mailbox), (None, None, None))
        self.assertFalse(mailbox.smtp_invoicing_password_enc)
        self.assertEqual(template.mail_server_id, mailbox)
        self.assertEqual(line.mail_server_id, mailbox)
        self.assertTrue(mailbox.activity_ids.filtered(lambda a: a.user_id == self.mailbox_user))

    def test_basic_auth_refusal_offers_the_switch(self):
        """A 535 5.7.139 refusal on any host offers the switch to OAuth."""
        refusing = self.start_server(
            auth_reply=(535, "5.7.139 Authentication unsuccessful, basic authentication is disabled")
        )
        mailbox = self.verify(self.create_mailbox(refusing))
        self.assertEqual(mailbox.verification_state, "failed")
        self.assertEqual(mailbox.smtp_invoicing_failure_reason, "basic_auth_disabled")
        self.assertTrue(mailbox.smtp_invoicing_basic_auth_notice)
        mailbox.action_smtp_invoicing_switch_to_oauth()
        self.assertEqual(mailbox.smtp_invoicing_auth_kind, "microsoft")

    def test_other_mailboxes_cannot_switch(self):
        """Only Microsoft password mailboxes get the switch."""
        mailbox = self.create_mailbox(self.server)
        self.assertFalse(mailbox.smtp_invoicing_basic_auth_notice)
        with self.assertRaises(UserError):
            mailbox.action_smtp_invoicing_switch_to_oauth()


class TestCoreServersUnchanged(OAuthCase):
    def test_core_outlook_and_gmail_servers_keep_their_behaviour(self):
        """Core servers keep the authentication choices and the mixins' own token handling."""
        selection = dict(self.env["ir.mail_server"]._fields["smtp_authentication"].selection)
        self.assertTrue({"login", "certificate", "cli", "outlook", "gmail"} <= set(selection))
        core = self.env["ir.mail_server"].create(
            {
                "name": "Core Outlook",
                "smtp_host": "smtp.outlook.com",
                "smtp_user": "someone@invoicing.test",
                "smtp_authentication": "outlook",
                "smtp_encryption": "starttls",
            }
        )
        self.assertFalse(core.smtp_invoicing_awaiting_connection)
        self.assertFalse(core.activity_ids)
        self.assertFalse(core.smtp_invoicing_basic_auth_notice)
        with self.assertRaisesRegex(UserError, "An error occurred when fetching the access token"):
            core._fetch_outlook_access_token("not-a-refresh-token")
        self.assertEqual(self.providers["microsoft"].token_requests[-1], ("refresh_token", 400))
        with self.assertRaises(AccessError):
            core.with_user(self.mailbox_user).action_smtp_invoicing_connect()


class TestOAuthSmtpWithoutTls(OAuthCase):
    def test_token_never_crosses_without_tls(self):
        """A server that does not offer STARTTLS never receives the access token."""
        mailbox = self.create_oauth_mailbox("microsoft")
        self.sign_in(mailbox)
        plain = SmtpServer(mode="plain", advertise_auth_without_tls=True)
        plain.__enter__()
        self.addCleanup(plain.__exit__, None, None, None)
        mailbox.write({"smtp_host": plain.host, "smtp_port": plain.port})
        self.verify(mailbox)
        self.assertEqual(mailbox.verification_state, "failed")
        self.assertEqual(plain.auth_attempts, [])
        self.assertEqual(mailbox.smtp_invoicing_failure_reason, "no_starttls")


class TestOAuthFixActivities(OAuthCase):
    def test_verify_before_anyone_signed_in_is_refused(self):
        """Verify on an OAuth mailbox nobody signed in to is refused at once: its owner must sign in."""
        mailbox = self.create_oauth_mailbox("google")
        with self.assertRaisesRegex(UserError, "must sign in to “google invoices” with Gmail"):
            mailbox.action_verify()
        self.assertEqual(mailbox.verification_state, "draft")

    def test_withdrawn_sign_in_is_one_todo_for_the_owner(self):
        """A sign-in withdrawn at the provider: one to-do, the owner's, saying the mailbox can no longer send."""
        mailbox = self.create_oauth_mailbox("google")
        self.sign_in(mailbox)
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified")
        self.providers["google"].revoke(MAILBOX_LOGIN)
        with freeze_time(fields.Datetime.now() + timedelta(hours=25)):
            self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "failed")
        self.assertEqual(mailbox.activity_ids.user_id, self.mailbox_user)
        self.assertEqual(mailbox.activity_ids.mapped("summary"), ["Mailbox can no longer send: connect it again"])
        self.assertIn(f"/smtp_invoicing/mailbox/{mailbox.id}/connect", mailbox.activity_ids.note)
