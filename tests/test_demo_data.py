"""The demo data loads on its own and makes a self-explanatory company."""

from odoo.tests import TransactionCase
from odoo.tools import convert_file

from odoo.addons.smtp_invoicing.models.smtp_invoicing_mailbox_password import secret_box


class TestDemoData(TransactionCase):
    def test_demo_file_creates_mailboxes_users_and_overdue_invoices(self):
        """Loading the demo file switches the feature on, adds two encrypted mailboxes and posted invoices."""
        self.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.enabled", "False")
        convert_file(self.env, "smtp_invoicing", "demo/smtp_invoicing_demo.xml", {}, mode="init", kind="demo")
        ref = self.env.ref
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param("smtp_invoicing.enabled"), "True")
        for xmlid, login in (
            ("smtp_invoicing.demo_mailbox_invoices", "billing@yourcompany.example.com"),
            ("smtp_invoicing.demo_mailbox_reminders", "reminders@yourcompany.example.com"),
        ):
            mailbox = ref(xmlid)
            self.assertEqual(
                (mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_encryption), ("127.0.0.1", 2525, "starttls")
            )
            self.assertEqual(mailbox._smtp_invoicing_licensed_user().login, login)
            self.assertEqual(mailbox._name, "smtp_invoicing.mailbox")
            self.env.flush_all()
            self.env.cr.execute("SELECT smtp_pass FROM ir_mail_server WHERE id = %s", [mailbox.mail_server_id.id])
            self.assertFalse(self.env.cr.fetchone()[0], "the clear column stays empty")
            token = mailbox.sudo().smtp_invoicing_password_enc
            self.assertEqual(secret_box().decrypt(token, mailbox._smtp_invoicing_secret_context()), "demo-password")
        invoices = ref("smtp_invoicing.demo_invoice_overdue_long") | ref("smtp_invoicing.demo_invoice_overdue_short")
        invoices |= ref("smtp_invoicing.demo_invoice_not_due")
        self.assertEqual(set(invoices.mapped("state")), {"posted"})
        overdue = invoices.filtered(lambda move: move.invoice_date_due < move.invoice_date.today())
        self.assertEqual(len(overdue), 2)
