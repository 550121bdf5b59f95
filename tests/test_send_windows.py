"""The send windows (Send, batch Send, payment reminder) say where the mail leaves from, and disable
their Send before any click when that mailbox cannot send now; the server still refuses behind them."""

from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import Form, HttpCase

from odoo.addons.mail.tests.common import mail_new_test_user

from common import MAILBOX_LOGIN, PASSWORD, SmtpInvoicingCase, real_smtp

SECOND_LOGIN = "credit@invoicing.test"
REFUSED = "The user name or password was refused."


class SendWindowsCase(SmtpInvoicingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        mail_new_test_user(
            cls.env,
            login=SECOND_LOGIN,
            email=SECOND_LOGIN,
            name="Credit Control",
            groups="base.group_user",
            company_id=cls.company.id,
        )
        cls.invoice_template = cls.env.ref("account.email_template_edi_invoice")
        cls.credit_note_template = cls.env.ref("account.email_template_edi_credit_note")
        cls.reminder_template = cls.env.ref("smtp_invoicing.email_template_payment_reminder")
        cls.partner_a.email = "customer@client.test"
        cls.partner_b.email = "other@client.test"
        (cls.partner_a + cls.partner_b).invoice_sending_method = "email"

    def setUp(self):
        super().setUp()
        self.invoice_mailbox()
        self.second_server = self.start_server(users={SECOND_LOGIN: PASSWORD})
        self.second_mailbox = self.verify(
            self.create_mailbox(
                self.second_server,
                name="Credit mailbox",
                sender_name="ACME Credit Control",
                sender_email=SECOND_LOGIN,
                smtp_user=SECOND_LOGIN,
            )
        )
        self.assertEqual(self.second_mailbox.verification_state, "verified", self.second_mailbox.verification_message)

    def invoice(self, move_type="out_invoice", partner=None, days=30):
        return self.create_invoice(
            move_type,
            partner=partner or self.partner_a,
            amounts=[100.0],
            post=True,
            invoice_date=fields.Date.today() - timedelta(days=days),
        )

    def send_dialog(self, invoice, user=None):
        """The Send dialog of one invoice, as the form view computes it."""
        return Form(
            self.env["account.move.send.wizard"]
            .with_user(user or self.env.user)
            .with_context(active_model="account.move", active_ids=invoice.ids)
        )

    def batch_dialog(self, moves):
        return (
            self.env["account.move.send.batch.wizard"]
            .with_context(active_model="account.move", active_ids=moves.ids)
            .create({})
        )

    def reminder_window(self, invoices):
        action = invoices.action_smtp_invoicing_send_reminder()
        return Form(self.env["mail.compose.message"].with_context(action["context"]))

    @staticmethod
    def levels(alerts, prefix):
        return {key: alert["level"] for key, alert in (alerts or {}).items() if key.startswith(prefix)}

    @staticmethod
    def messages(alerts, prefix):
        return [alert["message"] for key, alert in sorted((alerts or {}).items()) if key.startswith(prefix)]


class TestSendWindows(SendWindowsCase):
    def test_send_dialog_says_where_the_invoice_leaves_from(self):
        """Send dialog: an info line "From: ACME Billing <address>", which is where the invoice then arrives from."""
        invoice = self.invoice()
        dialog = self.send_dialog(invoice)
        self.assertEqual(self.messages(dialog.alerts, "smtp_invoicing_from"), [f"From: ACME Billing <{MAILBOX_LOGIN}>"])
        self.assertEqual(
            self.levels(dialog.alerts, "smtp_invoicing"), {f"smtp_invoicing_from_{self.mailbox.id}": "info"}
        )
        self.assertFalse(dialog.smtp_invoicing_send_blocked)

        # a template without an own mailbox: core's dialog, nothing added
        dialog.mail_template_id = self.credit_note_template
        self.assertFalse(self.levels(dialog.alerts, "smtp_invoicing"))
        dialog.mail_template_id = self.invoice_template
        self.assertEqual(self.messages(dialog.alerts, "smtp_invoicing_from"), [f"From: ACME Billing <{MAILBOX_LOGIN}>"])

        wizard = dialog.save()
        with real_smtp():
            wizard.action_send_and_print()
        self.assertEqual(len(self.server.messages), 1)
        sender = self.server.messages[0].message["From"].addresses
        self.assertEqual([(a.display_name, a.addr_spec) for a in sender], [("ACME Billing", MAILBOX_LOGIN)])

    def test_failed_mailbox_disables_send_with_the_reason_and_who_must_act(self):
        """Failed mailbox: Send disabled before any click, reason and who must act shown; forced, refused."""
        invoice = self.invoice()
        self.mailbox._smtp_invoicing_set_state("failed", REFUSED)
        accountant = self.new_invoicing_user()
        dialog = self.send_dialog(invoice.with_user(accountant), user=accountant)
        self.assertTrue(dialog.smtp_invoicing_send_blocked)
        self.assertEqual(
            self.levels(dialog.alerts, "smtp_invoicing"),
            {
                f"smtp_invoicing_from_{self.mailbox.id}": "info",
                f"smtp_invoicing_mailbox_not_ready_{self.mailbox.id}": "danger",
            },
        )
        (message,) = self.messages(dialog.alerts, "smtp_invoicing_mailbox_not_ready")
        self.assertIn("Sending is disabled", message)
        self.assertIn(f"“Invoices mailbox” (ACME Billing <{MAILBOX_LOGIN}>) cannot send right now", message)
        self.assertIn(f"It is Failed: {REFUSED}", message)
        self.assertIn("A Settings administrator must correct it in Invoicing › Configuration › Own Mailboxes", message)
        self.assertNotIn("Nothing was sent", message)

        wizard = dialog.save()
        with real_smtp(), self.assertRaisesRegex(UserError, "Invoices mailbox"):
            wizard.action_send_and_print()
        self.assertFalse(self.server.messages)
        self.assertFalse(invoice.is_move_sent)

    def test_oauth_mailbox_whose_sign_in_was_withdrawn_names_its_owner(self):
        """Microsoft 365 mailbox whose access was withdrawn: Send disabled, and its owner must sign in again."""
        mailbox = self.create_mailbox(
            self.server, name="Microsoft invoices", smtp_invoicing_auth_kind="microsoft", smtp_pass=False
        )
        mailbox._smtp_invoicing_set_state("verified", "Verified.")
        self.invoice_template.mail_server_id = mailbox.mail_server_id
        mailbox._smtp_invoicing_set_state(
            "failed", "The access of Odoo was withdrawn.", smtp_invoicing_failure_reason="token_revoked"
        )
        dialog = self.send_dialog(self.invoice())
        self.assertTrue(dialog.smtp_invoicing_send_blocked)
        (message,) = self.messages(dialog.alerts, "smtp_invoicing_mailbox_not_ready")
        self.assertIn("Billing Desk must sign in to “Microsoft invoices” with Microsoft 365 (OAuth)", message)
        self.assertNotIn("administrator", message)

    def test_pending_mailbox_disables_send_until_verified(self):
        """A mailbox being verified: Send disabled, "open this window again"; enabled once verified."""
        invoice = self.invoice()
        self.mailbox.action_verify()
        dialog = self.send_dialog(invoice)
        self.assertTrue(dialog.smtp_invoicing_send_blocked)
        (message,) = self.messages(dialog.alerts, "smtp_invoicing_mailbox_not_ready")
        self.assertIn("Its verification is under way", message)
        self.run_verification_cron()
        self.assertFalse(self.send_dialog(invoice).smtp_invoicing_send_blocked)

    def test_batch_dialog_one_from_line_per_mailbox_with_its_count(self):
        """Batch Send: one From line per mailbox with how many invoices leave from it; none for core's."""
        self.credit_note_template.mail_server_id = self.second_mailbox.mail_server_id
        invoices = self.invoice() + self.invoice(partner=self.partner_b)
        credit_note = self.invoice(move_type="out_refund")
        dialog = self.batch_dialog(invoices + credit_note)
        self.assertCountEqual(
            self.messages(dialog.alerts, "smtp_invoicing_from"),
            [
                f"From: ACME Billing <{MAILBOX_LOGIN}> (2 invoices)",
                f"From: ACME Credit Control <{SECOND_LOGIN}> (1 invoice)",
            ],
        )
        self.assertFalse(dialog.smtp_invoicing_send_blocked)

        self.credit_note_template.mail_server_id = False
        dialog = self.batch_dialog(invoices + credit_note)
        self.assertEqual(
            self.messages(dialog.alerts, "smtp_invoicing_from"), [f"From: ACME Billing <{MAILBOX_LOGIN}> (2 invoices)"]
        )

    def test_batch_dialog_with_one_blocked_mailbox_names_its_invoices_and_sends_nothing(self):
        """Batch Send, credit notes' mailbox failed: Send disabled, the credit note named; forced, nothing queued."""
        self.credit_note_template.mail_server_id = self.second_mailbox.mail_server_id
        invoices = self.invoice() + self.invoice(partner=self.partner_b)
        credit_note = self.invoice(move_type="out_refund")
        self.second_mailbox._smtp_invoicing_set_state("failed", REFUSED)
        dialog = self.batch_dialog(invoices + credit_note)
        self.assertTrue(dialog.smtp_invoicing_send_blocked)
        (message,) = self.messages(dialog.alerts, "smtp_invoicing_mailbox_not_ready")
        self.assertIn("“Credit mailbox”", message)
        self.assertIn(
            f"\nIt would send: {credit_note.display_name}.\nRemove them from the selection to send the others now.",
            message,
        )
        self.assertNotIn("Nothing was sent", message)
        with self.assertRaisesRegex(UserError, "Credit mailbox"):
            dialog.action_send_and_print()
        self.assertFalse(any((invoices + credit_note).mapped("sending_data")))

    def test_reminder_window_says_where_reminders_leave_from(self):
        """Reminder window: "From: ACME Credit Control <address>", Send enabled, and the reminder arrives from it."""
        self.reminder_template.mail_server_id = self.second_mailbox.mail_server_id
        invoice = self.invoice()
        window = self.reminder_window(invoice)
        self.assertEqual(
            self.messages(window.smtp_invoicing_alerts, "smtp_invoicing_from"),
            [f"From: ACME Credit Control <{SECOND_LOGIN}>"],
        )
        self.assertFalse(window.smtp_invoicing_send_blocked)
        with real_smtp():
            window.save().action_send_mail()
        self.assertEqual(len(self.second_server.messages), 1)
        self.assertEqual(self.second_server.messages[0].mail_from, SECOND_LOGIN)

        # batch reminders from the list: the count of mails per mailbox
        window = self.reminder_window(invoice + self.invoice())
        self.assertEqual(
            self.messages(window.smtp_invoicing_alerts, "smtp_invoicing_from"),
            [f"From: ACME Credit Control <{SECOND_LOGIN}> (2 mails)"],
        )

    def test_reminder_window_opens_with_send_disabled_for_a_failed_mailbox(self):
        """Reminder window of a failed mailbox: it opens, Send is disabled with the reason; sending is still refused."""
        self.reminder_template.mail_server_id = self.second_mailbox.mail_server_id
        invoice = self.invoice()
        self.second_mailbox._smtp_invoicing_set_state("failed", REFUSED)
        window = self.reminder_window(invoice)
        self.assertTrue(window.smtp_invoicing_send_blocked)
        (message,) = self.messages(window.smtp_invoicing_alerts, "smtp_invoicing_mailbox_not_ready")
        self.assertIn(f"“Credit mailbox” (ACME Credit Control <{SECOND_LOGIN}>) cannot send right now", message)
        self.assertIn(REFUSED, message)
        self.assertNotIn("Nothing was sent", message)
        composer = window.save()
        with real_smtp(), self.assertRaisesRegex(UserError, "Credit mailbox"):
            composer.action_send_mail()
        self.assertFalse(self.second_server.messages)
        self.assertEqual(invoice.smtp_invoicing_reminder_count, 0)

    def test_composer_without_own_mailbox_is_left_as_core_made_it(self):
        """A composer whose template chose no own mailbox gets no From line and keeps its Send."""
        invoice = self.invoice()
        window = Form(
            self.env["mail.compose.message"].with_context(
                default_model="account.move",
                default_res_ids=invoice.ids,
                default_template_id=self.credit_note_template.id,
                default_composition_mode="comment",
            )
        )
        self.assertFalse(window.smtp_invoicing_alerts)
        self.assertFalse(window.smtp_invoicing_send_blocked)


class TestSendWindowsTour(SendWindowsCase, HttpCase):
    def test_blocked_mailbox_in_the_real_dialogs(self):
        """In Chromium, an accountant sees the From line and a disabled Send in the Send and reminder windows."""
        self.reminder_template.mail_server_id = self.second_mailbox.mail_server_id
        invoice = self.invoice()
        self.mailbox._smtp_invoicing_set_state("failed", REFUSED)
        self.second_mailbox._smtp_invoicing_set_state("failed", REFUSED)
        accountant = self.new_invoicing_user()
        self.start_tour(
            f"/odoo/action-account.action_move_out_invoice_type/{invoice.id}",
            "smtp_invoicing_send_windows",
            login=accountant.login,
        )
        self.assertFalse(self.server.messages)
        self.assertFalse(self.second_server.messages)
