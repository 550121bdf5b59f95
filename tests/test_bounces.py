"""Bounces come home: real Postfix DSNs and other MTAs' reports read from a real Dovecot INBOX mark invoices returned;
a copy of each sent mail lands in the Sent folder; a big inbox is scanned headers-only and bounded."""

import os
import re
from datetime import timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.tests import Form
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.addons.smtp_invoicing.lib import imap

from common import MAILBOX_LOGIN, PASSWORD, SmtpInvoicingCase, real_smtp
from mail_stack import MailStack
from smtp_servers import closed_port

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "bounces")
POLL_LOGGER = "odoo.addons.smtp_invoicing.models.smtp_invoicing_mailbox_bounces_poll"
BOUNCE_LOGGER = "odoo.addons.smtp_invoicing.models.smtp_invoicing_bounce"
MAIL_LOGGER = "odoo.addons.mail.models.mail_mail"
WRONG = "wrong@customer.test"
LATER = "later@customer.test"
# other MTAs' formats: fixture -> (failed address in it, original Message-ID in it)
FORMATS = {
    "gmail_address_not_found.eml": ("nobody@customer.example", "<inv-2026-00003.1765000002@invoicing.test>"),
    "microsoft365_recipient_not_found.eml": ("ap@customer.example", "<inv-2026-00004.1765000003@invoicing.test>"),
    "exim_user_unknown.eml": ("gone@customer.example", "<inv-2026-00005.1765000004@invoicing.test>"),
    "qmail_no_mailbox.eml": ("accounts@customer.example", "<inv-2026-00006.1765000005@invoicing.test>"),
}
KNOWN = ["known@customer.test"] + [f"format{index}@customer.test" for index in range(len(FORMATS))]
LOGINS = {
    MAILBOX_LOGIN: PASSWORD,
    "returns@invoicing.test": "returns-imap-secret-1",
    "formats@invoicing.test": "formats-imap-secret-2",
    "delays@invoicing.test": "delays-imap-secret-3",
    "foreign@invoicing.test": "foreign-imap-secret-4",
    "bulk@invoicing.test": "bulk-imap-secret-5",
    "copies@invoicing.test": "copies-imap-secret-6",
    "checks@invoicing.test": "checks-imap-secret-7",
}


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        return handle.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class CommandLog:
    """Counts the IMAP commands a logged-in client sends from now on, and keeps their lines."""

    def __init__(self, client):
        self.sent = b""
        transport = client._imap
        send = transport.send

        def recording_send(data):
            self.sent += data
            return send(data)

        transport.send = recording_send

    def commands(self):
        return [line for line in self.sent.split(b"\r\n") if re.match(rb"^[A-Z]+\d+ ", line)]

    def names(self):
        names = []
        for line in self.commands():
            words = line.split()
            names.append(b" ".join(words[1:3]) if words[1] == b"UID" else words[1])
        return names

    def full_fetches(self):
        return [line for line in self.commands() if b"BODY.PEEK[]" in line or b"BODY[]" in line]


class BounceCase(SmtpInvoicingCase):
    """A real Postfix + Dovecot on loopback (tests/mail_stack.py) and mailboxes that send and read through it."""

    stack_options = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # real Postfix and Dovecot on a shared 2-core machine: the fault-test timeouts of 3 s are too tight
        cls.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.verify_timeout", "20")
        cls.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.verify_deadline", "40")
        cls.stack = MailStack(cls.pki, LOGINS, **cls.stack_options).start()
        cls.addClassCleanup(cls.stack.stop)
        cls.invoice_template = cls.env.ref("account.email_template_edi_invoice")
        cls.poll_cron = cls.env.ref("smtp_invoicing.ir_cron_poll_mailboxes")

    def stack_mailbox(self, login, smtp=None, **values):
        """A verified mailbox of ``login`` reading the stack's IMAP; it sends through Postfix unless ``smtp``."""
        if login != MAILBOX_LOGIN:
            mail_new_test_user(
                self.env,
                login=login,
                email=login,
                groups="base.group_user,account.group_account_invoice",
                company_id=self.company.id,
            )
        vals = {
            "name": f"Mailbox {login}",
            "sender_email": login,
            "smtp_user": login,
            "smtp_pass": LOGINS[login],
            "smtp_host": self.stack.host,
            "smtp_port": self.stack.submission_port,
            "smtp_encryption": "starttls",
            "smtp_invoicing_ca_cert": self.stack.ca_pem,
            "smtp_invoicing_imap_host": self.stack.host,
            "smtp_invoicing_imap_port": self.stack.imaps_port,
            "smtp_invoicing_track_bounces": True,
        }
        if smtp is not None:
            vals.update(smtp_host=smtp.host, smtp_port=smtp.port)
        vals.update(values)
        mailbox = self.verify(self.create_mailbox(**vals))
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        self.invoice_template.mail_server_id = mailbox.mail_server_id
        return mailbox

    def user_flags(self, login, mailbox="INBOX"):
        return {uid: flags - {"\\Recent"} for uid, flags in self.stack.flags(login, mailbox).items()}

    def imap_session(self, login):
        return imap.open_session(self.stack.host, self.stack.imaps_port, login, LOGINS[login], ca_pem=self.stack.ca_pem)

    def append(self, login, raws, folder="INBOX", flags=()):
        client = self.imap_session(login)
        try:
            for raw in raws:
                client.append(folder, raw, flags=flags)
        finally:
            imap.logout(client)

    def invoice(self, partner):
        return self.create_invoice("out_invoice", partner=partner, amounts=[100.0], post=True)

    def document_message(self, move):
        return self.env["mail.message"].search(
            [
                ("model", "=", "account.move"),
                ("res_id", "=", move.id),
                ("smtp_invoicing_document_template_id", "!=", False),
            ]
        )

    def notification(self, move, partner):
        return self.document_message(move).notification_ids.filtered(lambda notif: notif.res_partner_id == partner)

    def poll(self, minutes=0):
        """The bounce scheduled action, as the cron worker runs it, then a fresh look at what it committed."""
        self.env.flush_all()
        with freeze_time(fields.Datetime.now() + timedelta(minutes=minutes)):
            self.env["smtp_invoicing.mailbox"]._cron_poll_mailboxes()
        self.env.invalidate_all()

    def counting_sessions(self):
        """Patch the IMAP login of the scheduled action: every session gets a CommandLog, listed in the result."""
        logs = []
        original = imap.open_session

        def open_session(*args, **kwargs):
            client = original(*args, **kwargs)
            logs.append(CommandLog(client))
            return client

        return patch.object(imap, "open_session", open_session), logs


class TestBounces(BounceCase):
    stack_options = {"customers": KNOWN, "tempfail_customers": [LATER]}

    def test_wrong_address_comes_back_as_returned_and_nothing_else_is_touched(self):
        """Send & Print to a wrong address: Postfix's real DSN is read, the invoice is returned, the notification
        bounce, the partner's bounce count 1, an activity asks to fix it, and no message of the INBOX changes."""
        login = "returns@invoicing.test"
        mailbox = self.stack_mailbox(login)
        self.append(login, [fixture("not_report_customer_reply.eml")])
        self.append(login, [fixture("not_report_out_of_office.eml")], flags=(b"\\Flagged",))
        self.partner_a.email = WRONG
        invoice = self.invoice(self.partner_a)
        invoice.invoice_user_id = self.mailbox_user
        self.send_and_print(invoice)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        self.assertTrue(invoice.is_move_sent)
        self.stack.wait_for_messages(login, 3)
        before = self.stack.flags(login)

        self.poll()
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "returned")
        self.assertFalse(invoice.is_move_sent)
        self.assertIn(WRONG, invoice.smtp_invoicing_mail_failure)
        self.assertIn("the customer's server says this address does not exist", invoice.smtp_invoicing_mail_failure)
        notification = self.notification(invoice, self.partner_a)
        self.assertEqual(notification.notification_status, "bounce")
        self.assertEqual(notification.failure_type, "mail_bounce")
        self.assertIn("5.1.1", notification.failure_reason)
        self.assertEqual(self.partner_a.message_bounce, 1)
        activity = invoice.activity_ids.filtered(lambda act: "Email returned" in (act.summary or ""))
        self.assertEqual(activity.user_id, self.mailbox_user)
        self.assertEqual(self.stack.flags(login), before, "no flag set, nothing moved or deleted")
        self.assertFalse(any("\\Seen" in flags for flags in before.values()))
        self.assertEqual(len(mailbox.smtp_invoicing_bounce_ids), 1)
        self.assertFalse(mailbox.smtp_invoicing_imap_error)

        # read again, then after a UIDVALIDITY change (rescan): recorded once
        self.poll()
        self.stack.doveadm(
            "mailbox",
            "update",
            "-u",
            login,
            "--uid-validity",
            str(int(mailbox.smtp_invoicing_imap_uidvalidity) + 7),
            "INBOX",
        )
        self.poll()
        self.assertEqual(self.partner_a.message_bounce, 1)
        self.assertEqual(len(mailbox.smtp_invoicing_bounce_ids), 1)
        self.assertEqual(len(invoice.activity_ids.filtered(lambda act: "Email returned" in (act.summary or ""))), 1)
        # doveadm's UIDVALIDITY change itself ends \Recent (a session flag): the user's flags are unchanged
        self.assertEqual(self.user_flags(login), {uid: flags - {"\\Recent"} for uid, flags in before.items()})

        # corrected and sent again: delivered, no longer returned
        self.partner_a.email = "known@customer.test"
        self.send_and_print(invoice)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        self.assertTrue(invoice.is_move_sent)

    def test_other_report_formats_are_matched(self):
        """Gmail, Microsoft 365, Exim and qmail reports about Odoo's own invoice mails, appended with IMAP APPEND,
        each mark their invoice returned and count one bounce for their partner."""
        login = "formats@invoicing.test"
        self.stack_mailbox(login)
        cases = []
        for index, (name, (address, message_id)) in enumerate(sorted(FORMATS.items())):
            partner = self.env["res.partner"].create({"name": f"Customer {index}", "email": KNOWN[index + 1]})
            invoice = self.invoice(partner)
            self.send_and_print(invoice)
            self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
            sent_id = self.document_message(invoice).message_id
            raw = (
                fixture(name)
                .replace(message_id.encode(), sent_id.encode())
                .replace(address.encode(), partner.email.encode())
            )
            cases.append((name, invoice, partner, raw))
        self.append(login, [raw for _name, _invoice, _partner, raw in cases])
        self.poll()
        for name, invoice, partner, _raw in cases:
            self.assertEqual(invoice.smtp_invoicing_delivery_state, "returned", name)
            self.assertIn(partner.email, invoice.smtp_invoicing_mail_failure, name)
            self.assertEqual(self.notification(invoice, partner).notification_status, "bounce", name)
            self.assertEqual(partner.message_bounce, 1, name)

    def test_delay_report_is_a_warning_only(self):
        """Postfix's real "delayed" report (4.x.x): a warning on the invoice, still delivered, no bounce counted."""
        login = "delays@invoicing.test"
        self.stack_mailbox(login)
        self.partner_b.email = LATER
        invoice = self.invoice(self.partner_b)
        self.send_and_print(invoice)
        self.stack.wait_for_messages(login, 1)
        self.poll()
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        self.assertTrue(invoice.is_move_sent)
        self.assertIn("delayed", invoice.smtp_invoicing_mail_failure)
        self.assertIn(LATER, invoice.smtp_invoicing_mail_failure)
        self.assertEqual(self.notification(invoice, self.partner_b).notification_status, "sent")
        self.assertEqual(self.partner_b.message_bounce, 0)
        self.assertFalse(invoice.activity_ids)

    def test_reports_for_mails_odoo_never_sent_are_ignored_and_left_in_place(self):
        """With a folder for processed reports: Odoo's report is moved there, a report about a mail Odoo never sent
        stays in the INBOX untouched and changes nothing."""
        login = "foreign@invoicing.test"
        mailbox = self.stack_mailbox(login, smtp_invoicing_bounce_folder="Odoo/Bounces")
        self.partner_a.email = WRONG
        invoice = self.invoice(self.partner_a)
        self.send_and_print(invoice)
        self.stack.wait_for_messages(login, 1)
        foreign = fixture("exim_user_unknown.eml")
        self.append(login, [foreign])
        partners_before = self.env["res.partner"].search_read([("message_bounce", ">", 0)], ["id"])
        with mute_logger(BOUNCE_LOGGER):
            self.poll()
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "returned")
        self.assertEqual(mailbox.smtp_invoicing_bounce_ids.move_id, invoice)
        self.assertEqual(
            self.env["res.partner"].search_read([("message_bounce", ">", 0), ("id", "!=", self.partner_a.id)], ["id"]),
            partners_before,
        )
        inbox = self.stack.messages(login)
        self.assertEqual(len(inbox), 1)
        self.assertIn(b"gone@customer.example", self.stack.raw_message(login, inbox[0][0]))
        self.assertFalse(any("\\Seen" in flags for flags in self.stack.flags(login).values()))
        (filed,) = self.stack.flags(login, "Odoo/Bounces")
        raw = self.stack.raw_message(login, filed, "Odoo/Bounces")
        self.assertIn(self.document_message(invoice).message_id.encode(), raw)

    def test_sent_copy_lands_with_identical_bytes_and_seen(self):
        """Sent copy on: the exact bytes the SMTP server received are appended to the Sent folder, flagged \\Seen,
        by the scheduled action (the sending path does no IMAP)."""
        self.server = self.start_server()
        mailbox = self.stack_mailbox(
            MAILBOX_LOGIN, smtp=self.server, smtp_invoicing_sent_copy=True, smtp_invoicing_track_bounces=False
        )
        self.partner_a.email = "customer@client.test"
        invoice = self.invoice(self.partner_a)
        sessions, logs = self.counting_sessions()
        with sessions:
            self.send_and_print(invoice)
            self.assertEqual(logs, [], "no IMAP session while sending")
            self.assertEqual(mailbox.smtp_invoicing_sent_copy_count, 1)
            self.poll()
        (received,) = self.server.messages
        client = self.imap_session(MAILBOX_LOGIN)
        try:
            client.select_folder("Sent", readonly=True)
            (uid,) = client.search(["ALL"])
            stored = client.fetch([uid], ["BODY.PEEK[]", "FLAGS"])[uid]
        finally:
            imap.logout(client)
        self.assertEqual(stored[b"BODY[]"], received.content)
        self.assertIn(b"\\Seen", stored[b"FLAGS"])
        self.assertEqual(mailbox.smtp_invoicing_sent_copy_count, 0)
        self.assertEqual(self.stack.message_count(MAILBOX_LOGIN), 0, "the INBOX was not touched")

    def test_sent_copy_failure_is_retried_and_never_resends_the_mail(self):
        """The IMAP server unreachable: the mail stays sent, the copy waits with the reason shown, then lands once."""
        login = "copies@invoicing.test"
        self.server = self.start_server(users={login: LOGINS[login]})
        mailbox = self.stack_mailbox(
            login, smtp=self.server, smtp_invoicing_sent_copy=True, smtp_invoicing_track_bounces=False
        )
        self.partner_a.email = "customer@client.test"
        invoice = self.invoice(self.partner_a)
        self.send_and_print(invoice)
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_imap_port = %s WHERE id = %s",
            [closed_port(), mailbox.id],
        )
        self.env.invalidate_all()
        with mute_logger(POLL_LOGGER):
            self.poll()
        self.assertEqual(mailbox.smtp_invoicing_sent_copy_count, 1)
        self.assertIn("refused the connection", mailbox.smtp_invoicing_sent_copy_error)
        self.assertIn("refused the connection", mailbox.smtp_invoicing_imap_error)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        with real_smtp(), mute_logger(MAIL_LOGGER):
            self.env["mail.mail"].process_email_queue()
        self.assertEqual(len(self.server.messages), 1)

        mailbox.write({"smtp_invoicing_imap_port": self.stack.imaps_port})
        self.verify(mailbox)
        self.poll()
        self.assertEqual(mailbox.smtp_invoicing_sent_copy_count, 1, "retried at its time, not before")
        self.poll(minutes=6)
        self.assertEqual(mailbox.smtp_invoicing_sent_copy_count, 0)
        self.assertFalse(mailbox.smtp_invoicing_imap_error)
        self.assertEqual(self.stack.message_count(login, "Sent"), 1)
        self.assertEqual(len(self.server.messages), 1)

    def test_presets_fill_the_incoming_side(self):
        """Presets fill IMAP host and port; the Sent copy is on for OVH, off for Gmail, Microsoft 365 and Outlook.com,
        which file the mails sent through their SMTP in the Sent folder themselves (lib/presets.py)."""
        action = self.env.ref("smtp_invoicing.smtp_invoicing_mailbox_action")
        form = Form(
            self.env["smtp_invoicing.mailbox"].with_context(action.context and eval(action.context)),
            view="smtp_invoicing.smtp_invoicing_mailbox_view_form",
        )
        expected = {
            "gmail": ("imap.gmail.com", 993, False),
            "microsoft365": ("outlook.office365.com", 993, False),
            "outlook": ("outlook.office365.com", 993, False),
            "ovh": ("ssl0.ovh.net", 993, True),
        }
        for preset, values in expected.items():
            form.smtp_invoicing_preset = preset
            self.assertEqual(
                (form.smtp_invoicing_imap_host, form.smtp_invoicing_imap_port, form.smtp_invoicing_sent_copy), values
            )

    def test_verification_logs_in_to_imap_with_its_own_words(self):
        """Tracking on: SMTP accepts the login but IMAP refuses it, so the mailbox is Failed with the IMAP
        explanation; Gmail's "IMAP disabled" and an unknown IMAP host have their own words."""
        login = "checks@invoicing.test"
        mail_new_test_user(self.env, login=login, email=login, groups="base.group_user", company_id=self.company.id)
        smtp_server = self.start_server(users={login: "the-smtp-only-secret"})
        mailbox = self.create_mailbox(
            smtp_server,
            name="Checks",
            sender_email=login,
            smtp_user=login,
            smtp_pass="the-smtp-only-secret",
            smtp_invoicing_imap_host=self.stack.host,
            smtp_invoicing_imap_port=self.stack.imaps_port,
            smtp_invoicing_track_bounces=True,
        )
        self.verify(mailbox)
        self.assertEqual(mailbox.verification_state, "failed")
        self.assertIn("incoming mail server refused the user name or password", mailbox.verification_message)
        mailbox.smtp_invoicing_track_bounces = False
        self.verify(mailbox)
        self.assertEqual(mailbox.verification_state, "verified", "without tracking, IMAP is not needed")
        disabled = mailbox._smtp_invoicing_reason_message(imap.ImapCheckError("imap_disabled", "[ALERT] ..."))
        self.assertIn("IMAP is disabled for this account", disabled)
        self.assertIn("Enable IMAP", disabled)
        wrong_host = mailbox._smtp_invoicing_reason_message(imap.ImapCheckError("dns"))
        self.assertIn("does not exist", wrong_host)


BULK_LOGIN = "bulk@invoicing.test"
BULK = 10_000


class TestBounceScale(BounceCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # one MULTIAPPEND (RFC 3502) with LITERAL+: the 10,000 messages in a single command
        cls.stack.bulk_append(
            BULK_LOGIN,
            LOGINS[BULK_LOGIN],
            (
                b"From: Customer %d <buyer%d@customer.test>\r\nTo: %s\r\nSubject: Order %d\r\n"
                b"Message-ID: <order-%d@customer.test>\r\nDate: Thu, 01 Jan 2026 10:00:00 +0000\r\n\r\n"
                b"Please deliver order %d.\r\n" % (i, i, BULK_LOGIN.encode(), i, i, i)
                for i in range(BULK)
            ),
        )

    def test_big_inbox_is_scanned_headers_only_bounded_then_idle_in_one_command(self):
        """10,000 ordinary messages: no full download, at most the scan limit per run in batched header FETCHes;
        the next poll of the unchanged mailbox sends one command (EXAMINE) between login and logout."""
        mailbox = self.stack_mailbox(BULK_LOGIN)
        before = self.stack.flags(BULK_LOGIN)
        self.assertEqual(len(before), BULK)
        sessions, logs = self.counting_sessions()
        with sessions:
            self.poll()
            self.assertEqual(mailbox.smtp_invoicing_imap_last_uid, "5000")
            self.assertTrue(
                self.env["ir.cron.trigger"].search_count([("cron_id", "=", self.poll_cron.id)]),
                "the rest of the backlog is triggered at once",
            )
            self.poll()
            self.assertEqual(mailbox.smtp_invoicing_imap_last_uid, str(BULK))
            self.poll()
        first, second, idle = logs
        for log in (first, second):
            names = log.names()
            self.assertEqual(log.full_fetches(), [])
            self.assertEqual(names.count(b"UID FETCH"), 10, names)  # 5,000 headers in batches of 500
            self.assertEqual(names[0], b"EXAMINE")
            self.assertTrue(all(b"BODY.PEEK[HEADER.FIELDS" in line for line in log.commands() if b"FETCH" in line))
        self.assertEqual(idle.names(), [b"EXAMINE", b"LOGOUT"])
        self.assertEqual(self.stack.flags(BULK_LOGIN), before)
        self.assertFalse(mailbox.smtp_invoicing_bounce_ids)
