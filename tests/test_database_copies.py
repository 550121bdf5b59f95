"""Database copies: a neutralized staging copy never sends from the company's mailbox."""

from odoo.exceptions import UserError
from odoo.modules.neutralize import neutralize_database

from common import MAILBOX_LOGIN, MailboxCase, real_smtp


class TestDatabaseCopies(MailboxCase):
    def test_neutralized_copy_never_sends_from_the_mailbox(self):
        """Neutralizing archives own mailboxes, forgets their passwords and switches the feature off."""
        mailbox = self.verify(self.create_mailbox())
        template = self.env.ref("account.email_template_edi_invoice")
        template.mail_server_id = mailbox.mail_server_id
        mail = self.env["mail.mail"].create(
            {
                "email_to": "customer@client.test",
                "subject": "Queued before the copy",
                "body_html": "<p>x</p>",
                "email_from": MAILBOX_LOGIN,
                "mail_server_id": mailbox.mail_server_id.id,
                "record_company_id": self.company.id,
            }
        )
        self.env.flush_all()
        neutralize_database(self.env.cr)
        # a neutralized copy starts a fresh registry: nothing cached from before the SQL
        self.env.invalidate_all()
        self.env.registry.clear_cache()
        self.assertFalse(mailbox.active)
        self.assertFalse(mailbox.smtp_invoicing_password_set)
        self.assertEqual(mailbox.verification_state, "draft")
        self.assertIn("Neutralized", mailbox.verification_message)
        self.assertFalse(template.mail_server_id)
        self.assertFalse(mailbox._smtp_invoicing_is_enabled())
        # even a mailbox unarchived by mistake has nothing to log in with: Verify is refused
        mailbox.active = True
        with self.assertRaisesRegex(UserError, "has no password yet"):
            mailbox.action_verify()
        self.assertEqual(mailbox.verification_state, "draft")
        with real_smtp():
            mail.send()
        self.assertNotEqual(mail.mail_server_id, mailbox.mail_server_id)
        self.assertEqual(self.server.messages, [])
        self.assertEqual(len(self.server.auth_attempts), 1)  # the verification before the copy only
