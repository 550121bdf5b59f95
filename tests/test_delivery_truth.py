"""Delivery truth: a document is marked sent exactly when its own mail was accepted, nothing lost, nothing twice."""

import ast
import os
from datetime import timedelta
from unittest.mock import patch

from cryptography.fernet import Fernet
from freezegun import freeze_time
from lxml import etree

from odoo import fields
from odoo.tests import new_test_user
from odoo.tools import mute_logger

from common import MAILBOX_LOGIN, SmtpInvoicingCase, real_smtp
from smtp_servers import closed_port

MAIL_LOGGER = "odoo.addons.mail.models.mail_mail"
PASSWORD_LOGGER = "odoo.addons.smtp_invoicing.models.smtp_invoicing_mailbox_password"
CUSTOMER = "customer@client.test"


class TestDeliveryTruth(SmtpInvoicingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.invoice_template = cls.env.ref("account.email_template_edi_invoice")
        cls.partner_a.email = CUSTOMER

    def setUp(self):
        super().setUp()
        self.invoice_mailbox()
        self.mail_queue = self.env.ref("mail.ir_cron_mail_scheduler_action")

    def invoice(self):
        return self.create_invoice("out_invoice", partner=self.partner_a, amounts=[100.0], post=True)

    def document_mails(self, move):
        return self.env["mail.mail"].search(
            [("model", "=", "account.move"), ("res_id", "=", move.id), ("smtp_invoicing_template_id", "!=", False)]
        )

    def queue_triggers(self):
        return self.env["ir.cron.trigger"].search([("cron_id", "=", self.mail_queue.id)])

    def process_queue(self, minutes=0):
        with real_smtp(), mute_logger(MAIL_LOGGER), freeze_time(fields.Datetime.now() + timedelta(minutes=minutes)):
            self.env["mail.mail"].process_email_queue()

    def test_first_send_marks_the_invoice_delivered(self):
        """Send & Print: the invoice is Delivered, marked sent, with no banner, once the server said 250."""
        invoice = self.invoice()
        self.send_and_print(invoice)
        self.assertEqual(len(self.server.messages), 1)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        self.assertTrue(invoice.smtp_invoicing_delivered_at)
        self.assertTrue(invoice.is_move_sent)
        self.assertFalse(invoice.smtp_invoicing_mail_failure)

    def test_a_queue_batch_marks_its_delivered_invoices_sent_in_one_orm_write(self):
        """The queue marks sent the invoices whose mail the server accepted, with one ``write()`` of the
        ORM for the batch once it is sent: an override of ``account.move.write`` (another module's) sees
        is_move_sent become true for those invoices together, and never for the invoice whose mail the
        server refused."""
        refused = "unknown@client.test"
        self.server.rcpt_replies = {refused: (550, "5.1.1 No such user")}
        delivered = self.invoice() | self.invoice()
        bounced = self.create_invoice(
            "out_invoice", partner=self.partner_a.copy({"email": refused}), amounts=[100.0], post=True
        )
        for invoice in delivered | bounced:
            self.invoice_template.send_mail(invoice.id)
        self.assertEqual((delivered | bounced).mapped("is_move_sent"), [False, False, False])
        Move = type(self.env["account.move"])
        write = Move.write
        seen = []

        def another_modules_write(moves, vals):
            if "is_move_sent" in vals:
                seen.append((sorted(moves.ids), vals["is_move_sent"]))
            return write(moves, vals)

        with patch.object(Move, "write", another_modules_write):
            self.process_queue()
        self.assertEqual(sorted(len(message.rcpt_tos) for message in self.server.messages), [1, 1])
        self.assertEqual(seen, [(sorted(delivered.ids), True)])
        self.assertEqual(delivered.mapped("is_move_sent"), [True, True])
        self.assertEqual(delivered.mapped("smtp_invoicing_delivery_state"), ["sent", "sent"])
        self.assertFalse(bounced.is_move_sent)
        self.assertEqual(bounced.smtp_invoicing_delivery_state, "failed")

    def test_a_session_cut_short_is_recorded_by_the_next_one_once_its_lease_is_past(self):
        """A worker killed mid-session, after core committed its delivered mail and before the session's
        end: once the session's lease is past, the next session's end marks that invoice Delivered and sent
        with its own; a session still within its lease is left to its worker."""
        cut_short, running, next_one = self.invoice(), self.invoice(), self.invoice()
        Batch = self.env["smtp_invoicing.delivery.batch"]
        sessions = []
        for invoice in (cut_short, running):
            self.invoice_template.send_mail(invoice.id)
            # what each worker committed: its session's row and its mail, sent (core's bookkeeping)
            mail = self.document_mails(invoice)
            sessions.append(Batch.browse(Batch._smtp_invoicing_open(mail)[0]))
            mail.state = "sent"
        dead, alive = sessions
        alive.sudo().lease_until = dead.lease_until + timedelta(minutes=10)  # opened ten minutes later
        self.assertEqual((cut_short | running).mapped("smtp_invoicing_delivery_state"), ["queued", "queued"])
        self.invoice_template.send_mail(next_one.id)
        self.process_queue()
        self.assertEqual([message.rcpt_tos for message in self.server.messages], [[CUSTOMER]], "next_one only")
        self.assertEqual((cut_short | next_one).mapped("smtp_invoicing_delivery_state"), ["queued", "sent"])
        self.assertTrue(dead.exists(), "within its lease, the session may still be running")
        with freeze_time(dead.lease_until + timedelta(seconds=1)):
            self.invoice_template.send_mail(next_one.id)
            self.process_queue()
        self.assertEqual(len(self.server.messages), 2)
        self.assertFalse(dead.exists())
        self.assertEqual((cut_short | next_one).mapped("smtp_invoicing_delivery_state"), ["sent", "sent"])
        self.assertEqual((cut_short | next_one).mapped("is_move_sent"), [True, True])
        self.assertEqual((cut_short | next_one).mapped("smtp_invoicing_sent_pending"), [False, False])
        self.assertTrue(alive.exists(), "opened later: its lease is not past yet")
        self.assertEqual(running.smtp_invoicing_delivery_state, "queued")

    def test_the_last_mail_of_an_invoice_in_a_session_says_where_it_stands(self):
        """Two mails of one invoice in one session, the first accepted and the second refused for good: the
        invoice is Not Delivered with the refusal's reason, and marked sent (one of its mails was accepted)."""
        refused = "unknown@client.test"
        self.server.rcpt_replies = {refused: (550, "5.1.1 No such user")}
        invoice = self.invoice()
        self.invoice_template.send_mail(invoice.id)
        self.invoice_template.send_mail(invoice.id, email_values={"email_to": refused, "recipient_ids": []})
        first, second = self.document_mails(invoice).sorted("id")
        self.assertEqual(second.email_to, refused)
        self.process_queue()
        self.assertEqual([message.rcpt_tos for message in self.server.messages], [[CUSTOMER]])
        self.assertEqual((first | second).exists().mapped("state"), ["exception"], "the first was deleted once sent")
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "failed")
        self.assertIn("No such user", invoice.smtp_invoicing_mail_failure)
        self.assertTrue(invoice.is_move_sent)
        self.assertTrue(invoice.smtp_invoicing_delivered_at)

    def test_other_mails_of_the_invoice_never_change_its_delivery(self):
        """An activity notification of the invoice failing through Odoo's default routing leaves it Delivered."""
        invoice = self.invoice()
        self.send_and_print(invoice)
        # the platform's own server, unreachable: core's routing fails the notification
        self.env["ir.mail_server"].create(
            {"name": "Platform", "smtp_host": "127.0.0.1", "smtp_port": closed_port(), "smtp_encryption": "none"}
        )
        colleague = self.new_invoicing_user("colleague@invoicing.test")
        colleague.notification_type = "email"
        with real_smtp(), mute_logger(MAIL_LOGGER, "odoo.addons.base.models.ir_mail_server"):
            invoice.activity_schedule("mail.mail_activity_data_todo", summary="Upsell", user_id=colleague.id)
        failed = self.env["mail.mail"].search(
            [("model", "=", "account.move"), ("res_id", "=", invoice.id), ("state", "=", "exception")]
        )
        self.assertEqual(len(failed), 1, "the notification really failed")
        self.assertFalse(failed.smtp_invoicing_template_id)
        self.assertNotEqual(failed.mail_server_id, self.mailbox.mail_server_id)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        self.assertTrue(invoice.is_move_sent)
        self.assertFalse(invoice.smtp_invoicing_mail_failure)

    def test_connection_dropped_during_data_is_retried_once_and_delivered(self):
        """A drop after the content but before the 250: kept, readable reason, queue woken for the retry."""
        self.server.drop_after_data = 1
        invoice = self.invoice()
        start = fields.Datetime.now()
        with mute_logger(MAIL_LOGGER), freeze_time(start):
            self.send_and_print(invoice)
        mail = self.document_mails(invoice)
        self.assertEqual(mail.state, "outgoing")
        self.assertEqual(mail.smtp_invoicing_retry_count, 1)
        self.assertIn("broke before it accepted this mail", mail.failure_reason)
        self.assertNotIn("Error without exception", mail.failure_reason)
        self.assertEqual(mail.scheduled_date, start + timedelta(minutes=5))
        self.assertIn(mail.scheduled_date, self.queue_triggers().mapped("call_at"))
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "queued")
        self.assertFalse(invoice.is_move_sent)
        self.assertIn("Not delivered yet", invoice.smtp_invoicing_mail_failure)
        self.assertEqual(self.server.messages, [])

        self.process_queue()
        self.assertEqual(self.server.messages, [], "retried before its time")
        self.process_queue(minutes=6)
        self.process_queue(minutes=30)
        self.assertEqual(len(self.server.messages), 1)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        self.assertTrue(invoice.is_move_sent)
        self.assertFalse(invoice.smtp_invoicing_mail_failure)

    def test_reasons_of_the_queue_are_written_in_the_language_of_the_mailbox_readers(self):
        """The mail queue (English) writes a dropped mail's reason in French for a mailbox a French admin verified."""
        french_admin = new_test_user(
            self.env, login="compta-fr", groups="base.group_user,base.group_system", lang="fr_FR"
        )
        self.mailbox.smtp_invoicing_requested_by_id = french_admin
        self.server.drop_after_data = 1
        invoice = self.invoice()
        with mute_logger(MAIL_LOGGER):
            self.send_and_print(invoice)
        mail = self.document_mails(invoice)
        self.assertIn("a été interrompue avant qu'il", mail.failure_reason)
        self.assertTrue(invoice.smtp_invoicing_mail_failure.startswith("Pas encore remis : "))

    def test_temporary_refusal_backs_off_and_wakes_the_queue(self):
        """451 on every attempt: retried after 5, 15, 60 minutes..., each time with a queue trigger, then Failed."""
        self.server.data_reply = (451, "4.3.0 Try again later")
        invoice = self.invoice()
        now = fields.Datetime.now()
        with mute_logger(MAIL_LOGGER), freeze_time(now):
            self.send_and_print(invoice)
        mail = self.document_mails(invoice)
        delays = []
        while mail.state == "outgoing":
            delay = mail.scheduled_date - now
            delays.append(int(delay.total_seconds() // 60))
            self.assertIn(mail.scheduled_date, self.queue_triggers().mapped("call_at"))
            now = mail.scheduled_date
            with real_smtp(), mute_logger(MAIL_LOGGER), freeze_time(now):
                self.env["mail.mail"].process_email_queue()
        self.assertEqual(delays, [5, 15, 60, 240, 720])
        self.assertEqual(mail.state, "exception")
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "failed")
        self.assertIn("451", invoice.smtp_invoicing_mail_failure)
        self.assertFalse(invoice.is_move_sent)
        self.assertEqual(self.server.messages, [])

    def test_sent_again_then_resend_failed_never_sends_a_duplicate(self):
        """Failed, sent again with Send & Print: delivered once; the old copy is cancelled, Resend sends nothing."""
        invoice = self.invoice()
        self.server.data_reply = (554, "5.6.0 Message content rejected")
        with mute_logger(MAIL_LOGGER):
            self.send_and_print(invoice)
        first = self.document_mails(invoice)
        self.assertEqual(first.state, "exception")
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "failed")
        self.assertIn("554", invoice.smtp_invoicing_mail_failure)

        self.server.data_reply = None
        self.send_and_print(invoice)
        self.assertEqual(len(self.server.messages), 1)
        self.assertEqual(first.state, "cancel")
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        self.assertTrue(invoice.is_move_sent)
        self.assertTrue(invoice.message_ids.filtered(lambda message: "earlier copy" in str(message.body)))

        self.mailbox.action_smtp_invoicing_resend_failed()
        self.process_queue()
        self.assertEqual(len(self.server.messages), 1)

    def test_key_lost_while_sending_fails_the_mailbox_and_holds_the_mail(self):
        """The key is gone: the mailbox is Failed with the key message at once, the mail waits, no retry loop."""
        invoice = self.invoice()
        connections = self.server.connections
        with (
            patch.dict(os.environ, {"SMTP_INVOICING_KEY": Fernet.generate_key().decode()}),
            mute_logger(MAIL_LOGGER, PASSWORD_LOGGER),
        ):
            self.send_and_print(invoice)
            mail = self.document_mails(invoice)
            self.assertEqual(self.mailbox.verification_state, "failed")
            self.assertIn("must be entered again", self.mailbox.verification_message)
            self.assertEqual(mail.state, "outgoing")
            self.assertEqual(mail.smtp_invoicing_retry_count, 0)
            self.assertEqual(invoice.smtp_invoicing_delivery_state, "queued")
            self.assertIn("must be entered again", invoice.smtp_invoicing_mail_failure)
            self.process_queue(minutes=60)
        self.assertEqual(self.server.connections, connections, "nothing knocked on the server")
        self.assertEqual(mail.state, "outgoing")

        # back on the right key: verified again, the waiting mail leaves, once
        self.verify(self.mailbox)
        self.process_queue()
        self.assertEqual(len(self.server.messages), 1)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")

    def test_switched_off_with_a_failed_template_mailbox_sends_as_core(self):
        """Switched off, a template still pointing at a Failed mailbox: Send & Print goes through core, unmarked."""
        platform = self.start_server(mode="plain")
        core = self.env["ir.mail_server"].create(
            {"name": "Platform", "smtp_host": platform.host, "smtp_port": platform.port, "smtp_encryption": "none"}
        )
        self.mailbox._smtp_invoicing_set_state("failed", "The user name or password was refused.")
        self.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.enabled", "False")
        invoice = self.invoice()
        self.send_and_print(invoice)
        self.assertEqual(len(platform.messages), 1)
        self.assertEqual(self.server.messages, [])
        mails = self.env["mail.mail"].search([("model", "=", "account.move"), ("res_id", "=", invoice.id)])
        self.assertFalse(mails.filtered("smtp_invoicing_template_id"))
        self.assertFalse(invoice.smtp_invoicing_delivery_state)
        self.assertTrue(invoice.is_move_sent)
        self.assertTrue(core.exists())

    def test_a_caller_cannot_put_a_message_on_the_mailbox(self):
        """An invoicing user's mail_server_id or context key never reaches the mailbox: default routing, logged."""
        clerk = self.new_invoicing_user()
        invoice = self.invoice()
        with self.assertLogs("odoo.addons.smtp_invoicing.models.mail_mail", "WARNING") as logs:
            message = (
                invoice.with_user(clerk)
                .with_context(
                    smtp_invoicing_mail_server_id=self.mailbox.mail_server_id.id,
                    smtp_invoicing_mailbox_id=self.mailbox.id,
                    mail_notify_force_send=False,
                )
                .message_post(
                    body="Our bank details have changed, pay to ...",
                    partner_ids=self.partner_a.ids,
                    message_type="comment",
                    subtype_xmlid="mail.mt_comment",
                    mail_server_id=self.mailbox.mail_server_id.id,
                )
            )
        mails = self.env["mail.mail"].search([("mail_message_id", "=", message.id)])
        self.assertTrue(mails)
        self.assertFalse(mails.mail_server_id)
        self.assertFalse(mails.smtp_invoicing_mailbox_id)
        self.assertIn("did not choose", logs.output[0])
        self.assertFalse(message.mail_server_id)

    def test_an_administrator_may_choose_the_mailbox(self):
        """A Settings administrator's explicit choice of a mailbox is kept and sent from it."""
        mail = self.env["mail.mail"].create(
            {
                "email_to": CUSTOMER,
                "subject": "Chosen by the administrator",
                "body_html": "<p>x</p>",
                "email_from": MAILBOX_LOGIN,
                "mail_server_id": self.mailbox.mail_server_id.id,
            }
        )
        self.assertEqual(mail.smtp_invoicing_mailbox_id, self.mailbox)
        self.assertEqual(mail.mail_server_id, self.mailbox.mail_server_id)
        with real_smtp():
            mail.send()
        self.assertEqual([m.message["Subject"] for m in self.server.messages], ["Chosen by the administrator"])

    def test_test_email_goes_through_the_full_path(self):
        """Send a test email: a labelled message from the mailbox reaches its own address; logged on the mailbox."""
        wizard = self.env["smtp_invoicing.test.email"].with_context(default_mailbox_id=self.mailbox.id).create({})
        self.assertEqual(wizard.email_to, MAILBOX_LOGIN)
        with real_smtp():
            result = wizard.action_send()
        self.assertEqual(result["params"]["type"], "success")
        (received,) = self.server.messages
        self.assertEqual(received.mail_from, MAILBOX_LOGIN)
        self.assertEqual(received.rcpt_tos, [MAILBOX_LOGIN])
        self.assertIn("Test email from Odoo", received.message["Subject"])
        self.assertIn("accepted by the server", self.mailbox.message_ids[0].body)

    def test_send_as_denied_after_data_is_found_by_the_test_email(self):
        """Microsoft's SendAsDenied after DATA: the test email fails the mailbox with the Send As explanation."""
        self.server.data_reply = (550, "5.7.60 SMTP; Client does not have permissions to send as this sender")
        wizard = self.env["smtp_invoicing.test.email"].create(
            {"mailbox_id": self.mailbox.id, "email_to": "someone@client.test"}
        )
        with real_smtp(), mute_logger(MAIL_LOGGER):
            result = wizard.action_send()
        self.assertEqual(result["params"]["type"], "warning")
        self.assertEqual(self.mailbox.verification_state, "failed")
        self.assertIn("SendAsDenied", self.mailbox.verification_message)
        self.assertEqual(self.server.messages, [])

    def test_not_delivered_filter_lists_failed_invoices(self):
        """The invoice list's "Not delivered" filter finds the invoices whose mail was refused."""
        delivered, refused = self.invoice(), self.invoice()
        self.send_and_print(delivered)
        self.server.data_reply = (554, "5.6.0 Message content rejected")
        with mute_logger(MAIL_LOGGER):
            self.send_and_print(refused)
        # the filter as the invoice list gets it: core's invoice search view with every extension applied
        action = self.env.ref("account.action_move_out_invoice_type")
        arch = self.env["account.move"].get_views([(action.search_view_id.id, "search")])["views"]["search"]["arch"]
        [domain] = etree.fromstring(arch).xpath("//filter[@name='smtp_invoicing_not_delivered']/@domain")
        found = self.env["account.move"].search(ast.literal_eval(domain) + [("id", "in", (delivered | refused).ids)])
        self.assertEqual(found, refused)
