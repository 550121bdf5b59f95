"""Mailbox per company and template: each company's records leave through its own mailbox."""

from odoo.exceptions import UserError, ValidationError

from odoo.addons.mail.tests.common import mail_new_test_user

from common import MAILBOX_LOGIN, PASSWORD, SmtpInvoicingCase

SECOND_LOGIN = "billing@second.test"


class TestMultiCompany(SmtpInvoicingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_2 = cls.setup_other_company(name="Second Company")["company"]
        # only looked up, never invoiced: no chart of accounts needed
        cls.company_3 = cls.env["res.company"].create({"name": "Third Company"})
        mail_new_test_user(
            cls.env,
            login=SECOND_LOGIN,
            email=SECOND_LOGIN,
            name="Second Billing",
            groups="base.group_user",
            company_id=cls.company_2.id,
        )
        cls.invoice_template = cls.env.ref("account.email_template_edi_invoice")
        cls.credit_note_template = cls.env.ref("account.email_template_edi_credit_note")
        cls.partner_a.email = "customer@client.test"
        cls.partner_b.email = "other@client.test"
        cls.env = cls.env(context=dict(cls.env.context, allowed_company_ids=[cls.company.id, cls.company_2.id]))

    def setUp(self):
        super().setUp()
        self.server_1 = self.start_server()
        self.server_2 = self.start_server(users={SECOND_LOGIN: PASSWORD})
        self.mailbox_1 = self.verify(self.create_mailbox(self.server_1, name="First invoices"))
        self.mailbox_2 = self.verify(
            self.create_mailbox(
                self.server_2,
                name="Second invoices",
                sender_name="Second Billing",
                sender_email=SECOND_LOGIN,
                smtp_user=SECOND_LOGIN,
                smtp_invoicing_company_id=self.company_2.id,
            )
        )
        self.assertEqual(self.mailbox_2.verification_state, "verified", self.mailbox_2.verification_message)
        self.invoice_template.mail_server_id = self.mailbox_1.mail_server_id
        self.env["smtp_invoicing.template.mailbox"].create(
            {
                "template_id": self.invoice_template.id,
                "company_id": self.company_2.id,
                "mailbox_id": self.mailbox_2.id,
            }
        )

    def invoice(self, company, move_type="out_invoice", partner=None):
        return self.create_invoice(
            move_type, partner=partner or self.partner_a, amounts=[100.0], post=True, company=company
        )

    def test_two_companies_share_one_template(self):
        """Send & Print on one invoice per company: each leaves through its own company's server."""
        for invoice, server, login in (
            (self.invoice(self.company), self.server_1, MAILBOX_LOGIN),
            (self.invoice(self.company_2), self.server_2, SECOND_LOGIN),
        ):
            self.send_and_print(invoice)
            self.assertEqual(len(server.messages), 1)
            self.assertEqual(server.messages[0].mail_from, login)
            self.assertIn(invoice.name, server.messages[0].message["Subject"])
            self.assertTrue(invoice.is_move_sent)
        self.assertEqual(len(self.server_1.messages), 1)
        self.assertEqual(len(self.server_2.messages), 1)

    def test_batch_of_mixed_companies_and_templates_in_the_background(self):
        """Batch Send & Print of invoices and credit notes of two companies: every mail through the right mailbox."""
        self.credit_note_template.mail_server_id = self.mailbox_1.mail_server_id
        self.env["smtp_invoicing.template.mailbox"].create(
            {
                "template_id": self.credit_note_template.id,
                "company_id": self.company_2.id,
                "mailbox_id": self.mailbox_2.id,
            }
        )
        for company in (self.company, self.company_2):
            (self.partner_a + self.partner_b).with_company(company).invoice_sending_method = "email"
        moves = self.env["account.move"]
        for company in (self.company, self.company_2):
            for partner in (self.partner_a, self.partner_b):
                moves += self.invoice(company, partner=partner)
                moves += self.invoice(company, partner=partner)
                moves += self.invoice(company, move_type="out_refund", partner=partner)
        self.send_in_background(moves, job_count=5)
        per_company = {self.company: self.server_1, self.company_2: self.server_2}
        for company, server in per_company.items():
            company_moves = moves.filtered(lambda move, company=company: move.company_id == company)
            subjects = sorted(received.message["Subject"] for received in server.messages)
            self.assertEqual(len(subjects), len(company_moves), subjects)
            for move in company_moves:
                self.assertEqual(len([s for s in subjects if f"(Ref {move.name})" in s]), 1, move.name)
        self.assertTrue(all(moves.mapped("is_move_sent")))

    def test_many_invoices_over_several_background_batches(self):
        """24 invoices and credit notes of two companies, sent in the background over four batches of
        the scheduled action: each once, through its company's mailbox."""
        self.credit_note_template.mail_server_id = self.mailbox_1.mail_server_id
        self.env["smtp_invoicing.template.mailbox"].create(
            {
                "template_id": self.credit_note_template.id,
                "company_id": self.company_2.id,
                "mailbox_id": self.mailbox_2.id,
            }
        )
        for company in (self.company, self.company_2):
            self.partner_a.with_company(company).invoice_sending_method = "email"
        moves = self.env["account.move"].create(
            [
                {
                    "move_type": "out_refund" if n % 5 == 0 else "out_invoice",
                    "company_id": company.id,
                    "partner_id": self.partner_a.id,
                    "invoice_date": "2026-01-01",
                    "invoice_line_ids": [
                        (0, 0, {"name": f"Line {n}", "quantity": 1, "price_unit": 10.0 + n, "tax_ids": [(6, 0, [])]})
                    ],
                }
                for n in range(12)
                for company in (self.company, self.company_2)
            ]
        )
        moves.action_post()
        self.send_in_background(moves, job_count=6)
        for company, server in ((self.company, self.server_1), (self.company_2, self.server_2)):
            names = {move.name for move in moves if move.company_id == company}
            received = [message.message["Subject"].rsplit("(Ref ", 1)[-1].rstrip(")") for message in server.messages]
            self.assertEqual(len(received), 12)
            self.assertEqual(set(received), names)
        self.assertTrue(all(moves.mapped("is_move_sent")))

    def test_resolution_is_one_query_per_batch(self):
        """Resolving the mailbox of many records of several companies costs no more queries than of two."""
        few = self.invoice(self.company) + self.invoice(self.company_2)
        many = few + self.invoice(self.company) + self.invoice(self.company_2) + self.invoice(self.company)

        def queries(moves):
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            servers = self.invoice_template._smtp_invoicing_record_mail_servers(moves.ids)
            count = self.env.cr.sql_log_count - before
            self.assertEqual(
                {move.id: move.company_id for move in moves if servers[move.id] == self.mailbox_2},
                {move.id: self.company_2 for move in moves if move.company_id == self.company_2},
            )
            return count

        queries(few)  # warm the caches that are not per record (parameters, rules)
        self.assertEqual(queries(few), queries(many))

    def test_company_without_choice_falls_back(self):
        """No line for a company: the template's mailbox if it accepts that company, else Odoo's default."""
        company_3 = self.company_3
        servers = self.invoice_template._smtp_invoicing_company_mail_servers(self.company + self.company_2 + company_3)
        self.assertEqual(servers[self.company.id], self.mailbox_1)
        self.assertEqual(servers[self.company_2.id], self.mailbox_2)
        self.assertFalse(servers[company_3.id])
        self.mailbox_1.smtp_invoicing_company_id = False
        self.verify(self.mailbox_1)
        servers = self.invoice_template._smtp_invoicing_company_mail_servers(company_3)
        self.assertEqual(servers[company_3.id], self.mailbox_1)

    def test_choice_must_be_a_verified_mailbox_of_that_company(self):
        """A company can only choose its own verified mailbox, once per template."""
        with self.assertRaises(ValidationError) as caught:
            self.env["smtp_invoicing.template.mailbox"].create(
                {
                    "template_id": self.credit_note_template.id,
                    "company_id": self.company_2.id,
                    "mailbox_id": self.mailbox_1.id,
                }
            )
        self.assertIn("not an own mailbox of Second Company", caught.exception.args[0])
        draft = self.create_mailbox(
            self.server_2,
            name="Draft second",
            sender_email=SECOND_LOGIN,
            smtp_user=SECOND_LOGIN,
            smtp_invoicing_company_id=self.company_2.id,
        )
        with self.assertRaises(ValidationError) as caught:
            self.env["smtp_invoicing.template.mailbox"].create(
                {
                    "template_id": self.credit_note_template.id,
                    "company_id": self.company_2.id,
                    "mailbox_id": draft.id,
                }
            )
        self.assertIn("must be verified", caught.exception.args[0])

    def test_batch_refused_when_one_company_mailbox_failed(self):
        """Batch Send & Print names the failed mailbox of one company before queueing anything."""
        moves = self.invoice(self.company) + self.invoice(self.company_2)
        self.mailbox_2._smtp_invoicing_set_state("failed", "The user name or password was refused.")
        wizard = (
            self.env["account.move.send.batch.wizard"]
            .with_context(active_model="account.move", active_ids=moves.ids)
            .create({})
        )
        with self.assertRaisesRegex(UserError, "Second invoices"):
            wizard.action_send_and_print()
        self.assertFalse(any(moves.mapped("sending_data")))
