"""A real Postfix submission service (Dovecot SASL, reject_sender_login_mismatch) behind own mailboxes."""

from common import MAILBOX_LOGIN, PASSWORD, SmtpInvoicingCase
from mail_stack import MailStack

ALIAS = "accounts@invoicing.test"  # another mailbox's address, not owned by MAILBOX_LOGIN
CUSTOMER = "known@customer.test"


class TestPostfixSubmission(SmtpInvoicingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stack = MailStack(cls.pki, {MAILBOX_LOGIN: PASSWORD, ALIAS: "accounts-pass-8Jx2"}, customers=[CUSTOMER])
        cls.stack.__enter__()
        cls.addClassCleanup(cls.stack.__exit__, None, None, None)
        cls.partner_a.email = CUSTOMER

    def mailbox(self, **values):
        return self.create_mailbox(
            smtp_host=self.stack.host,
            smtp_port=self.stack.submission_port,
            smtp_encryption="starttls",
            smtp_invoicing_ca_cert=self.stack.ca_pem,
            **values,
        )

    def test_sender_not_owned_by_the_login_fails_the_verification(self):
        """Postfix refuses, at RCPT time, a sender the login does not own: Failed during verification, not invoicing."""
        mailbox = self.verify(self.mailbox(sender_email=ALIAS))
        self.assertEqual(mailbox.verification_state, "failed", mailbox.verification_message)
        self.assertIn("refused to send as accounts@invoicing.test", mailbox.verification_message)
        self.assertIn("not owned by user billing@invoicing.test", self.stack.log_tail().lower())

    def test_owned_sender_is_verified_and_an_invoice_reaches_the_customer_mx(self):
        """The login's own address: Verified; Send & Print relays the invoice through Postfix to the customer's MX."""
        mailbox = self.verify(self.mailbox())
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        self.env.ref("account.email_template_edi_invoice").mail_server_id = mailbox.mail_server_id
        invoice = self.create_invoice("out_invoice", partner=self.partner_a, amounts=[300.0], post=True)
        self.send_and_print(invoice)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        self.assertTrue(invoice.is_move_sent)
        ((mail_from, rcpt_tos, content),) = self.stack.customer_mx.wait_for_messages(1)
        self.assertEqual((mail_from, rcpt_tos), (MAILBOX_LOGIN, [CUSTOMER]))
        self.assertIn(invoice.name.encode(), content)
