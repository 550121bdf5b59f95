"""No password in the logs: the session-wide detector works, and a DEBUG-level SMTP session leaks nothing."""

import base64
import contextlib
import io
import logging

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase, real_smtp
from conftest import SECRET_LOG, secret_leaks


class TestLogSecrets(MailboxCase):
    def test_detector_finds_clear_and_base64_passwords(self):
        """The session-wide log check recognises a password in clear, in base64 and inside AUTH PLAIN."""
        plain = base64.b64encode(b"\0" + MAILBOX_LOGIN.encode() + b"\0" + PASSWORD.encode()).decode()
        for text in (
            f"login {PASSWORD}",
            f"send: 'AUTH PLAIN {plain}\\r\\n'",
            base64.b64encode(PASSWORD.encode()).decode(),
        ):
            self.assertEqual(secret_leaks(text, {PASSWORD}), {PASSWORD}, text)
        self.assertEqual(secret_leaks("AUTH PLAIN AGJpbGxpbmcAc29tZXRoaW5nLWVsc2U=", {PASSWORD}), set())

    def test_debug_smtp_session_logs_and_prints_no_password(self):
        """Core's SMTP debugging switched on for a mailbox traces no SMTP session; no log holds a password.

        smtplib's trace (core's ``smtp_debug``, which core sends to its DEBUG log) holds the AUTH
        exchange, base64-encoded: own mailboxes never turn it on, whatever the checkbox says.
        """
        first = len(SECRET_LOG.texts)
        mailbox = self.create_mailbox(smtp_debug=True)
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            self.verify(mailbox)
            mail = self.env["mail.mail"].create(
                {
                    "email_to": "customer@client.test",
                    "subject": "Debugged",
                    "body_html": "<p>x</p>",
                    "email_from": MAILBOX_LOGIN,
                    "mail_server_id": mailbox.mail_server_id.id,
                    "record_company_id": self.company.id,
                }
            )
            with real_smtp():
                mail.send()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        self.assertEqual(mail.state, "sent")
        records = SECRET_LOG.texts[first:]
        self.assertTrue(any(name.startswith("smtp_invoicing") or "smtp_invoicing" in name for name, _t in records))
        self.assertTrue(logging.getLogger("odoo.addons.smtp_invoicing").isEnabledFor(logging.DEBUG))
        trace = [text for _name, text in records if text.startswith(("send:", "reply:"))]
        self.assertEqual(trace, [])  # smtplib's trace: "send: 'AUTH PLAIN ...'", "reply: ..."
        for _name, text in records + [("stderr", stderr.getvalue())]:
            self.assertEqual(secret_leaks(text, {PASSWORD}), set(), text)
