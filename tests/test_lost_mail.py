"""No lost mail: refused before sending, failures kept with a reason, resent once fixed, 4xx retried."""

from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tools import mute_logger

from common import MAILBOX_LOGIN, PASSWORD, SmtpInvoicingCase, real_smtp

TEMPORARY = (454, "4.7.0 Temporary authentication failure, try again later")


class TestLostMail(SmtpInvoicingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.invoice_template = cls.env.ref("account.email_template_edi_invoice")
        cls.partner_a.email = "customer@client.test"
        cls.partner_a.invoice_sending_method = "email"

    def setUp(self):
        super().setUp()
        self.invoice_mailbox()

    def invoices(self, count):
        return self.env["account.move"].union(
            *(
                self.create_invoice("out_invoice", partner=self.partner_a, amounts=[100.0 + n], post=True)
                for n in range(count)
            )
        )

    def mails(self, moves):
        return self.env["mail.mail"].search([("model", "=", "account.move"), ("res_id", "in", moves.ids)])

    def test_unverified_mailbox_is_refused_before_sending(self):
        """Send & Print names the mailbox, why it cannot send and who fixes it, and sends nothing."""
        invoice = self.invoices(1)
        self.mailbox._smtp_invoicing_set_state("failed", "The user name or password was refused.")
        connections = self.server.connections
        with self.assertRaises(UserError) as caught:
            self.send_and_print(invoice)
        message = caught.exception.args[0]
        self.assertIn("Invoices mailbox", message)
        self.assertIn("password was refused", message)
        self.assertIn("Settings administrator", message)
        self.assertFalse(self.server.messages)
        self.assertEqual(self.server.connections, connections)

    def test_password_refused_mid_way_mails_wait_then_leave_once_fixed(self):
        """Password revoked: Failed at once, its owner gets a to-do, the mails wait in the queue (no retry loop)
        and each leaves exactly once, by itself, when the mailbox is verified again."""
        delivered = self.invoices(1)
        self.send_in_background(delivered)
        self.assertEqual(len(self.server.messages), 1)
        moves = self.invoices(3)
        self.server.users[MAILBOX_LOGIN] = "revoked"
        self.send_in_background(moves)

        self.assertEqual(len(self.server.messages), 1)
        mails = self.mails(moves)
        self.assertEqual(len(mails), 3)
        self.assertEqual(set(mails.mapped("state")), {"outgoing"})
        self.assertEqual(set(mails.mapped("smtp_invoicing_retry_count")), {0})
        self.assertEqual(self.mailbox.verification_state, "failed")
        self.assertIn("password was refused", self.mailbox.verification_message)
        self.assertEqual(self.mailbox.activity_ids.user_id, self.mailbox_user)
        for move in moves:
            self.assertFalse(move.is_move_sent)
            self.assertEqual(move.smtp_invoicing_delivery_state, "queued")
            self.assertIn("cannot send right now", move.smtp_invoicing_mail_failure)
            self.assertIn("password was refused", move.smtp_invoicing_mail_failure)
        self.assertTrue(delivered.is_move_sent)
        self.assertEqual(delivered.smtp_invoicing_delivery_state, "sent")

        # the queue does not knock on the server again while the mailbox is failed
        attempts = len(self.server.auth_attempts)
        with real_smtp():
            self.env["mail.mail"].process_email_queue()
        self.assertEqual(len(self.server.auth_attempts), attempts)

        self.server.users[MAILBOX_LOGIN] = PASSWORD
        mail_queue = self.env.ref("mail.ir_cron_mail_scheduler_action")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", mail_queue.id)])
        self.verify(self.mailbox)
        self.assertEqual(self.mailbox.verification_state, "verified")
        # verified again: the queue is woken up for the waiting mails, and the activity is done
        self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", mail_queue.id)]), triggers + 1)
        self.assertFalse(self.mailbox.activity_ids)
        with real_smtp():
            self.env["mail.mail"].process_email_queue()
            self.env["mail.mail"].process_email_queue()

        subjects = sorted(received.message["Subject"] for received in self.server.messages)
        self.assertEqual(len(subjects), 4)
        for move in delivered + moves:
            self.assertEqual(len([s for s in subjects if f"(Ref {move.name})" in s]), 1)
            self.assertTrue(move.is_move_sent)
            self.assertEqual(move.smtp_invoicing_delivery_state, "sent")
            self.assertFalse(move.smtp_invoicing_mail_failure)

    def test_temporary_failure_is_retried_and_delivered_once(self):
        """A 4xx refusal leaves the mail in the queue, shown on the invoice; the next run delivers it once."""
        invoice = self.invoices(1)
        self.server.auth_reply = TEMPORARY
        self.send_and_print(invoice)
        self.assertFalse(self.server.messages)
        mail = self.mails(invoice)
        self.assertEqual(mail.state, "outgoing")
        self.assertEqual(mail.smtp_invoicing_retry_count, 1)
        self.assertEqual(self.mailbox.verification_state, "verified")
        self.assertIn("temporary", invoice.smtp_invoicing_mail_failure)
        self.assertFalse(invoice.is_move_sent)

        self.server.auth_reply = None
        with real_smtp():
            self.env["mail.mail"].process_email_queue()
            self.assertFalse(self.server.messages, "retried before its time")
            with freeze_time(fields.Datetime.now() + timedelta(minutes=10)):
                self.env["mail.mail"].process_email_queue()
            self.env["mail.mail"].process_email_queue()
        self.assertEqual(len(self.server.messages), 1)
        self.assertIn(invoice.name, self.server.messages[0].message["Subject"])
        self.assertFalse(invoice.smtp_invoicing_mail_failure)
        self.assertTrue(invoice.is_move_sent)

    def test_refused_mail_has_a_readable_reason_4xx_retried_send_as_denied_holds(self):
        """A 4xx reply to one mail puts it back in the queue; SendAsDenied fails the mailbox and holds the mail."""
        invoice = self.invoices(1)
        self.server.mail_from_reply = (451, "4.3.0 Mailbox temporarily unavailable")
        # core logs every per-mail refusal as an error, with its stack trace
        with mute_logger("odoo.addons.mail.models.mail_mail"):
            self.send_and_print(invoice)
        mail = self.mails(invoice)
        self.assertEqual(mail.state, "outgoing")
        self.assertIn("refused this mail for now", mail.failure_reason)
        self.assertIn("451", mail.failure_reason)

        self.server.mail_from_reply = (550, "5.7.60 SendAsDenied; not allowed to send as billing")
        with real_smtp(), mute_logger("odoo.addons.mail.models.mail_mail"):
            with freeze_time(fields.Datetime.now() + timedelta(minutes=10)):
                self.env["mail.mail"].process_email_queue()
            attempts = len(self.server.mail_from_commands)
            with freeze_time(fields.Datetime.now() + timedelta(hours=5)):
                self.env["mail.mail"].process_email_queue()
        # every mail of this mailbox would be refused the same way: the mailbox is Failed, the mail waits
        self.assertEqual(len(self.server.mail_from_commands), attempts)
        self.assertEqual(self.mailbox.verification_state, "failed")
        self.assertIn("SendAsDenied", self.mailbox.verification_message)
        self.assertEqual(mail.state, "outgoing")
        self.assertNotIn("Traceback", mail.failure_reason)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "queued")
        self.assertIn("SendAsDenied", invoice.smtp_invoicing_mail_failure)
        self.assertFalse(self.server.messages)

    def test_only_administrators_resend(self):
        """An invoicing user cannot put a mailbox's failed mails back in the queue."""
        clerk = self.new_invoicing_user()
        with self.assertRaises(AccessError):
            self.mailbox.with_user(clerk).action_smtp_invoicing_resend_failed()
