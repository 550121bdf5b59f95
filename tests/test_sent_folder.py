"""The provider's Sent folder, read back in the poll's IMAP session: one Sent copy of each mail (a custom server
that files its own is asked once, before Odoo files any), and a sender the provider rewrote is caught — against a
real Dovecot on loopback (tests/mail_stack.py) and the Gmail stand-in filing what it accepts there."""

from datetime import timedelta

import test_bounces

from odoo import fields

from common import MAILBOX_LOGIN, real_smtp
from provider_servers import GmailStandIn, imap_filer

LOGINS = test_bounces.LOGINS
OTHER_SENDER = "accounts@invoicing.test"


class SentFolderCase(test_bounces.BounceCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner_a.email = "customer@client.test"

    def filing_server(self, login, **options):
        """A Gmail stand-in for ``login`` that APPENDs every mail it accepts to the stack's Sent folder of
        ``login``, before its 250, as Gmail files its Sent Mail."""
        server = GmailStandIn(
            self.pki,
            login,
            LOGINS[login],
            on_sent=imap_filer(
                self.stack.host, self.stack.imaps_port, login, LOGINS[login], ssl_context=self.stack.client_context()
            ),
            **options,
        )
        server.__enter__()
        self.addCleanup(server.__exit__, None, None, None)
        return server

    def sent_headers(self, login):
        """[(From, Message-ID)] of the Sent folder of ``login``, read by doveadm (no IMAP session)."""
        return [
            (str(message["From"]), str(message["Message-ID"])) for _uid, message in self.stack.messages(login, "Sent")
        ]

    def copies(self, mailbox):
        return self.env["smtp_invoicing.sent.copy"].search([("mailbox_id", "=", mailbox.id)])

    def send_invoice(self):
        invoice = self.invoice(self.partner_a)
        self.send_and_print(invoice)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        return invoice

    def send_test_email(self, mailbox):
        wizard = self.env["smtp_invoicing.test.email"].create(
            {"mailbox_id": mailbox.id, "email_to": "customer@client.test"}
        )
        with real_smtp():
            result = wizard.action_send()
        self.assertEqual(result["params"]["type"], "success", result["params"]["message"])
        self.env.invalidate_all()

    @staticmethod
    def sent_lookups(log):
        """The lines of a session that looked a Message-ID up (SEARCH HEADER Message-ID)."""
        return [line for line in log.commands() if b"SEARCH" in line and b"HEADER Message-ID" in line]

    @staticmethod
    def appends(log):
        return [name for name in log.names() if name == b"APPEND"]


class TestOneSentCopy(SentFolderCase):
    def test_custom_server_that_files_its_own_copy_is_found_once_and_gets_no_second_copy(self):
        """A custom server that files what it sends: before filing its first copy, Odoo finds the mail in Sent
        (headers only, in the poll's one session with the INBOX), drops the queued copies, and never queues or
        asks again; the Sent folder holds each mail once."""
        login = "returns@invoicing.test"
        server = self.filing_server(login)
        mailbox = self.stack_mailbox(login, smtp=server, smtp_invoicing_sent_copy=True)
        self.assertEqual(mailbox.smtp_invoicing_server_files_sent, "unknown")
        first, second = self.send_invoice(), self.send_invoice()
        self.assertEqual(len(self.copies(mailbox)), 2, "not known yet: the copies wait for the answer")
        sessions, logs = self.counting_sessions()
        with sessions:
            self.poll()
        (log,) = logs
        (lookup,) = self.sent_lookups(log)
        self.assertIn(self.document_message(first).message_id.encode(), lookup)
        self.assertEqual(self.appends(log), [])
        self.assertEqual(log.full_fetches(), [])
        self.assertTrue(all(b"HEADER.FIELDS (FROM)" in line for line in log.commands() if b"FETCH" in line))
        self.assertEqual(log.names().count(b"EXAMINE"), 2, "Sent, then the INBOX for reports, in one session")
        self.assertEqual(mailbox.smtp_invoicing_server_files_sent, "yes")
        self.assertFalse(self.copies(mailbox))
        self.assertEqual(
            sorted(message_id for _from, message_id in self.sent_headers(login)),
            sorted(self.document_message(move).message_id for move in first | second),
        )
        self.assertTrue(
            mailbox.message_ids.filtered(lambda message: "Odoo adds no copy of its own (2 waiting" in message.body)
        )

        self.send_invoice()
        self.assertFalse(self.copies(mailbox), "the server files it: no copy queued")
        with sessions:
            self.poll()
        self.assertEqual(len(logs), 2)
        self.assertEqual((self.sent_lookups(logs[1]), self.appends(logs[1])), ([], []))
        self.assertEqual(len(self.sent_headers(login)), 3)

    def test_custom_server_that_does_not_file_gets_odoos_copy_and_is_asked_only_once(self):
        """A custom server that does not file what it sends: the mail is not in Sent, so Odoo files its copy and
        remembers it; the next copies are filed without looking again."""
        login = "copies@invoicing.test"
        server = self.start_server(users={login: LOGINS[login]})
        mailbox = self.stack_mailbox(
            login, smtp=server, smtp_invoicing_sent_copy=True, smtp_invoicing_track_bounces=False
        )
        first = self.send_invoice()
        sessions, logs = self.counting_sessions()
        with sessions:
            self.poll()
            (log,) = logs
            self.assertEqual(len(self.sent_lookups(log)), 1)
            self.assertEqual(len(self.appends(log)), 1)
            self.assertLess(log.names().index(b"UID SEARCH"), log.names().index(b"APPEND"), "asked before filing")
            self.assertEqual(mailbox.smtp_invoicing_server_files_sent, "no")
            self.assertEqual(
                [mid for _from, mid in self.sent_headers(login)], [self.document_message(first).message_id]
            )

            second = self.send_invoice()
            self.assertEqual(len(self.copies(mailbox)), 1)
            self.poll()
        self.assertEqual(len(logs), 2)
        self.assertEqual(self.sent_lookups(logs[1]), [])
        self.assertEqual(len(self.appends(logs[1])), 1)
        self.assertEqual(
            [mid for _from, mid in self.sent_headers(login)],
            [self.document_message(move).message_id for move in first | second],
        )
        self.assertEqual(mailbox.smtp_invoicing_server_files_sent, "no")
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "unknown", "Odoo's own copy proves nothing")

    def test_ovh_copy_is_filed_without_asking(self):
        """OVH does not file what it sends: Odoo files its copy at once, with no lookup in the Sent folder."""
        login = "formats@invoicing.test"
        server = self.start_server(users={login: LOGINS[login]})
        mailbox = self.stack_mailbox(
            login,
            smtp=server,
            smtp_invoicing_preset="ovh",
            smtp_invoicing_sent_copy=True,
            smtp_invoicing_track_bounces=False,
        )
        invoice = self.send_invoice()
        sessions, logs = self.counting_sessions()
        with sessions:
            self.poll()
        (log,) = logs
        self.assertEqual(self.sent_lookups(log), [])
        self.assertEqual(self.appends(log), [b"APPEND"])
        self.assertEqual([mid for _from, mid in self.sent_headers(login)], [self.document_message(invoice).message_id])
        self.assertEqual(mailbox.smtp_invoicing_server_files_sent, "unknown")
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "unknown")

    def test_another_server_is_asked_again(self):
        """The answer belongs to the server: pointing the mailbox at another host forgets it."""
        login = "delays@invoicing.test"
        server = self.filing_server(login)
        mailbox = self.stack_mailbox(
            login, smtp=server, smtp_invoicing_sent_copy=True, smtp_invoicing_track_bounces=False
        )
        self.send_invoice()
        self.poll()
        self.assertEqual(mailbox.smtp_invoicing_server_files_sent, "yes")
        mailbox.write({"sender_name": "Another name"})
        self.assertEqual(mailbox.smtp_invoicing_server_files_sent, "yes")
        mailbox.write({"smtp_host": "localhost"})
        self.assertEqual(mailbox.smtp_invoicing_server_files_sent, "unknown")


class TestRewrittenSender(SentFolderCase):
    def gmail_mailbox(self, login, server, **values):
        return self.stack_mailbox(
            login,
            smtp=server,
            smtp_invoicing_preset="gmail",
            smtp_invoicing_track_bounces=False,
            smtp_invoicing_sent_copy=False,
            **values,
        )

    def test_gmail_rewritten_sender_fails_the_mailbox_after_the_test_email_until_fixed(self):
        """Gmail sends the test email as the account, not the sender: the poll (tracking off) reads its From from
        Sent, headers only, and fails the mailbox with the address that went out and the "Send mail as" fix, a
        to-do for the administrator; once the sender is an alias and verified, the next mail reads back the same."""
        login = "checks@invoicing.test"
        gmail = self.filing_server(login)
        mailbox = self.gmail_mailbox(login, gmail, sender_email=OTHER_SENDER)
        self.assertIn("Send mail as", mailbox.smtp_invoicing_sender_notice)
        self.send_test_email(mailbox)
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "pending")
        self.assertEqual(mailbox.verification_state, "verified", "nothing known before the mailbox is read")
        ((went_out, _mid),) = self.sent_headers(login)
        self.assertIn(login, went_out)
        sessions, logs = self.counting_sessions()
        with sessions:
            self.poll()
        (log,) = logs
        self.assertEqual(len(self.sent_lookups(log)), 1)
        self.assertEqual(log.full_fetches(), [])
        (fetch,) = [line for line in log.commands() if b"FETCH" in line]
        self.assertIn(b"BODY.PEEK[HEADER.FIELDS (FROM)]", fetch)
        examined = [line.split(b" ", 2)[2].strip(b'"') for line in log.commands() if b" EXAMINE " in line]
        self.assertEqual(examined, [b"Sent"], "the Sent folder only: tracking is off")
        self.assertEqual(mailbox.verification_state, "failed")
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "rewritten")
        self.assertIn(f"went out as {login}", mailbox.verification_message)
        self.assertIn(f"as {OTHER_SENDER}", mailbox.verification_message)
        self.assertIn("Settings › Accounts › Send mail as", mailbox.verification_message)
        (todo,) = mailbox.activity_ids
        self.assertEqual(todo.user_id, self.env.user, "the administrator who verified it")
        self.assertIn("fix and verify", todo.summary)

        gmail.aliases = (OTHER_SENDER,)  # added and confirmed in Gmail's "Send mail as"
        self.verify(mailbox)
        self.assertEqual(mailbox.verification_state, "verified")
        self.send_test_email(mailbox)
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "pending", "read back again after the fix")
        self.poll()
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "same")
        self.assertEqual(mailbox.verification_state, "verified")
        self.assertIn(OTHER_SENDER, self.sent_headers(login)[-1][0])

    def test_sender_read_back_unchanged_after_the_first_invoice_is_never_read_again(self):
        """Gmail sends the first invoice as the sender (the account): the poll reads it back once and remembers
        it; later invoices are never read back and, with tracking off, the mailbox is not even opened; another
        sender is read back again."""
        login = "foreign@invoicing.test"
        gmail = self.filing_server(login)
        mailbox = self.gmail_mailbox(login, gmail)
        self.send_invoice()
        sessions, logs = self.counting_sessions()
        with sessions:
            self.poll()
            self.assertEqual(len(logs), 1)
            self.assertEqual(mailbox.smtp_invoicing_sender_check, "same")
            self.assertEqual(mailbox.verification_state, "verified")
            self.send_invoice()
            self.assertEqual(mailbox.smtp_invoicing_sender_check, "same")
            self.poll()
        self.assertEqual(len(logs), 1, "nothing to read: no login")
        self.assertEqual(len(self.sent_headers(login)), 2)
        mailbox.sender_email = OTHER_SENDER
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "unknown")

    def test_without_imap_the_notice_stays_the_only_signal(self):
        """No IMAP on a Gmail mailbox whose sender Gmail rewrites: nothing is read back, no session is opened,
        the mailbox stays verified and its form warns before the first send."""
        login = "bulk@invoicing.test"
        gmail = self.filing_server(login)
        mailbox = self.gmail_mailbox(login, gmail, sender_email=OTHER_SENDER, smtp_invoicing_imap_host=False)
        self.send_invoice()
        self.assertIn(login, gmail.accepted[-1].from_header)
        sessions, logs = self.counting_sessions()
        with sessions:
            self.poll()
        self.assertEqual(logs, [])
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "unknown")
        self.assertEqual(mailbox.verification_state, "verified")
        self.assertIn("Send mail as", mailbox.smtp_invoicing_sender_notice)

    def test_a_copy_not_found_waits_then_the_next_mail_is_read_back(self):
        """The mail's copy was deleted from Gmail's Sent folder: the check waits (no verdict), is given up after
        its patience, and the next mail is read back instead."""
        login = MAILBOX_LOGIN
        gmail = self.filing_server(login)
        mailbox = self.gmail_mailbox(login, gmail, sender_email=OTHER_SENDER)
        self.send_invoice()
        self.stack.doveadm("expunge", "-u", login, "mailbox", "Sent", "all")
        self.poll()
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "pending")
        self.assertEqual(mailbox.verification_state, "verified")
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_sender_check_since = %s WHERE id = %s",
            [fields.Datetime.now() - timedelta(hours=7), mailbox.id],
        )
        self.env.invalidate_all()
        self.poll()
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "unknown")
        self.send_invoice()
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "pending")
        self.poll()
        self.assertEqual(mailbox.smtp_invoicing_sender_check, "rewritten")
        self.assertEqual(mailbox.verification_state, "failed")
