"""Payment reminders: from the form and the list, refused invoices, and the automatic scheduled action."""

from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import Form

from odoo.addons.mail.tests.common import mail_new_test_user

from common import MAILBOX_LOGIN, PASSWORD, SmtpInvoicingCase, real_smtp

REMINDER_LOGIN = "reminders@invoicing.test"


class TestReminders(SmtpInvoicingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        mail_new_test_user(
            cls.env,
            login=REMINDER_LOGIN,
            email=REMINDER_LOGIN,
            name="Credit Control",
            groups="base.group_user",
            company_id=cls.company.id,
        )
        cls.invoice_template = cls.env.ref("account.email_template_edi_invoice")
        cls.reminder_template = cls.env.ref("smtp_invoicing.email_template_payment_reminder")
        cls.partner_a.email = "customer@client.test"
        cls.customer_b, cls.customer_c = cls.env["res.partner"].create(
            [
                {"name": name, "email": email, "property_payment_term_id": cls.pay_terms_a.id}
                for name, email in (("Customer B", "b@client.test"), ("Customer C", "c@client.test"))
            ]
        )
        cls.today = fields.Date.today()

    def setUp(self):
        super().setUp()
        self.invoice_server = self.start_server()
        self.reminder_server = self.start_server(users={REMINDER_LOGIN: PASSWORD})
        self.invoice_mailbox = self.verify(self.create_mailbox(self.invoice_server))
        self.reminder_mailbox = self.verify(
            self.create_mailbox(
                self.reminder_server,
                name="Reminders mailbox",
                sender_name="ACME Credit Control",
                sender_email=REMINDER_LOGIN,
                smtp_user=REMINDER_LOGIN,
            )
        )
        self.assertEqual(
            self.reminder_mailbox.verification_state, "verified", self.reminder_mailbox.verification_message
        )
        self.invoice_template.mail_server_id = self.invoice_mailbox.mail_server_id
        self.reminder_template.mail_server_id = self.reminder_mailbox.mail_server_id

    def overdue_invoice(self, partner=None, days=30, amount=1000.0, post=True):
        return self.create_invoice(
            "out_invoice",
            partner=partner or self.partner_a,
            amounts=[amount],
            post=post,
            invoice_date=self.today - timedelta(days=days),
        )

    def comments(self, invoice):
        return invoice.message_ids.filtered(lambda message: message.message_type == "comment" and message.subject)

    def composer(self, invoices):
        action = invoices.action_smtp_invoicing_send_reminder()
        self.assertEqual(action["res_model"], "mail.compose.message")
        return self.env["mail.compose.message"].with_context(action["context"])

    def test_reminder_from_the_form_leaves_from_the_reminders_mailbox(self):
        """Form button: the edited reminder arrives from the reminders mailbox, with amount, due date and the PDF
        named as core names the invoice's; counted."""
        invoice = self.overdue_invoice(days=12, amount=1500.0)
        with Form(self.composer(invoice)) as composer:
            composer.subject = "Friendly reminder " + invoice.name
        with real_smtp():
            composer.record.action_send_mail()
        self.assertEqual(len(self.invoice_server.messages), 0)
        self.assertEqual(len(self.reminder_server.messages), 1)
        received = self.reminder_server.messages[0]
        self.assertEqual(received.mail_from, REMINDER_LOGIN)
        self.assertEqual(received.rcpt_tos, ["customer@client.test"])
        self.assertEqual(received.message["Subject"], "Friendly reminder " + invoice.name)
        body = received.message.get_body(("html",)).get_content()
        self.assertIn("12", body)
        self.assertIn(invoice.name, body)
        self.assertIn("1,500.00", body)
        attachments = [part.get_filename() for part in received.message.iter_attachments()]
        # test mode renders the report as HTML; its name is the one core gives the invoice PDF
        self.assertEqual(attachments, [invoice._get_invoice_report_filename(extension="html")])
        self.assertEqual(invoice.smtp_invoicing_reminder_count, 1)
        self.assertTrue(invoice.smtp_invoicing_last_reminder_date)
        self.assertEqual(self.comments(invoice).mapped("subject"), ["Friendly reminder " + invoice.name])

        # the invoice itself still leaves from the invoices mailbox
        self.send_and_print(invoice)
        self.assertEqual(len(self.invoice_server.messages), 1)
        self.assertEqual(self.invoice_server.messages[0].mail_from, MAILBOX_LOGIN)
        self.assertEqual(len(self.reminder_server.messages), 1)

    def test_reminders_from_the_list_one_mail_per_invoice(self):
        """List action on three invoices: one reminder per invoice, each to its customer, each logged and counted."""
        invoices = (
            self.overdue_invoice(days=10)
            + self.overdue_invoice(partner=self.customer_b, days=20)
            + self.overdue_invoice(partner=self.customer_c, days=40)
        )
        composer = self.composer(invoices).create({})
        with real_smtp():
            composer.action_send_mail()
            # several records: the mails wait in the queue, as with core's "Send message"
            self.env["mail.mail"].process_email_queue()
        self.assertEqual(len(self.reminder_server.messages), 3)
        self.assertEqual(len(self.invoice_server.messages), 0)
        self.assertEqual(
            sorted(tuple(received.rcpt_tos) for received in self.reminder_server.messages),
            [("b@client.test",), ("c@client.test",), ("customer@client.test",)],
        )
        for received in self.reminder_server.messages:
            self.assertEqual(received.mail_from, REMINDER_LOGIN)
        for invoice in invoices:
            self.assertEqual(invoice.smtp_invoicing_reminder_count, 1)
            self.assertIn(invoice.name, self.comments(invoice).subject)

    def test_refused_invoices_are_named(self):
        """Paid, not yet due, draft invoices and vendor bills are refused with a message naming each one."""
        paid = self.overdue_invoice()
        self.env["account.payment.register"].with_context(active_model="account.move", active_ids=paid.ids).create(
            {}
        )._create_payments()
        self.assertIn(paid.payment_state, ("paid", "in_payment"))
        not_due = self.overdue_invoice(days=0)
        draft = self.overdue_invoice(post=False)
        bill = self.create_invoice(
            "in_invoice",
            partner=self.partner_a,
            amounts=[100.0],
            post=True,
            invoice_date=self.today - timedelta(days=30),
        )
        good = self.overdue_invoice()
        for refused, reason in (
            (paid, "paid"),
            (not_due, "not due"),
            (draft, "not posted"),
            (bill, "not a customer invoice"),
        ):
            with self.assertRaises(UserError) as caught:
                (good + refused).action_smtp_invoicing_send_reminder()
            self.assertIn(refused.display_name, caught.exception.args[0])
            self.assertIn(reason, caught.exception.args[0])
            self.assertNotIn(good.display_name + ":", caught.exception.args[0])
        self.assertFalse(self.reminder_server.messages)

    def test_unverified_reminder_mailbox_is_refused_before_sending(self):
        """A reminders mailbox that failed: the window's Send is disabled, and a send anyway names it; nothing sent."""
        invoice = self.overdue_invoice()
        self.reminder_mailbox._smtp_invoicing_set_state("failed", "The user name or password was refused.")
        composer = self.composer(invoice).create({})
        self.assertTrue(composer.smtp_invoicing_send_blocked)
        with real_smtp(), self.assertRaisesRegex(UserError, "Reminders mailbox.*password was refused"):
            composer.action_send_mail()
        self.assertFalse(self.reminder_server.messages)
        self.assertEqual(invoice.smtp_invoicing_reminder_count, 0)

    def test_automatic_reminders_respect_delay_interval_and_opt_out(self):
        """Scheduled action: off by default; then after the delay, once per interval, never to opted-out customers."""
        recent = self.overdue_invoice(days=5)
        late = self.overdue_invoice(partner=self.customer_b, days=12)
        opted_out = self.overdue_invoice(partner=self.customer_c, days=30)
        self.customer_c.smtp_invoicing_no_reminder = True
        Move = self.env["account.move"]

        Move._cron_send_payment_reminders()
        self.assertEqual((recent + late + opted_out).mapped("smtp_invoicing_reminder_count"), [0, 0, 0])

        self.company.write(
            {
                "smtp_invoicing_auto_reminder": True,
                "smtp_invoicing_reminder_delay": 10,
                "smtp_invoicing_reminder_interval": 7,
            }
        )
        Move._cron_send_payment_reminders()
        self.assertEqual((recent + late + opted_out).mapped("smtp_invoicing_reminder_count"), [0, 1, 0])
        message = self.comments(late)
        self.assertIn("Payment reminder", message.subject)
        self.assertEqual(message.partner_ids, self.customer_b)

        with freeze_time(fields.Datetime.now() + timedelta(days=3)):
            Move._cron_send_payment_reminders()
        self.assertEqual((recent + late + opted_out).mapped("smtp_invoicing_reminder_count"), [0, 1, 0])

        with freeze_time(fields.Datetime.now() + timedelta(days=7)):
            Move._cron_send_payment_reminders()
        self.assertEqual((recent + late + opted_out).mapped("smtp_invoicing_reminder_count"), [1, 2, 0])

        with freeze_time(fields.Datetime.now() + timedelta(days=8)):
            Move._cron_send_payment_reminders()
        self.assertEqual((recent + late + opted_out).mapped("smtp_invoicing_reminder_count"), [1, 2, 0])

    def test_automatic_reminder_failure_is_logged_and_skipped(self):
        """One invoice whose reminder cannot be sent is noted in its chatter; the others are still reminded."""
        first = self.overdue_invoice(days=30)
        second = self.overdue_invoice(partner=self.customer_b, days=20)
        self.company.smtp_invoicing_auto_reminder = True
        self.company.smtp_invoicing_reminder_delay = 1
        self.reminder_template.body_html = (
            '<p><t t-if="object.partner_id.name == \'Customer B\'" t-out="object.no_such_field"/>Pay</p>'
        )
        self.env["account.move"]._cron_send_payment_reminders()
        self.assertEqual(first.smtp_invoicing_reminder_count, 1)
        self.assertEqual(second.smtp_invoicing_reminder_count, 0)
        notes = self.env["mail.message"].search([("model", "=", "account.move"), ("res_id", "=", second.id)])
        self.assertIn("could not be sent", " ".join(notes.mapped("body")))

    def test_reminder_settings_must_be_positive(self):
        """Delay and interval of automatic reminders are at least one day."""
        with self.assertRaises(ValidationError):
            self.company.smtp_invoicing_reminder_interval = 0
