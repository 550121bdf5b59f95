"""*Use as own mailbox* on a core outgoing server: converted in place, password kept and encrypted, verified."""

import os
from unittest.mock import patch

from lxml import etree

from odoo.exceptions import UserError

from odoo.addons.smtp_invoicing.lib import tls
from odoo.addons.smtp_invoicing.models.ir_mail_server import sender_of

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase


class TestConversion(MailboxCase):
    def setUp(self):
        super().setUp()
        self.loopback = self.start_server()
        # the loopback server's CA trusted as the system's own CAs trust a public provider: a core server
        # has no extra CA of its own, and its conversion keeps what the server has
        self.trust_system_wide(self.pki.ca_path)

    def trust_system_wide(self, ca_path):
        environ = patch.dict(os.environ, {"SSL_CERT_FILE": ca_path})
        environ.start()
        tls._cached_ssl_context.cache_clear()
        self.addCleanup(tls._cached_ssl_context.cache_clear)
        self.addCleanup(environ.stop)

    def core_server(self, **values):
        """An outgoing server as an administrator makes it in Settings › Technical › Outgoing Mail Servers."""
        vals = {
            "name": "Office relay",
            "smtp_host": self.loopback.host,
            "smtp_port": self.loopback.port,
            "smtp_encryption": "starttls",
            "smtp_authentication": "login",
            "smtp_user": MAILBOX_LOGIN,
            "smtp_pass": PASSWORD,
        }
        vals.update(values)
        return self.env["ir.mail_server"].create(vals)

    def password_columns(self, server):
        """Core's clear column of ``server`` and the encrypted column of the mailbox on it (None if none)."""
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT server.smtp_pass, mailbox.smtp_invoicing_password_enc FROM ir_mail_server server"
            " LEFT JOIN smtp_invoicing_mailbox mailbox ON mailbox.mail_server_id = server.id WHERE server.id = %s",
            [server.id],
        )
        return self.env.cr.fetchone()

    def state_of(self, server):
        """What a conversion changes: the mailboxes on ``server`` and its core settings."""
        self.env.invalidate_all()
        mailboxes = self.env["smtp_invoicing.mailbox"].with_context(active_test=False).search_count([])
        return (
            mailboxes,
            server.smtp_invoicing_mailbox_ids.ids,
            server.read(["name", "smtp_host", "smtp_user", "from_filter", "active"]),
            self.password_columns(server),
        )

    def assertConvertedAndVerified(self, server):
        """Convert ``server``: a mailbox on this very server, pending, opened in the mailbox form, then verified
        by the scheduled action with the kept password; return the mailbox."""
        auth_before = len(self.loopback.auth_attempts)
        servers_before = self.env["ir.mail_server"].with_context(active_test=False).search_count([])
        action = server.action_smtp_invoicing_convert()
        mailbox = server.smtp_invoicing_mailbox_ids
        self.assertEqual(len(mailbox), 1)
        self.assertEqual(mailbox.mail_server_id, server, "converted in place: no new server")
        self.assertEqual(self.env["ir.mail_server"].with_context(active_test=False).search_count([]), servers_before)
        self.assertEqual(mailbox.verification_state, "pending")
        self.assertEqual(
            (action["res_model"], action["res_id"], action["views"]),
            (
                "smtp_invoicing.mailbox",
                mailbox.id,
                [(self.env.ref("smtp_invoicing.smtp_invoicing_mailbox_view_form").id, "form")],
            ),
        )
        self.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        self.env.invalidate_all()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        self.assertEqual(
            [attempt[1:] for attempt in self.loopback.auth_attempts[auth_before:]], [(MAILBOX_LOGIN, PASSWORD)]
        )
        clear, encrypted = self.password_columns(server)
        self.assertFalse(clear, "an own mailbox's password is never in core's clear column")
        self.assertTrue(encrypted)
        self.assertNotIn(PASSWORD, encrypted)
        return mailbox

    def test_core_server_becomes_a_verified_mailbox_in_place(self):
        """The same record becomes an own mailbox, its clear password encrypted, sender and company filled, verified."""
        server = self.core_server()
        self.assertEqual(self.password_columns(server), (PASSWORD, None), "core keeps its password in clear")
        mailbox = self.assertConvertedAndVerified(server)
        self.assertEqual((mailbox.name, server.name), ("Office relay", "Office relay"))
        self.assertEqual((mailbox.sender_email, mailbox.sender_name), (MAILBOX_LOGIN, self.company.name))
        self.assertEqual(mailbox.smtp_invoicing_company_id, self.mailbox_user.company_id)
        self.assertEqual(mailbox.smtp_invoicing_preset, "custom")
        self.assertIn("Converted from an outgoing server", " ".join(mailbox.message_ids.mapped("body")))

    def test_gmail_server_gets_the_gmail_preset(self):
        """A server on smtp.gmail.com is shown with the Gmail preset (and its App Password help)."""
        server = self.core_server(smtp_host="smtp.gmail.com", smtp_port=587)
        server.action_smtp_invoicing_convert()
        self.assertEqual(server.smtp_invoicing_mailbox_ids.smtp_invoicing_preset, "gmail")

    def test_sender_comes_from_the_user_name_else_a_full_from_filter(self):
        """The sender is the user name when it is an address, else FROM Filtering when it is one full address."""
        self.assertEqual(sender_of("Billing@Invoicing.test", "other@invoicing.test"), "billing@invoicing.test")
        self.assertEqual(sender_of("billing", "factures@acme.test"), "factures@acme.test")
        self.assertFalse(sender_of("billing", "acme.test"))
        self.assertFalse(sender_of("billing", "a@acme.test,b@acme.test"))
        self.assertFalse(sender_of(False, False))

    def assertRefused(self, server, text):
        """The conversion of ``server`` is refused with ``text`` and its name, and changes nothing."""
        before = self.state_of(server)
        with self.assertRaises(UserError) as caught:
            server.action_smtp_invoicing_convert()
        self.assertIn(text, caught.exception.args[0])
        self.assertIn(server.name, caught.exception.args[0])
        self.assertEqual(self.state_of(server), before)
        self.assertFalse(self.loopback.auth_attempts)

    def test_unlicensed_user_name_is_refused(self):
        """A user name that is no active internal user's login or email is refused with the licence message."""
        self.assertRefused(self.core_server(smtp_user="stranger@invoicing.test"), "active internal user")
        server = self.core_server(name="Archived user's relay")
        self.mailbox_user.active = False
        self.assertRefused(server, "active internal user")

    def test_unencrypted_server_is_refused(self):
        """A server without TLS or SSL is refused: an own mailbox never sends its password unencrypted."""
        self.assertRefused(self.core_server(smtp_encryption="none"), "TLS (STARTTLS) or SSL")

    def test_server_without_password_login_is_refused(self):
        """Command-line authentication, or login without a user name, is refused: a mailbox logs in."""
        self.assertRefused(self.core_server(smtp_authentication="cli"), "user name and password")
        self.assertRefused(self.core_server(name="Anonymous relay", smtp_user=False), "user name and password")

    def test_own_mailbox_is_refused(self):
        """The server of an own mailbox, archived or not, cannot be converted again."""
        self.assertRefused(self.create_mailbox().mail_server_id, "already an own mailbox")
        archived = self.create_mailbox(name="Archived mailbox")
        archived.active = False
        self.assertRefused(archived.mail_server_id, "already an own mailbox")

    def test_button_on_core_form_for_core_servers_only(self):
        """Core's server form has *Use as own mailbox* for Settings administrators, hidden on own mailboxes."""
        views = self.env["ir.mail_server"].get_views([(self.env.ref("base.ir_mail_server_form").id, "form")])
        arch = etree.fromstring(views["views"]["form"]["arch"])
        [button] = arch.xpath("//header/button[@name='action_smtp_invoicing_convert']")
        self.assertEqual(button.get("invisible"), "smtp_invoicing_mailbox_ids")
        self.assertIn("smtp_invoicing_mailbox_ids", views["models"]["ir.mail_server"]["fields"], "read by the form")
        self.assertTrue(button.get("confirm"))
        view = self.env.ref("smtp_invoicing.ir_mail_server_form_smtp_invoicing_conversion")
        self.assertIn('groups="base.group_system"', view.arch_db)
