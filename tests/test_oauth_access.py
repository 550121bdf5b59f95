"""Who may connect, replace or disconnect an OAuth mailbox's secret, and that nobody reads a token."""

import re

from odoo.exceptions import AccessError

from odoo.addons.mail.tests.common import mail_new_test_user

from common import MAILBOX_LOGIN, PASSWORD
from test_oauth import USER_PASSWORD, OAuthCase

ROLE_PASSWORD = "role-login-pw-5Tz8"


class TestOAuthAccessMatrix(OAuthCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        other_company = cls.env["res.company"].create({"name": "Other Company"})
        cls.roles = {
            "clerk": cls._user("clerk@invoicing.test", "base.group_user,account.group_account_invoice", cls.company),
            "admin": cls._user("admin@invoicing.test", "base.group_user,base.group_system", cls.company),
            "other_company_admin": cls._user(
                "other@invoicing.test", "base.group_user,base.group_system", other_company
            ),
        }

    @classmethod
    def _user(cls, login, groups, company):
        user = mail_new_test_user(
            cls.env, login=login, email=login, groups=groups, company_id=company.id, company_ids=[(6, 0, company.ids)]
        )
        user.password = ROLE_PASSWORD
        return user

    def status(self, login, login_password, method, path, **data):
        self.authenticate(login, login_password)
        if method == "GET":
            return self.url_open(path, allow_redirects=False).status_code
        token = self.csrf_token()
        return self.url_open(path, data={"csrf_token": token, **data}, allow_redirects=False).status_code

    def csrf_token(self):
        """The session's CSRF token, as web.layout writes it in every page."""
        page = self.url_open("/web/login", allow_redirects=True)
        return re.search(r'csrf_token: "([^"]+)"', page.text).group(1)

    def test_connect_routes_by_role(self):
        """The owner and the company's administrator may use the connect page; another clerk and another company's
        administrator get 403 on every route."""
        mailbox = self.create_oauth_mailbox("microsoft")
        base = f"/smtp_invoicing/mailbox/{mailbox.id}"
        owner = (MAILBOX_LOGIN, USER_PASSWORD)
        self.assertEqual(self.status(*owner, "GET", base + "/connect"), 200)
        self.assertEqual(self.status(*owner, "POST", base + "/sign_in"), 303)
        admin = (self.roles["admin"].login, ROLE_PASSWORD)
        self.assertEqual(self.status(*admin, "GET", base + "/connect"), 200)
        for role in ("clerk", "other_company_admin"):
            credentials = (self.roles[role].login, ROLE_PASSWORD)
            for method, path in (
                ("GET", "/connect"),
                ("POST", "/sign_in"),
                ("POST", "/password"),
                ("POST", "/disconnect"),
            ):
                with self.subTest(role=role, path=path):
                    self.assertEqual(self.status(*credentials, method, base + path), 403)
        self.assertTrue(mailbox.smtp_invoicing_awaiting_connection)

    def test_admin_replaces_the_secret_but_never_reads_it(self):
        """An administrator may type a new password or disconnect; no read returns a password or a token."""
        password_mailbox = self.create_mailbox(self.server, smtp_pass=False)
        admin = self.roles["admin"]
        self.assertEqual(
            self.status(
                admin.login,
                ROLE_PASSWORD,
                "POST",
                f"/smtp_invoicing/mailbox/{password_mailbox.id}/password",
                password=PASSWORD,
            ),
            303,
        )
        self.env.invalidate_all()
        self.assertTrue(password_mailbox.smtp_invoicing_connected)

        mailbox = self.create_oauth_mailbox("google")
        self.sign_in(mailbox)
        tokens = self.issued_tokens("google")
        self.assertTrue(tokens)
        # the mailboxes, and the core servers behind them
        for record in (mailbox, password_mailbox, mailbox.mail_server_id, password_mailbox.mail_server_id):
            values = record.with_user(admin).read(list(record._fields))[0]
            text = repr(values)
            self.assertNotIn(PASSWORD, text)
            for token in tokens:
                self.assertNotIn(token, text)
        for role in ("clerk",):
            with self.assertRaises(AccessError):
                mailbox.with_user(self.roles[role]).read(["smtp_invoicing_oauth_refresh_enc"])
        with self.assertRaises(AccessError):
            mailbox.with_user(self.mailbox_user).read(["smtp_invoicing_oauth_access_enc"])
        with self.assertRaises(AccessError):
            mailbox.with_user(self.roles["other_company_admin"]).action_smtp_invoicing_disconnect()
        mailbox.with_user(admin).action_smtp_invoicing_disconnect()
        self.assertEqual(self.token_columns(mailbox)[:2], (None, None))
        # the owner is asked to connect it again
        self.assertTrue(mailbox.activity_ids.filtered(lambda a: a.user_id == self.mailbox_user))

    def test_only_the_owner_or_an_admin_may_disconnect(self):
        """The owner disconnects from the connect page; another clerk cannot, through the ORM either."""
        mailbox = self.create_oauth_mailbox("microsoft")
        self.sign_in(mailbox)
        with self.assertRaises(AccessError):
            mailbox.with_user(self.roles["clerk"]).action_smtp_invoicing_disconnect()
        self.assertTrue(self.token_columns(mailbox)[0])
        mailbox._smtp_invoicing_disconnect_by(self.mailbox_user)
        self.assertEqual(self.token_columns(mailbox)[:2], (None, None))
