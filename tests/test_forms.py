"""What the forms offer: the protocols of an own mailbox, the payment reminder button of an invoice."""

from datetime import timedelta

from lxml import etree

from odoo import fields
from odoo.tests import Form
from odoo.tools.safe_eval import safe_eval

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase, SmtpInvoicingCase

MAILBOX_FORM = "smtp_invoicing.smtp_invoicing_mailbox_view_form"


class TestMailboxForm(MailboxCase):
    def mailbox_form(self, record=None):
        action = self.env.ref("smtp_invoicing.smtp_invoicing_mailbox_action")
        model = self.env["smtp_invoicing.mailbox"].with_context(eval(action.context))
        return Form(record or model, view=MAILBOX_FORM)

    def test_own_mailbox_form_offers_tls_and_ssl_only(self):
        """The own-mailbox form, as an administrator loads it, offers TLS (STARTTLS) and SSL, never None."""
        views = self.env["smtp_invoicing.mailbox"].get_views([(self.env.ref(MAILBOX_FORM).id, "form")])
        arch = etree.fromstring(views["views"]["form"]["arch"])
        [protocol] = arch.xpath("//field[@name='smtp_invoicing_protocol']")
        self.assertEqual(protocol.get("widget"), "radio")
        hidden = [node.get("invisible") for node in arch.xpath("//field[@name='smtp_encryption']")]
        self.assertEqual(hidden, ["1"], "core's field, with None, is only there hidden, for the onchanges")
        described = views["models"]["smtp_invoicing.mailbox"]["fields"]["smtp_invoicing_protocol"]["selection"]
        self.assertEqual([value for value, _label in described], ["starttls", "ssl"])
        core = dict(self.env["ir.mail_server"].fields_get(["smtp_encryption"])["smtp_encryption"]["selection"])
        self.assertEqual(dict(described), {key: core[key] for key in ("starttls", "ssl")}, "core's labels")

    def test_core_form_keeps_its_protocol_choices(self):
        """Core's outgoing server form still shows core's field with its three choices, None included."""
        views = self.env["ir.mail_server"].get_views([(self.env.ref("base.ir_mail_server_form").id, "form")])
        arch = etree.fromstring(views["views"]["form"]["arch"])
        self.assertTrue(arch.xpath("//field[@name='smtp_encryption']"))
        self.assertFalse(arch.xpath("//field[@name='smtp_invoicing_protocol']"))
        described = views["models"]["ir.mail_server"]["fields"]["smtp_encryption"]["selection"]
        self.assertEqual([value for value, _label in described], ["none", "starttls", "ssl"])

    def test_protocol_choice_sets_port_and_is_saved(self):
        """Choosing SSL suggests 465 and TLS 587, a preset shows its protocol, and the choice is what is saved."""
        form = self.mailbox_form()
        self.assertEqual(form.smtp_invoicing_protocol, "starttls")
        form.smtp_invoicing_protocol = "ssl"
        self.assertEqual(form.smtp_port, 465)
        form.smtp_invoicing_protocol = "starttls"
        self.assertEqual(form.smtp_port, 587)
        form.smtp_invoicing_preset = "ovh"
        self.assertEqual((form.smtp_invoicing_protocol, form.smtp_port), ("ssl", 465))
        form.name = "OVH"
        form.sender_name = "ACME Billing"
        form.sender_email = MAILBOX_LOGIN
        form.smtp_user = MAILBOX_LOGIN
        form.smtp_pass = PASSWORD
        mailbox = form.save()
        self.assertEqual((mailbox.smtp_encryption, mailbox.smtp_port), ("ssl", 465))
        form = self.mailbox_form(mailbox)
        form.smtp_invoicing_protocol = "starttls"
        form.save()
        self.assertEqual((mailbox.smtp_encryption, mailbox.smtp_port), ("starttls", 587))

    def test_unencrypted_server_shows_no_protocol(self):
        """A server without encryption shows no protocol on the own-mailbox form rather than a wrong one."""
        mailbox = self.create_mailbox()
        self.assertEqual(mailbox.smtp_invoicing_protocol, "starttls")
        # the server behind the mailbox, switched to no encryption behind the mailbox's back (core's form)
        mailbox.mail_server_id.smtp_encryption = "none"
        self.assertEqual(mailbox.smtp_encryption, "none")
        self.assertFalse(mailbox.smtp_invoicing_protocol)
        self.assertFalse(self.mailbox_form(mailbox).smtp_invoicing_protocol)


class TestReminderButton(SmtpInvoicingCase):
    def invoice(self, move_type="out_invoice", days_overdue=10, post=True, payment_term=None):
        """A move of ``days_overdue`` days ago, due that day (immediate payment) unless ``payment_term``."""
        today = fields.Date.context_today(self.env.user)
        move = self.create_invoice(
            move_type, partner=self.partner_a, amounts=[100.0], invoice_date=today - timedelta(days=days_overdue)
        )
        if payment_term:
            move.invoice_payment_term_id = payment_term
        if post:
            move.action_post()
        return move

    def test_reminder_button_shows_only_where_a_reminder_can_go(self):
        """The button shows on posted, unpaid or partly paid, overdue customer invoices, and nowhere else."""
        thirty_days = self.env["account.payment.term"].create(
            {"name": "30 days", "line_ids": [(0, 0, {"value": "percent", "value_amount": 100.0, "nb_days": 30})]}
        )
        overdue = self.invoice()
        partial = self.invoice()
        self.env["account.payment.register"].with_context(active_model="account.move", active_ids=partial.ids).create(
            {"amount": 40.0}
        )._create_payments()
        paid = self.invoice()
        self.env["account.payment.register"].with_context(active_model="account.move", active_ids=paid.ids).create(
            {}
        )._create_payments()
        cases = {
            "overdue": (overdue, True),
            "partly paid": (partial, True),
            "paid": (paid, False),
            "not due yet": (self.invoice(days_overdue=0, payment_term=thirty_days), False),
            "due today": (self.invoice(days_overdue=0), False),
            "draft": (self.invoice(post=False), False),
            "credit note": (self.invoice("out_refund"), False),
            "vendor bill": (self.invoice("in_invoice"), False),
        }
        self.assertEqual(partial.payment_state, "partial")
        self.assertIn(paid.payment_state, ("paid", "in_payment"))
        for name, (move, expected) in cases.items():
            with self.subTest(name):
                self.assertEqual(move.smtp_invoicing_can_remind, expected)
                self.assertEqual(not move._smtp_invoicing_reminder_refusal(), expected, "the action's own rule")

    def test_reminder_button_is_driven_by_the_rule(self):
        """The invoice form's button is invisible exactly when the invoice cannot get a reminder."""
        views = self.env["account.move"].get_views([(self.env.ref("account.view_move_form").id, "form")])
        arch = etree.fromstring(views["views"]["form"]["arch"])
        [button] = arch.xpath("//button[@name='action_smtp_invoicing_send_reminder']")
        self.assertEqual(button.get("invisible"), "not smtp_invoicing_can_remind")
        self.assertIn("smtp_invoicing_can_remind", views["models"]["account.move"]["fields"])


class TestInvoiceDeliveryBadge(MailboxCase):
    def test_delivery_state_shows_as_a_badge_under_the_invoice_number(self):
        """The invoice form shows the email delivery state as a coloured badge in its title, only once emailed."""
        views = self.env["account.move"].get_views([(self.env.ref("account.view_move_form").id, "form")])
        arch = etree.fromstring(views["views"]["form"]["arch"])
        [title] = arch.xpath("//div[contains(concat(' ', normalize-space(@class), ' '), ' oe_title ')]")
        [badge] = title.xpath(".//field[@name='smtp_invoicing_delivery_state']")
        self.assertEqual(badge.get("widget"), "badge")
        decorations = {
            name.removeprefix("decoration-"): value for name, value in badge.items() if name.startswith("decoration-")
        }
        self.assertEqual(
            decorations,
            {
                "success": "smtp_invoicing_delivery_state == 'sent'",
                "warning": "smtp_invoicing_delivery_state == 'queued'",
                "danger": "smtp_invoicing_delivery_state == 'failed'",
            },
        )
        hidden = badge.getparent().get("invisible")
        shown = {
            state: not safe_eval(hidden, {"smtp_invoicing_delivery_state": state})
            for state in (False, "none", "queued", "sent", "failed")
        }
        self.assertEqual(shown, {False: False, "none": False, "queued": True, "sent": True, "failed": True})
        self.assertTrue(arch.xpath("//group[@name='sale_info_group']//field[@name='smtp_invoicing_delivery_state']"))
