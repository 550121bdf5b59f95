"""Secrets over their life: key rotation, a database restored without its key, foreign ciphertexts."""

import os
from unittest.mock import patch

from cryptography.fernet import Fernet

from odoo.exceptions import UserError
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase, real_smtp

MODEL_LOGGER = "odoo.addons.smtp_invoicing.models.smtp_invoicing_mailbox_password"


def key_env(*keys):
    return patch.dict(os.environ, {"SMTP_INVOICING_KEY": ",".join(keys)})


class TestSecretsLifecycle(MailboxCase):
    def token(self, mailbox):
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT smtp_invoicing_password_enc FROM smtp_invoicing_mailbox WHERE id = %s", [mailbox.id]
        )
        return self.env.cr.fetchone()[0]

    def clear_password(self, server):
        """What core's own column ``ir_mail_server.smtp_pass`` holds for ``server``."""
        self.env.flush_all()
        self.env.cr.execute("SELECT smtp_pass FROM ir_mail_server WHERE id = %s", [server.id])
        return self.env.cr.fetchone()[0]

    def queue_mail(self, mailbox, subject):
        return self.env["mail.mail"].create(
            {
                "email_to": "customer@client.test",
                "subject": subject,
                "body_html": "<p>Invoice</p>",
                "email_from": MAILBOX_LOGIN,
                "mail_server_id": mailbox.mail_server_id.id,
                "record_company_id": self.company.id,
            }
        )

    def test_key_rotation_end_to_end(self):
        """New key first, one server action re-encrypts every mailbox password, old key removed: mail still flows."""
        old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
        with key_env(old):
            mailbox = self.verify(self.create_mailbox())
            relay = self.env["ir.mail_server"].create(
                {
                    "name": "Relay",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": 2525,
                    "smtp_user": "relay",
                    "smtp_pass": "relay-secret",
                }
            )
            self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
            old_token = self.token(mailbox)
        with key_env(new, old):
            action = self.env.ref("smtp_invoicing.action_smtp_invoicing_reencrypt_passwords")
            action.with_context(active_model="smtp_invoicing.mailbox").run()
            self.assertNotEqual(self.token(mailbox), old_token)
        # the mailbox's server keeps no clear copy; a core server's password is core's business:
        # in its clear column, untouched, and no mailbox (no encrypted copy) behind it
        self.assertIsNone(self.clear_password(mailbox.mail_server_id))
        self.assertEqual(self.clear_password(relay), "relay-secret")
        self.assertFalse(relay.smtp_invoicing_mailbox_ids)
        self.assertEqual(relay.smtp_pass, "relay-secret")
        with key_env(new):
            self.assertEqual(mailbox._smtp_invoicing_password(), PASSWORD)
            self.verify(mailbox)
            self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
            mail = self.queue_mail(mailbox, "After rotation")
            with real_smtp():
                mail.send()
        self.assertEqual(mail.state, "sent")
        self.assertEqual([m.message["Subject"] for m in self.server.messages], ["After rotation"])
        with key_env(old), mute_logger(MODEL_LOGGER), self.assertRaisesRegex(UserError, "must be entered again"):
            mailbox._smtp_invoicing_password()

    def test_database_restored_without_its_key(self):
        """Without the key: Failed, "password must be entered again", its mail waits alone, others are sent."""
        old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
        reminders_server = self.start_server()
        with key_env(old):
            lost = self.verify(self.create_mailbox())
            kept = self.verify(self.create_mailbox(reminders_server, name="Reminders"))
        with key_env(new):
            kept.smtp_pass = PASSWORD  # entered again on the new server
            self.verify(kept)
            with mute_logger(MODEL_LOGGER):
                self.verify(lost)
                mails = self.queue_mail(lost, "Lost key") | self.queue_mail(kept, "Kept")
                with real_smtp():
                    mails.send()
        self.assertEqual(lost.verification_state, "failed")
        self.assertIn("must be entered again", lost.verification_message)
        self.assertEqual(kept.verification_state, "verified", kept.verification_message)
        # held in the queue, not failed: it leaves once the password is entered again and verified
        self.assertEqual(mails.mapped("state"), ["outgoing", "sent"])
        self.assertEqual(mails[0].smtp_invoicing_retry_count, 0)
        self.assertEqual(self.server.messages, [])
        self.assertEqual([m.message["Subject"] for m in reminders_server.messages], ["Kept"])

    def test_ciphertext_copied_to_another_company_does_not_decrypt(self):
        """A ciphertext copied into another company's mailbox row does not decrypt there."""
        other_company = self.setup_other_company()["company"]
        mail_new_test_user(
            self.env,
            login="billing@other.test",
            email="billing@other.test",
            company_id=other_company.id,
            company_ids=[(6, 0, other_company.ids)],
        )
        mine = self.create_mailbox()
        theirs = self.create_mailbox(
            name="Other",
            smtp_user="billing@other.test",
            sender_email="billing@other.test",
            smtp_invoicing_company_id=other_company.id,
            smtp_pass="their-secret",
        )
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_password_enc = %s WHERE id = %s",
            [self.token(mine), theirs.id],
        )
        theirs.invalidate_recordset()
        with mute_logger(MODEL_LOGGER), self.assertRaisesRegex(UserError, "must be entered again"):
            theirs._smtp_invoicing_password()
        with mute_logger(MODEL_LOGGER):
            self.verify(theirs)
        self.assertEqual(theirs.verification_state, "failed")
        self.assertEqual(self.server.auth_attempts, [])
