"""OAuth mailboxes end to end: the owner signs in through Odoo's controllers and the loopback
authorization server, invoices leave through XOAUTH2, tokens are refreshed, revoked and renewed."""

import json
import re
import urllib.parse
from datetime import timedelta

from freezegun import freeze_time

import odoo
from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.modules.neutralize import neutralize_database
from odoo.tests import HttpCase

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase, SmtpInvoicingCase, real_smtp
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

    def csrf(self, mailbox):
        page = self.url_open(f"/smtp_invoicing/mailbox/{mailbox.id}/connect")
        self.assertEqual(page.status_code, 200, page.text[:300])
        return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    def sign_in(self, mailbox, account=MAILBOX_LOGIN, login=MAILBOX_LOGIN, password=USER_PASSWORD):
        """The owner's browser: connect page, Sign in, the provider's page, back to Odoo's redirect URL."""
        self.authenticate(login, password)
        start = self.url_open(
            f"/smtp_invoicing/mailbox/{mailbox.id}/sign_in",
            data={"csrf_token": self.csrf(mailbox)},
            allow_redirects=False,
        )
        self.assertEqual(start.status_code, 303, start.text[:300])
        provider = self.providers[mailbox.smtp_invoicing_auth_kind]
        authorize = start.headers["Location"]
        self.assertTrue(authorize.startswith(provider.base_url + provider.authorize_path), authorize)
        back = urllib.parse.urlsplit(provider.sign_in(authorize, account))
        expected = (
            "/microsoft_outlook/confirm" if mailbox.smtp_invoicing_auth_kind == "microsoft" else "/google_gmail/confirm"
        )
        self.assertEqual(back.path, expected)
        response = self.url_open(f"{back.path}?{back.query}", allow_redirects=False)
        self.env.invalidate_all()
        return response

    def token_columns(self, mailbox):
        """The mailbox's encrypted refresh and access tokens, and core's clear password column of its server."""
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT mailbox.smtp_invoicing_oauth_refresh_enc, mailbox.smtp_invoicing_oauth_access_enc, server.smtp_pass"
            "  FROM smtp_invoicing_mailbox mailbox JOIN ir_mail_server server ON server.id = mailbox.mail_server_id"
            " WHERE mailbox.id = %s",
            [mailbox.id],
        )
        return self.env.cr.fetchone()

    def issued_tokens(self, kind):
        provider = self.providers[kind]
        return set(provider.refresh_tokens) | set(provider.access_tokens)

    def due_now(self, mailbox):
        mailbox.smtp_invoicing_next_check_at = fields.Datetime.now() - timedelta(seconds=1)


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
        self.assertIn(
            mailbox, self.env["smtp_invoicing.mailbox"].search([("smtp_invoicing_awaiting_connection", "=", True)])
        )
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

        self.invoice_template.mail_server_id = mailbox.mail_server_id
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
        template.mail_server_id = mailbox.mail_server_id
        line = self.env["smtp_invoicing.template.mailbox"].create(
            {"template_id": template.id, "company_id": self.company.id, "mailbox_id": mailbox.id}
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
        self.assertEqual(template.mail_server_id, mailbox.mail_server_id)
        self.assertEqual(line.mailbox_id, mailbox)
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
    """Plain ``ir.mail_server`` records that sign in with core's Outlook or Gmail integration (the
    ``microsoft_outlook`` and ``google_gmail`` mixins): no mailbox, field or chatter of the product, the
    mixins' own token handling, and core's redirect controllers for their sign-in."""

    CORE_ACCOUNT = "someone@invoicing.test"

    def setUp(self):
        super().setUp()
        accounts = self.providers["microsoft"].accounts
        accounts.add(self.CORE_ACCOUNT)
        self.addCleanup(accounts.discard, self.CORE_ACCOUNT)

    def create_core_servers(self):
        servers = self.env["ir.mail_server"].create(
            [
                {
                    "name": "Core Outlook",
                    "smtp_host": "smtp.outlook.com",
                    "smtp_port": 587,
                    "smtp_user": self.CORE_ACCOUNT,
                    "smtp_authentication": "outlook",
                    "smtp_encryption": "starttls",
                },
                {
                    "name": "Core Gmail",
                    "smtp_host": "smtp.gmail.com",
                    "smtp_port": 587,
                    "smtp_user": self.CORE_ACCOUNT,
                    "smtp_authentication": "gmail",
                    "smtp_encryption": "starttls",
                },
            ]
        )
        return servers[0], servers[1]

    def test_core_outlook_and_gmail_servers_keep_their_behaviour(self):
        """Core servers keep the authentication choices and the mixins' own token handling."""
        selection = dict(self.env["ir.mail_server"]._fields["smtp_authentication"].selection)
        self.assertTrue({"login", "certificate", "cli", "outlook", "gmail"} <= set(selection))
        outlook, gmail = self.create_core_servers()
        core = outlook | gmail
        # no mailbox behind them, and no field, to-do or chatter of the product on them
        self.assertFalse(core.smtp_invoicing_mailbox_ids)
        self.assertFalse(self.env["smtp_invoicing.mailbox"].search([("mail_server_id", "in", core.ids)]))
        self.assertEqual(
            {name for name in core._fields if name.startswith("smtp_invoicing")}, {"smtp_invoicing_mailbox_ids"}
        )
        for name in ("activity_ids", "message_ids", "verification_state", "sender_email"):
            self.assertNotIn(name, core._fields)
        self.assertFalse(self.env["mail.activity"].search([("res_model", "=", "ir.mail_server")]))
        # the mixins' token request: core's single UserError (own mailboxes keep the provider's error code)
        with self.assertRaisesRegex(UserError, "An error occurred when fetching the access token"):
            outlook._fetch_outlook_access_token("not-a-refresh-token")
        self.assertEqual(self.providers["microsoft"].token_requests[-1], ("refresh_token", 400))
        # core's sign-in links: an administrator's only, with core's state (model and record)
        with self.assertRaises(AccessError):
            outlook.with_user(self.mailbox_user).open_microsoft_outlook_uri()
        with self.assertRaises(AccessError):
            gmail.with_user(self.mailbox_user).open_google_gmail_uri()
        gmail_url = gmail.open_google_gmail_uri()["url"]
        self.assertTrue(gmail_url.startswith("https://accounts.google.com/o/oauth2/v2/auth?"), gmail_url)
        state = json.loads(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(gmail_url).query))["state"])
        self.assertEqual((state["model"], state["id"]), ("ir.mail_server", gmail.id))

    def test_core_outlook_server_signs_in_and_sends_through_core(self):
        """Core's Outlook sign-in goes through core's redirect controller (administrators only) and stores
        core's own token fields; the server then logs in with XOAUTH2 through core's connection."""
        outlook, gmail = self.create_core_servers()
        provider = self.providers["microsoft"]
        authorize = outlook.open_microsoft_outlook_uri()["url"]
        self.assertTrue(authorize.startswith(provider.base_url + provider.authorize_path), authorize)
        back = urllib.parse.urlsplit(provider.sign_in(authorize, self.CORE_ACCOUNT))
        self.assertEqual(back.path, "/microsoft_outlook/confirm")
        # core's controller refuses a non-administrator, even the owner of an own mailbox
        self.authenticate(MAILBOX_LOGIN, USER_PASSWORD)
        with self.assertLogs("odoo.addons.microsoft_outlook.controllers.main", "ERROR"):
            response = self.url_open(f"{back.path}?{back.query}", allow_redirects=False)
        self.assertEqual(response.status_code, 403)
        self.authenticate("admin", "admin")
        response = self.url_open(f"{back.path}?{back.query}", allow_redirects=False)
        self.assertEqual(response.status_code, 303, response.text[:300])
        self.assertTrue(response.headers["Location"].endswith(f"/odoo/ir.mail_server/{outlook.id}"))
        self.env.invalidate_all()
        self.assertIn(outlook.microsoft_outlook_refresh_token, provider.refresh_tokens)
        self.assertIn(outlook.microsoft_outlook_access_token, provider.access_tokens)
        self.assertEqual(provider.token_requests, [("authorization_code", 200)])
        self.assertFalse(self.env["smtp_invoicing.mailbox"].search([("mail_server_id", "=", outlook.id)]))
        # core's Gmail redirect handles core's state too (here a refusal at Google, shown by core)
        gmail_state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(gmail.open_google_gmail_uri()["url"]).query))[
            "state"
        ]
        query = urllib.parse.urlencode({"state": gmail_state, "error": "access_denied"})
        response = self.url_open(f"/google_gmail/confirm?{query}", allow_redirects=False)
        self.assertEqual(response.status_code, 200)
        self.assertIn("An error occur during the authentication process.", response.text)

        smtp_server = self.smtp_servers["microsoft"]
        outlook.write({"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port})
        with real_smtp():
            result = outlook.test_smtp_connection()
        self.assertEqual(result["params"]["type"], "success")
        self.assertEqual(smtp_server.auth_attempts, [("XOAUTH2", self.CORE_ACCOUNT, None)])


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
