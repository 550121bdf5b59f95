"""smtp_invoicing/lib/bounces.py on fixtures and smtp_invoicing/lib/imap.py against the real Dovecot of
tests/mail_stack.py (pure, no Odoo)."""

import email
import email.policy
import glob
import os
import re
import smtplib
import socket
import ssl
import sys
import threading
import time
from email.message import EmailMessage

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from pure_lib import lib

from mail_stack import MailStack
from smtp_servers import HOST, SilentListener, closed_port, server_context

bounces = lib("bounces")
imap = lib("imap")

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "bounces")
BILLING, PASSWORD = "billing@invoicing.test", "billing-imap-secret"
RESET_USER, RESET_PASSWORD = "reset@invoicing.test", "reset-imap-secret"
# fixture -> (failed address, status, reason key, original Message-ID)
REPORTS = {
    "postfix_user_unknown.eml": (
        "wrong@customer.test",
        "5.1.1",
        "address_does_not_exist",
        "<inv-2026-00001.1765000000@invoicing.test>",
    ),
    "postfix_delayed.eml": ("later@customer.test", "4.2.0", "delayed", "<inv-2026-00002.1765000001@invoicing.test>"),
    "gmail_address_not_found.eml": (
        "nobody@customer.example",
        "5.1.1",
        "address_does_not_exist",
        "<inv-2026-00003.1765000002@invoicing.test>",
    ),
    "microsoft365_recipient_not_found.eml": (
        "ap@customer.example",
        "5.1.10",
        "address_does_not_exist",
        "<inv-2026-00004.1765000003@invoicing.test>",
    ),
    "exim_user_unknown.eml": (
        "gone@customer.example",
        "5.1.1",
        "address_does_not_exist",
        "<inv-2026-00005.1765000004@invoicing.test>",
    ),
    "qmail_no_mailbox.eml": (
        "accounts@customer.example",
        "5.1.1",
        "address_does_not_exist",
        "<inv-2026-00006.1765000005@invoicing.test>",
    ),
}
ORDINARY = sorted(os.path.basename(path) for path in glob.glob(os.path.join(FIXTURES, "not_report_*.eml")))


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        return handle.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def header_fields(raw):
    """The header fields the poll asks the server for (HEADER_FIELDS), as the server returns them."""
    message = email.message_from_bytes(raw.split(b"\r\n\r\n", 1)[0], policy=email.policy.compat32)
    kept = "".join("%s: %s\n" % (k, v) for k, v in message.items() if k.upper() in imap.HEADER_FIELDS)
    return email.message_from_string(kept, policy=email.policy.compat32)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_report_fixture_parses(name):
    """Each MTA's report yields its failed recipient, status, plain-words reason and original Message-ID."""
    address, status, reason, message_id = REPORTS[name]
    report = bounces.parse_report(fixture(name))
    assert [(r.address, r.status, r.reason) for r in report.recipients] == [(address, status, reason)]
    assert report.original_message_id == message_id
    assert report.recipients[0].permanent is status.startswith("5")
    assert report.recipients[0].diagnostic
    assert imap.is_delivery_report(header_fields(fixture(name)))


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_mail_is_not_a_report(name):
    """Replies, out-of-office answers, read receipts and newsletters about bounces are not delivery reports."""
    raw = fixture(name)
    assert not imap.is_delivery_report(header_fields(raw))
    assert bounces.parse_report(raw) is None


def test_reason_table():
    """Status codes map to plain-words keys; 4.x.x is always "delayed"; an unknown 5.0.0 reads the text."""
    assert bounces.reason_for("5.1.1") == "address_does_not_exist"
    assert bounces.reason_for("5.1.10") == "address_does_not_exist"
    assert bounces.reason_for("5.2.2") == "mailbox_full"
    assert bounces.reason_for("5.4.4") == "domain_not_found"
    assert bounces.reason_for("5.7.26") == "rejected_as_spam"
    assert bounces.reason_for("4.2.2") == "delayed"
    assert bounces.reason_for("5.0.0", "552 mailbox full") == "mailbox_full"
    assert bounces.reason_for("5.0.0", "something else") == "other"
    assert {key for _code, key in bounces.REASONS} <= set(bounces.REASON_KEYS)


def test_microsoft_ndr_marks_are_reports():
    """Exchange's NDR sender and X-MS-Exchange-Message-Is-Ndr mark a report even without multipart/report."""
    for header in (
        "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.example>\n",
        "From: Outlook <no-reply@contoso.example>\nX-MS-Exchange-Message-Is-Ndr: \n",
        "From: postmaster@contoso.example\n",
    ):
        assert imap.is_delivery_report(email.message_from_string(header, policy=email.policy.compat32))


# --------------------------------------------------------------------------- IMAP against Dovecot


class CommandLog:
    """Counts the IMAP commands a client sends (one tag each) and keeps their text."""

    def __init__(self, client):
        self.tags, self.sent = 0, b""
        transport = client._imap
        new_tag, send = transport._new_tag, transport.send

        def counting_new_tag():
            self.tags += 1
            return new_tag()

        def recording_send(data):
            self.sent += data
            return send(data)

        transport._new_tag, transport.send = counting_new_tag, recording_send

    def lines(self):
        return [line for line in self.sent.split(b"\r\n") if re.match(rb"^[A-Z]+\d+ ", line)]

    def full_fetches(self):
        """The UID sets of every command that downloaded whole messages."""
        return [line.split()[3] for line in self.lines() if b"BODY.PEEK[]" in line or b"BODY[]" in line]

    def reset(self):
        self.tags, self.sent = 0, b""


@pytest.fixture(scope="module")
def pki():
    from smtp_servers import Pki

    with Pki() as value:
        yield value


@pytest.fixture(scope="module")
def stack(pki):
    users = {BILLING: PASSWORD, RESET_USER: RESET_PASSWORD}
    with MailStack(pki, users, customers=["known@customer.test"]) as value:
        yield value


def session(stack, login=BILLING, password=PASSWORD):
    return imap.open_session(stack.host, stack.imaps_port, login, password, ca_pem=stack.ca_pem, timeout=10)


def send_to_wrong_address(stack):
    """A real invoice mail to an unknown customer address: Postfix writes the DSN into BILLING's INBOX."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = BILLING, "wrong@customer.test", "Invoice INV/2026/00009"
    message["Message-ID"] = "<inv-2026-00009@invoicing.test>"
    message.set_content("Please find your invoice attached.\n")
    with smtplib.SMTP(stack.host, stack.submission_port, timeout=10) as connection:
        connection.starttls(context=stack.client_context())
        connection.login(BILLING, PASSWORD)
        connection.send_message(message, BILLING, ["wrong@customer.test"])


def test_poll_downloads_only_reports_and_sets_no_flag(stack):
    """A poll downloads only the reports (counted on the wire), finds each of them and changes no flag."""
    client = session(stack)
    try:
        expected = set()
        for name in sorted(REPORTS) + ORDINARY:
            client.append("INBOX", fixture(name))
            if name in REPORTS:
                expected.add(REPORTS[name][3])
        client.append("INBOX", fixture(ORDINARY[0]), flags=(b"\\Flagged",))
        send_to_wrong_address(stack)
        total = len(REPORTS) + len(ORDINARY) + 2
        stack.wait_for_messages(BILLING, total)
        expected.add("<inv-2026-00009@invoicing.test>")
        before = stack.flags(BILLING)
        log = CommandLog(client)
        result = imap.poll(client)
    finally:
        imap.logout(client)
    assert stack.flags(BILLING) == before and not any("\\Seen" in flags for flags in before.values())
    assert result.scanned == total and result.last_uid == max(before) and not result.reset
    found = {bounces.parse_report(raw).original_message_id for _uid, raw in result.reports}
    assert found == expected
    report_uids = sorted(uid for uid, _raw in result.reports)
    assert log.full_fetches() == [b",".join(str(uid).encode() for uid in report_uids)]
    assert all(b"BODY.PEEK[" in line for line in log.lines() if b"FETCH" in line)


def test_idle_poll_is_one_round_trip(stack):
    """Polling an unchanged mailbox again sends a single command (EXAMINE): no SEARCH, no FETCH."""
    client = session(stack)
    try:
        first = imap.poll(client)
        log = CommandLog(client)
        started = time.perf_counter()
        second = imap.poll(client, first.uidvalidity, first.last_uid)
        elapsed = time.perf_counter() - started
        commands, lines = log.tags, log.lines()
    finally:
        imap.logout(client)
    assert commands == 1 and lines[0].split()[1] == b"EXAMINE", lines
    assert second.reports == [] and second.scanned == 0 and second.last_uid == first.last_uid
    assert elapsed < 1.0


def test_new_messages_only_and_uidvalidity_reset_rescans_once(stack):
    """Only UIDs above last_uid are read; after a UIDVALIDITY change the mailbox is rescanned once, then not again."""
    client = session(stack, RESET_USER, RESET_PASSWORD)
    try:
        client.append("INBOX", fixture("gmail_address_not_found.eml"))
        first = imap.poll(client)
        assert [uid for uid, _raw in first.reports] == [1]
        client.append("INBOX", fixture("exim_user_unknown.eml"))
        client.append("INBOX", fixture("not_report_customer_reply.eml"))
        second = imap.poll(client, first.uidvalidity, first.last_uid)
        assert second.scanned == 2 and [uid for uid, _raw in second.reports] == [2]
        new_validity = second.uidvalidity + 1000
        stack.doveadm("mailbox", "update", "-u", RESET_USER, "--uid-validity", str(new_validity), "INBOX")
        rescan = imap.poll(client, second.uidvalidity, second.last_uid)
        assert rescan.reset and rescan.uidvalidity == new_validity and rescan.scanned == 3
        assert len(rescan.reports) == 2
        log = CommandLog(client)
        after = imap.poll(client, rescan.uidvalidity, rescan.last_uid)
        assert not after.reset and after.scanned == 0 and log.tags == 1, log.lines()
    finally:
        imap.logout(client)


def test_append_lands_in_sent_with_seen_and_identical_bytes(stack):
    """append_sent files the exact bytes in the \\Sent special-use folder, flagged \\Seen."""
    sent = (
        b"From: Billing <billing@invoicing.test>\r\nTo: ap@customer.example\r\n"
        b"Subject: Invoice INV/2026/00010\r\nMessage-ID: <inv-2026-00010@invoicing.test>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Grüße, trailing spaces kept:   \r\n\r\n".encode()
    )
    client = session(stack)
    try:
        assert imap.append_sent(client, sent) == "Sent"
        client.select_folder("Sent", readonly=True)
        uid = max(client.search(["ALL"]))
        stored = client.fetch([uid], ["BODY.PEEK[]", "FLAGS"])[uid]
    finally:
        imap.logout(client)
    assert stored[b"BODY[]"] == sent
    assert b"\\Seen" in stored[b"FLAGS"]
    assert "\\Seen" in stack.flags(BILLING, "Sent")[uid]


# --------------------------------------------------------------------------- errors


def test_wrong_password_is_one_login_and_auth_failed(stack):
    """A wrong password gives auth_failed after exactly one LOGIN command, over TLS."""
    with pytest.raises(imap.ImapCheckError) as caught:
        imap.open_session(stack.host, stack.imaps_port, BILLING, "not-the-password", ca_pem=stack.ca_pem)
    assert caught.value.reason == "auth_failed"
    assert "not-the-password" not in str(caught.value)


def test_connection_failures_are_classified(stack):
    """Untrusted CA, plain-text port, closed port and a silent server get their own reasons."""
    cases = [
        ({"port": stack.imaps_port, "ca_pem": None}, "untrusted_certificate"),
        ({"port": stack.imap_port, "ca_pem": stack.ca_pem}, "wrong_protocol"),
        ({"port": closed_port(), "ca_pem": stack.ca_pem}, "refused"),
    ]
    for options, reason in cases:
        with pytest.raises(imap.ImapCheckError) as caught:
            imap.open_session(stack.host, user=BILLING, password=PASSWORD, timeout=5, **options)
        assert caught.value.reason == reason, caught.value
    with SilentListener() as silent, pytest.raises(imap.ImapCheckError) as caught:
        imap.open_session(silent.host, silent.port, BILLING, PASSWORD, ca_pem=stack.ca_pem, timeout=1)
    assert caught.value.reason == "timeout"


class _GmailImapDisabled:
    """A TLS IMAP server answering every LOGIN like Gmail with IMAP switched off; counts LOGINs."""

    ALERT = (
        b"NO [ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings page "
        b"and enable your account for IMAP access. (Failure)"
    )

    def __init__(self, cert):
        import socket

        self.logins = 0
        self._context = server_context(cert)
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        try:
            conn, _addr = self._listener.accept()
            with self._context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Gimap ready\r\n")
                reader = tls.makefile("rb")
                for line in reader:
                    tag, command = line.split()[:2]
                    if command.upper() == b"LOGIN":
                        self.logins += 1
                        tls.sendall(tag + b" " + self.ALERT + b"\r\n")
                    elif command.upper() == b"CAPABILITY":
                        tls.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
                    else:
                        tls.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                        return
        except (OSError, ssl.SSLError, ValueError):
            return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._listener.close()
        self._thread.join(5)


def test_dns_not_answering_is_told_apart_from_a_wrong_imap_host():
    """IMAP shares SMTP's DNS classification: resolver down or a provider's host not found is dns_unavailable."""
    not_found = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert imap.classify_error(not_found).reason == "dns"
    assert imap._classify(not_found, host="imap.gmial.com").reason == "dns"
    assert imap._classify(not_found, host="imap.gmail.com").reason == "dns_unavailable"
    assert imap._classify(socket.gaierror(socket.EAI_AGAIN, "try again"), host="mail.acme.fr").reason == (
        "dns_unavailable"
    )


def test_gmail_imap_disabled_has_its_own_reason(pki):
    """Gmail's "[ALERT] ... not enabled for IMAP use" answer is imap_disabled, after one LOGIN only."""
    with _GmailImapDisabled(pki.leaf()) as server, pytest.raises(imap.ImapCheckError) as caught:
        imap.open_session(HOST, server.port, BILLING, PASSWORD, ca_pem=pki.ca_pem, timeout=5)
    assert caught.value.reason == "imap_disabled", caught.value
    assert server.logins == 1


def test_certificate_for_another_host_is_hostname_mismatch(pki):
    """A trusted certificate issued for another host name is hostname_mismatch, and no LOGIN is sent."""
    with _GmailImapDisabled(pki.wrong_host()) as server, pytest.raises(imap.ImapCheckError) as caught:
        imap.open_session(HOST, server.port, BILLING, PASSWORD, ca_pem=pki.ca_pem, timeout=5)
    assert caught.value.reason == "hostname_mismatch", caught.value
    assert server.logins == 0
