"""A status that heals itself: a night's provider hiccup never stops invoicing, and only a person's fix is asked."""

from datetime import timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.tools import mute_logger

from odoo.addons.smtp_invoicing.lib import smtp

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase, real_smtp
from smtp_servers import SmtpServer, closed_port

MAIL_LOGGER = "odoo.addons.mail.models.mail_mail"
VERIFICATION_LOGGER = "odoo.addons.smtp_invoicing.models.smtp_invoicing_mailbox_verification"


class TestSelfHealing(MailboxCase):
    def setUp(self):
        super().setUp()
        self.cron = self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")

    def cron_triggers(self):
        return self.env["ir.cron.trigger"].search([("cron_id", "=", self.cron.id)]).mapped("call_at")

    def run_cron_at(self, when):
        with freeze_time(when):
            self.run_verification_cron()

    def test_unreachable_recheck_keeps_the_mailbox_verified_and_heals(self):
        """Re-check with the server gone: still Verified, a warning and an earlier re-check; back, warning gone."""
        server = SmtpServer(mode="starttls", cert=self.pki.leaf(), users={MAILBOX_LOGIN: PASSWORD}).start()
        port = server.port
        mailbox = self.verify(self.create_mailbox(server))
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        server.stop()
        due = mailbox.smtp_invoicing_next_check_at
        self.assertEqual(due, mailbox.smtp_invoicing_verified_at + timedelta(hours=24))

        self.run_cron_at(due)
        self.assertEqual(mailbox.verification_state, "verified")
        self.assertIn("keeps sending", mailbox.smtp_invoicing_check_warning)
        self.assertIn("refused the connection", mailbox.smtp_invoicing_check_warning)
        self.assertEqual(mailbox.smtp_invoicing_next_check_at, due + timedelta(minutes=10))
        self.assertIn(due + timedelta(minutes=10), self.cron_triggers())
        # usable meanwhile: nothing blocks Send & Print
        self.assertFalse(mailbox._smtp_invoicing_not_ready_message())

        self.run_cron_at(due + timedelta(minutes=10))
        self.assertEqual(mailbox.smtp_invoicing_next_check_at, due + timedelta(minutes=40), "backs off: 10, then 30")

        back = SmtpServer(mode="starttls", cert=self.pki.leaf(), users={MAILBOX_LOGIN: PASSWORD}, port=port).start()
        self.addCleanup(back.stop)
        self.run_cron_at(due + timedelta(minutes=40))
        self.assertEqual(mailbox.verification_state, "verified")
        self.assertFalse(mailbox.smtp_invoicing_check_warning)
        self.assertEqual(mailbox.smtp_invoicing_check_failures, 0)
        self.assertEqual(mailbox.smtp_invoicing_next_check_at, due + timedelta(minutes=40, hours=24))

    def test_first_check_unreachable_fails_then_heals_by_itself(self):
        """A first check that cannot reach the server: Failed, re-checked automatically, Verified when it answers."""
        port = closed_port()
        mailbox = self.create_mailbox(smtp_port=port)
        mailbox.action_verify()
        now = fields.Datetime.now()
        self.run_cron_at(now)
        self.assertEqual(mailbox.verification_state, "failed")
        self.assertIn("refused the connection", mailbox.verification_message)
        self.assertIn("checks it again automatically in 10 minutes", mailbox.verification_message)
        self.assertFalse(mailbox.activity_ids, "nobody is asked to fix what may heal by itself")

        server = SmtpServer(mode="starttls", cert=self.pki.leaf(), users={MAILBOX_LOGIN: PASSWORD}, port=port).start()
        self.addCleanup(server.stop)
        self.run_cron_at(now + timedelta(minutes=9))
        self.assertEqual(mailbox.verification_state, "failed", "not before its time")
        self.run_cron_at(now + timedelta(minutes=10))
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)

    def test_failure_a_person_must_fix_is_not_rechecked(self):
        """A refused password: Failed, its owner gets a to-do, no automatic re-check."""
        server = self.start_server(users={MAILBOX_LOGIN: "changed"})
        mailbox = self.verify(self.create_mailbox(server))
        self.assertEqual(mailbox.verification_state, "failed")
        self.assertFalse(mailbox.smtp_invoicing_next_check_at)
        self.assertEqual(mailbox.activity_ids.user_id, self.mailbox_user)
        attempts = len(server.auth_attempts)
        self.run_cron_at(fields.Datetime.now() + timedelta(days=3))
        self.assertEqual(len(server.auth_attempts), attempts)

    def test_sender_refused_at_rcpt_time_fails_the_verification(self):
        """A server that checks the sender at RCPT time (Postfix's default) refuses it during verification."""
        server = self.start_server(
            rcpt_replies={MAILBOX_LOGIN: (553, "5.7.1 <billing@invoicing.test>: Sender address rejected: not owned")}
        )
        mailbox = self.verify(self.create_mailbox(server))
        self.assertEqual(mailbox.verification_state, "failed")
        self.assertIn("refused to send as", mailbox.verification_message)
        self.assertEqual(server.commands[-2:], ["MAIL", "RCPT"])
        self.assertEqual(server.messages, [])

    def test_pending_mailbox_holds_its_mails_then_sends_them(self):
        """Mails of a mailbox being verified again wait in the queue, untouched, and leave once it is verified."""
        server = self.start_server()
        mailbox = self.verify(self.create_mailbox(server))
        mail = self.env["mail.mail"].create(
            {
                "email_to": "customer@client.test",
                "subject": "Waits for the check",
                "body_html": "<p>x</p>",
                "email_from": MAILBOX_LOGIN,
                "mail_server_id": mailbox.mail_server_id.id,
            }
        )
        mailbox.action_verify()
        connections = server.connections
        with real_smtp(), mute_logger(MAIL_LOGGER):
            self.env["mail.mail"].process_email_queue()
        self.assertEqual(mail.state, "outgoing")
        self.assertFalse(mail.failure_reason)
        self.assertEqual(server.connections, connections)
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified")
        with real_smtp():
            self.env["mail.mail"].process_email_queue()
        self.assertEqual([m.message["Subject"] for m in server.messages], ["Waits for the check"])

    def test_result_of_a_check_is_dropped_when_settings_changed_meanwhile(self):
        """Settings changed while a check was on the network: its stale result is not recorded."""
        server = self.start_server()
        mailbox = self.create_mailbox(server)
        mailbox.action_verify()
        self.env.flush_all()
        (lease,) = self.env["smtp_invoicing.mailbox"]._smtp_invoicing_take_leases(mailbox.ids)
        self.env.invalidate_all()
        mailbox.smtp_port = 2588
        self.env.flush_all()
        self.env["smtp_invoicing.mailbox"]._smtp_invoicing_record_leases([(lease, None)])
        self.env.invalidate_all()
        self.assertEqual(mailbox.verification_state, "draft")
        self.assertFalse(mailbox.smtp_invoicing_lease_until)

    def test_a_lease_keeps_a_second_worker_away(self):
        """While a check holds its lease, another run does not take the mailbox; an expired lease is taken again."""
        server = self.start_server()
        mailbox = self.create_mailbox(server)
        mailbox.action_verify()
        self.env.flush_all()
        model = self.env["smtp_invoicing.mailbox"]
        (lease,) = model._smtp_invoicing_take_leases(mailbox.ids)
        self.assertEqual(model._smtp_invoicing_take_leases(mailbox.ids), [])
        with freeze_time(lease.until + timedelta(seconds=1)):
            (second,) = model._smtp_invoicing_take_leases(mailbox.ids)
        self.assertGreater(second.until, lease.until)

    def test_results_finished_together_are_recorded_each_on_its_mailbox(self):
        """Three results recorded in one batch: each mailbox gets its own status and chatter note."""
        server = self.start_server()
        good = self.create_mailbox(server, name="Good 1") | self.create_mailbox(server, name="Good 2")
        wrong = self.create_mailbox(server, name="Wrong password", smtp_pass="not-the-password")
        (good | wrong).action_verify()
        self.env.flush_all()
        model = self.env["smtp_invoicing.mailbox"]
        leases = model._smtp_invoicing_take_leases((good | wrong).ids)
        error = smtp.SmtpCheckError("auth_failed", 535, "5.7.8 bad credentials")
        model._smtp_invoicing_record_leases(
            [(lease, error if lease.server_id == wrong.id else None) for lease in leases]
        )
        self.env.invalidate_all()
        self.assertEqual((good | wrong).mapped("verification_state"), ["verified", "verified", "failed"])
        verified = "Verified: Odoo connected securely"
        for mailbox, expected in ((good[0], verified), (good[1], verified), (wrong, "refused")):
            notes = mailbox.message_ids.filtered(lambda m: "Status: Failed" in m.body or verified in m.body)
            self.assertEqual(len(notes), 1, mailbox.name)
            self.assertIn(expected, notes.body)
        self.assertFalse(any((good | wrong).mapped("smtp_invoicing_lease_until")))

    def test_a_result_that_cannot_be_saved_does_not_lose_the_others(self):
        """One result of a batch fails to save: the others are recorded, its lease stays for a later check."""
        server = self.start_server()
        mailboxes = self.create_mailbox(server, name="A") | self.create_mailbox(server, name="B")
        mailboxes |= self.create_mailbox(server, name="C")
        mailboxes.action_verify()
        self.env.flush_all()
        model = self.env["smtp_invoicing.mailbox"]
        leases = model._smtp_invoicing_take_leases(mailboxes.ids)
        broken = mailboxes[1]
        mark_verified = type(model)._smtp_invoicing_mark_verified

        def failing_mark_verified(mailbox, notes=None):
            if mailbox.id == broken.id:
                raise ValueError("cannot save")
            return mark_verified(mailbox, notes=notes)

        with (
            patch.object(type(model), "_smtp_invoicing_mark_verified", failing_mark_verified),
            mute_logger(VERIFICATION_LOGGER),
        ):
            model._smtp_invoicing_record_leases([(lease, None) for lease in leases])
        self.env.invalidate_all()
        self.assertEqual(mailboxes.mapped("verification_state"), ["verified", "pending", "verified"])
        self.assertTrue(broken.smtp_invoicing_lease_until)
        self.assertEqual(len((mailboxes - broken).message_ids.filtered(lambda m: "Verified:" in m.body)), 2)
