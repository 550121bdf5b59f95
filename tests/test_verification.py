"""Verification of own mailboxes by the scheduled action, against real loopback servers."""

import json
import time

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import UserError

from odoo.addons.bus.models.bus import channel_with_db, json_dump

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase
from smtp_servers import DripServer, SilentListener, SmtpServer, closed_port


class TestVerification(MailboxCase):
    def assertFailed(self, mailbox, text):
        self.assertEqual(mailbox.verification_state, "failed", mailbox.verification_message)
        self.assertIn(text, mailbox.verification_message)

    def test_verify_button_queues_and_triggers_the_scheduled_action(self):
        """Verify sets Pending and triggers the verification cron at once."""
        mailbox = self.create_mailbox()
        cron = self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")
        triggers_before = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        mailbox.action_verify()
        self.assertEqual(mailbox.verification_state, "pending")
        self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), triggers_before + 1)

    def test_verify_without_password_is_refused_at_the_click(self):
        """Verify on a mailbox without password is refused at once, saying what to do; nothing is queued."""
        mailbox = self.create_mailbox(smtp_pass=False)
        cron = self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")
        triggers_before = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        messages_before = len(mailbox.message_ids)
        with self.assertRaisesRegex(UserError, "“Invoices mailbox” has no password yet"):
            mailbox.action_verify()
        self.assertEqual(mailbox.verification_state, "draft")
        self.assertFalse(mailbox.smtp_invoicing_next_check_at)
        self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), triggers_before)
        self.assertEqual(len(mailbox.message_ids), messages_before)

    def requester_messages(self, user):
        """What the bus carries to ``user``'s partner: [(type, payload)]."""
        channel = json_dump(channel_with_db(self.env.cr.dbname, user.partner_id))
        notifications = self.env["bus.bus"].sudo().search([("channel", "=", channel)], order="id")
        return [(message["type"], message["payload"]) for message in map(json.loads, notifications.mapped("message"))]

    def test_requester_is_told_the_result_once_it_is_saved(self):
        """Who clicked Verify is told Verified, or Failed and why, and their open form reloads; re-checks are silent."""
        good = self.create_mailbox(name="Good invoices")
        refusing = self.start_server(users={MAILBOX_LOGIN: "another"})
        refused = self.create_mailbox(refusing, name="Refused invoices")
        good.action_verify()
        refused.action_verify()
        self.assertEqual((good | refused).smtp_invoicing_requested_by_id, self.env.user)
        self.assertEqual(self.requester_messages(self.env.user), [])
        self.run_verification_cron()
        messages = self.requester_messages(self.env.user)
        toasts = {payload["message"]: payload["type"] for kind, payload in messages if kind == "simple_notification"}
        self.assertEqual(toasts.pop("Good invoices: Verified"), "success")
        [(failure, kind)] = toasts.items()
        self.assertEqual(kind, "danger")
        self.assertTrue(failure.startswith("Refused invoices: Failed — The user name or password was refused."))
        checked = [payload["id"] for kind, payload in messages if kind == "smtp_invoicing.mailbox_checked"]
        self.assertEqual(sorted(checked), sorted((good | refused).ids))

        with freeze_time(fields.Datetime.now() + __import__("datetime").timedelta(days=2)):
            self.run_verification_cron()
        self.assertEqual(good.verification_state, "verified")
        self.assertEqual(len(self.requester_messages(self.env.user)), len(messages), "a scheduled re-check is silent")

    def test_starttls_mailbox_is_verified_without_sending_mail(self):
        """STARTTLS + AUTH: Verified, one AUTH, MAIL FROM the sender, no mail sent, status in chatter."""
        server = self.start_server()
        mailbox = self.verify(self.create_mailbox(server))
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        self.assertTrue(mailbox.smtp_invoicing_verified_at)
        self.assertEqual(len(server.auth_attempts), 1)
        self.assertEqual(server.auth_attempts[0][1:], (MAILBOX_LOGIN, PASSWORD))
        self.assertIn(MAILBOX_LOGIN, " ".join(server.mail_from_commands))
        self.assertEqual(server.commands[:3], ["EHLO", "STARTTLS", "EHLO"])
        self.assertEqual(server.messages, [])
        bodies = " ".join(mailbox.message_ids.mapped("body"))
        self.assertIn("Verified", bodies)
        self.assertNotIn(PASSWORD, bodies)

    def test_chatter_says_mailbox_created_then_verified_once(self):
        """A new mailbox's chatter reads "Mailbox created", then "Verified: Odoo connected securely…" once."""
        chatter = {"mail_create_nolog": False, "tracking_disable": False}  # MailboxCase switches the chatter off
        server = self.start_server()
        mailbox = self.verify(self.create_mailbox(server, context=chatter))
        core = self.env["ir.mail_server"].with_context(**chatter).create({"name": "Relay", "smtp_host": "relay.test"})
        bodies = mailbox.message_ids.sorted("id").mapped("preview")
        self.assertEqual(bodies[0], "Mailbox created")
        self.assertEqual(bodies[-1], f"Verified: Odoo connected securely, logged in and may send as {MAILBOX_LOGIN}.")
        self.assertEqual(" ".join(bodies).count("Verified"), 1)
        # the chatter is the mailbox's own: the server behind it, and core's servers, have none
        self.assertNotIn("message_ids", self.env["ir.mail_server"]._fields)
        self.assertFalse(
            self.env["mail.message"].search_count(
                [("model", "=", "ir.mail_server"), ("res_id", "in", (core | mailbox.mail_server_id).ids)]
            ),
            "nothing logged on a server",
        )

    def test_implicit_tls_mailbox_is_verified(self):
        """SSL (implicit TLS) + AUTH: Verified."""
        server = self.start_server(mode="ssl")
        mailbox = self.verify(self.create_mailbox(server))
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)

    def test_protocol_that_does_not_fit_the_port_says_which_to_choose(self):
        """STARTTLS on an implicit-TLS port and SSL on a STARTTLS port: Failed, naming the encryption to choose,
        with a 20-second timeout that would otherwise have said "did not answer in time"; no AUTH."""
        self.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.verify_timeout", "20")
        self.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.verify_deadline", "60")
        implicit = self.start_server(mode="ssl")
        starttls = self.start_server()
        on_465 = self.create_mailbox(implicit, smtp_encryption="starttls")
        on_587 = self.create_mailbox(starttls, smtp_encryption="ssl")
        (on_465 | on_587).action_verify()
        self.run_verification_cron()
        self.assertFailed(on_465, "expects SSL/TLS from the first byte")
        self.assertIn("choose SSL/TLS", on_465.verification_message)
        self.assertFailed(on_587, "expects STARTTLS")
        self.assertIn("choose TLS (STARTTLS)", on_587.verification_message)
        self.assertEqual(implicit.auth_attempts + starttls.auth_attempts, [])

    def test_wrong_password_fails_with_app_password_hint(self):
        """535 5.7.8: Failed, user name or password refused, with the App Password hint; one attempt only."""
        server = self.start_server(users={MAILBOX_LOGIN: "another"})
        mailbox = self.verify(self.create_mailbox(server))
        self.assertFailed(mailbox, "user name or password was refused")
        self.assertIn("App Password", mailbox.verification_message)
        self.assertEqual(len(server.auth_attempts), 1)

    def test_gmail_app_password_required(self):
        """534 5.7.9: Failed with the 2-Step Verification and App Password steps."""
        server = self.start_server(auth_reply=(534, "5.7.9 Application-specific password required."))
        mailbox = self.verify(self.create_mailbox(server))
        self.assertFailed(mailbox, "2-Step Verification")

    def test_microsoft_basic_auth_disabled(self):
        """535 5.7.139: Failed, basic authentication disabled."""
        server = self.start_server(
            auth_reply=(535, "5.7.139 Authentication unsuccessful, basic authentication is disabled.")
        )
        mailbox = self.verify(self.create_mailbox(server))
        self.assertFailed(mailbox, "Authenticated SMTP")

    def test_sender_refused_and_send_as_denied(self):
        """553 and 550 5.7.60 on MAIL FROM: Failed, the sender does not belong to the mailbox."""
        refused = self.start_server(mail_from_reply=(553, "5.7.1 Sender address rejected: not owned by user"))
        denied = self.start_server(
            mail_from_reply=(550, "5.7.60 SMTP; Client does not have permissions to send as this sender")
        )
        self.assertFailed(self.verify(self.create_mailbox(refused)), "refused to send as")
        self.assertFailed(self.verify(self.create_mailbox(denied)), "SendAsDenied")

    def test_no_credentials_without_starttls(self):
        """A server offering AUTH but no STARTTLS fails and never receives the credentials."""
        server = SmtpServer(mode="plain", users={MAILBOX_LOGIN: PASSWORD}, advertise_auth_without_tls=True)
        server.__enter__()
        self.addCleanup(server.__exit__, None, None, None)
        mailbox = self.verify(self.create_mailbox(server))
        self.assertFailed(mailbox, "does not offer an encrypted connection")
        self.assertEqual(server.auth_attempts, [])

    def test_untrusted_and_wrong_host_certificates(self):
        """Self-signed or wrong-host certificates fail and no credentials are sent."""
        self_signed = SmtpServer(mode="starttls", cert=self.pki.self_signed(), users={MAILBOX_LOGIN: PASSWORD})
        wrong_host = SmtpServer(mode="starttls", cert=self.pki.wrong_host(), users={MAILBOX_LOGIN: PASSWORD})
        for server in (self_signed, wrong_host):
            server.__enter__()
            self.addCleanup(server.__exit__, None, None, None)
        self.assertFailed(self.verify(self.create_mailbox(self_signed)), "not trusted")
        self.assertFailed(self.verify(self.create_mailbox(wrong_host)), "issued for another name")
        self.assertEqual(self_signed.auth_attempts + wrong_host.auth_attempts, [])

    def test_nothing_listening(self):
        """A closed port fails with connection refused."""
        mailbox = self.verify(self.create_mailbox(smtp_port=closed_port()))
        self.assertFailed(mailbox, "refused the connection")

    def test_silent_listener_ends_within_the_timeout(self):
        """A listener that accepts TCP and never answers, and one that answers a byte at a time, fail
        as timeouts within the configured time: the silent one after the timeout, the dripping one at
        the deadline, both in the same run of the scheduled action."""
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("smtp_invoicing.verify_timeout", "2")
        params.set_param("smtp_invoicing.verify_deadline", "3")
        with SilentListener() as listener, DripServer() as drip:
            silent = self.create_mailbox(smtp_port=listener.port)
            dripping = self.create_mailbox(smtp_port=drip.port)
            (silent | dripping).action_verify()
            start = time.monotonic()
            self.run_verification_cron()
            elapsed = time.monotonic() - start
        self.assertFailed(silent, "did not answer in time")
        self.assertFailed(dripping, "did not answer in time")
        self.assertGreaterEqual(elapsed, 3, "the drip server kept the check busy until the deadline")
        self.assertLess(elapsed, 3 + 2)

    def test_unknown_host_name(self):
        """An unresolvable host name fails with a DNS message."""
        mailbox = self.verify(self.create_mailbox(smtp_host="nonexistent.invalid"))
        self.assertFailed(mailbox, "does not exist")

    def test_archived_user_fails_at_reverification(self):
        """A verified mailbox whose user was archived fails at the next periodic verification."""
        mailbox = self.verify(self.create_mailbox())
        self.assertEqual(mailbox.verification_state, "verified")
        self.mailbox_user.active = False
        with freeze_time(fields.Datetime.now() + __import__("datetime").timedelta(days=2)):
            self.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        self.assertFailed(mailbox, "active internal user")

    def test_changing_a_setting_requires_a_new_verification(self):
        """Editing host, port, user or password of a verified mailbox puts it back to Draft."""
        mailbox = self.verify(self.create_mailbox())
        mailbox.smtp_pass = "rotated"
        self.assertEqual(mailbox.verification_state, "draft")

    def test_missing_key_fails_clearly(self):
        """A password that cannot be decrypted gives Failed with 'must be entered again', no crash."""
        mailbox = self.create_mailbox()
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_password_enc = 'gAAAAAgarbage' WHERE id = %s",
            [mailbox.id],
        )
        mailbox.invalidate_recordset()
        from odoo.tools import mute_logger

        with mute_logger("odoo.addons.smtp_invoicing.models.smtp_invoicing_mailbox_password"):
            self.verify(mailbox)
        self.assertFailed(mailbox, "must be entered again")
