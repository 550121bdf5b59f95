"""The real Postfix + Dovecot harness of tests/mail_stack.py (pure, no Odoo)."""

import email
import email.policy
import imaplib
import os
import smtplib
import socket
import sys
import time
from email.message import EmailMessage

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from mail_stack import MailStack, pid_alive, port_is_open
from smtp_servers import Pki

A, A_PASSWORD = "a@invoicing.test", "a-password-1"
B, B_PASSWORD = "b@invoicing.test", "b-password-2"
KNOWN = "known@customer.test"
WRONG = "wrong@customer.test"
LATER = "later@customer.test"
REMOTE_SOURCE = "127.0.0.2"  # still loopback


@pytest.fixture(scope="module")
def pki():
    with Pki() as value:
        yield value


@pytest.fixture(scope="module")
def stack(pki):
    with MailStack(pki, {A: A_PASSWORD, B: B_PASSWORD}, customers=[KNOWN], tempfail_customers=[LATER]) as value:
        yield value


def submission(stack, login=A, password=A_PASSWORD):
    connection = smtplib.SMTP(stack.host, stack.submission_port, local_hostname="client.test", timeout=10)
    connection.starttls(context=stack.client_context())
    connection.ehlo("client.test")
    connection.login(login, password)
    return connection


def invoice(to, message_id, sender=A):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, "Invoice INV/2026/00001"
    message["Message-ID"] = message_id
    message.set_content("Please find your invoice attached.\n")
    return message


def imap_session(stack, login, password):
    session = imaplib.IMAP4_SSL(stack.host, stack.imaps_port, ssl_context=stack.client_context(), timeout=10)
    session.login(login, password)
    return session


def test_sender_not_owned_by_login_is_refused_at_rcpt(stack):
    """Logged in as a@ over verified TLS, MAIL FROM b@ passes but RCPT gets 553; a@'s own address is accepted."""
    connection = submission(stack)
    try:
        assert connection.mail(B)[0] == 250  # smtpd_delay_reject: the refusal waits for RCPT
        code, text = connection.rcpt(KNOWN)
        assert code == 553 and b"not owned by user a@invoicing.test" in text
        connection.rset()
        assert connection.mail(A)[0] == 250
        assert connection.rcpt(KNOWN)[0] == 250
        connection.rset()
    finally:
        connection.quit()


def test_auth_is_offered_only_after_starttls(stack):
    """The submission port advertises STARTTLS but no AUTH in clear text, and refuses AUTH before TLS."""
    connection = smtplib.SMTP(stack.host, stack.submission_port, local_hostname="client.test", timeout=10)
    try:
        connection.ehlo("client.test")
        assert connection.has_extn("starttls")
        assert not connection.has_extn("auth")
        code, _text = connection.docmd("AUTH", "PLAIN AGFAYS1wYXNzd29yZC0x")
        assert code >= 500
        assert connection.mail(A)[0] == 530  # smtpd_tls_security_level=encrypt
    finally:
        connection.close()
    connection = submission(stack)
    try:
        assert "PLAIN" in connection.esmtp_features["auth"].upper()
    finally:
        connection.quit()


def test_implicit_tls_submission_port_sends(stack):
    """The 465-style port speaks TLS at once (verified), authenticates and hands a mail to the customer MX."""
    before = len(stack.customer_mx.messages)
    connection = smtplib.SMTP_SSL(
        stack.host, stack.smtps_port, local_hostname="client.test", context=stack.client_context(), timeout=10
    )
    try:
        connection.login(B, B_PASSWORD)
        connection.send_message(invoice(KNOWN, "<smtps-1@invoicing.test>", sender=B), B, [KNOWN])
    finally:
        connection.quit()
    received = stack.customer_mx.wait_for_messages(before + 1)
    assert b"<smtps-1@invoicing.test>" in received[-1][2]


class _RemoteIMAP4(imaplib.IMAP4):
    """Connects from 127.0.0.2: Dovecot counts a client whose address equals its own as secure."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(REMOTE_SOURCE, 0))


def test_imap_starttls_port_refuses_login_before_tls(stack):
    """IMAP on the STARTTLS port advertises LOGINDISABLED and refuses LOGIN until STARTTLS, then logs in."""
    session = _RemoteIMAP4(stack.host, stack.imap_port, timeout=10)
    try:
        assert "LOGINDISABLED" in session.capabilities
        with pytest.raises(imaplib.IMAP4.error):
            session.login(A, A_PASSWORD)
        session.starttls(ssl_context=stack.client_context())
        session.login(A, A_PASSWORD)
        assert session.select("INBOX")[0] == "OK"
    finally:
        session.logout()


def test_wrong_customer_address_comes_back_as_a_real_dsn(stack):
    """A mail to an unknown customer address comes back as Postfix's RFC 3464 DSN in the INBOX, read over TLS IMAP."""
    before = stack.message_count(B)
    connection = submission(stack, B, B_PASSWORD)
    try:
        connection.send_message(invoice(WRONG, "<wrong-1@invoicing.test>", sender=B), B, [WRONG])
    finally:
        connection.quit()
    stack.wait_for_messages(B, before + 1)
    session = imap_session(stack, B, B_PASSWORD)
    try:
        session.select("INBOX", readonly=True)
        _status, data = session.uid("SEARCH", None, "ALL")
        last = data[0].split()[-1]
        _status, data = session.uid("FETCH", last, "(BODY.PEEK[])")
    finally:
        session.logout()
    report = email.message_from_bytes(data[0][1], policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["From"].addresses[0].username == "MAILER-DAEMON"
    status = next(part for part in report.walk() if part.get_content_type() == "message/delivery-status")
    text = status.as_string()
    assert "Final-Recipient: rfc822; %s" % WRONG in text and "Status: 5.1.1" in text
    assert "<wrong-1@invoicing.test>" in report.as_string()


def test_stack_leaves_no_process_listener_or_folder(pki):
    """After the with-block (even one left by an exception), no process, listener or temporary folder remains."""
    stack = MailStack(pki, {A: A_PASSWORD})
    with pytest.raises(RuntimeError, match="boom"), stack:
        pids = stack.processes()
        ports = [stack.submission_port, stack.smtps_port, stack.imap_port, stack.imaps_port, stack.customer_mx.port]
        directory = stack.directory
        assert len(pids) >= 4 and all(port_is_open(port) for port in ports)
        raise RuntimeError("boom")
    assert not [pid for pid in pids if pid_alive(pid)]
    assert not [port for port in ports if port_is_open(port)]
    assert not os.path.exists(directory)


def test_delay_warning_and_fast_retries(stack):
    """A 4xx from the customer MX makes Postfix retry within seconds and send a "delayed" DSN (4.x.x)."""
    before = stack.message_count(A)
    started = time.monotonic()
    connection = submission(stack)
    try:
        connection.send_message(invoice(LATER, "<later-1@invoicing.test>"), A, [LATER])
    finally:
        connection.quit()
    stack.wait_for_messages(A, before + 1)
    assert time.monotonic() - started < 15
    uid = max(stack.flags(A))
    report = email.message_from_bytes(stack.raw_message(A, uid), policy=email.policy.default)
    assert report["Subject"] == "Delayed Mail (still being retried)"
    assert "Action: delayed" in report.as_string() and "Status: 4.2.0" in report.as_string()
