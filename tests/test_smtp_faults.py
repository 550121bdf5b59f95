"""Hostile and failing SMTP servers against smtp_invoicing/lib/smtp.py (pure, no Odoo)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from pure_lib import lib

from smtp_servers import Pki, SmtpServer, StripStarttlsProxy

smtp = lib("smtp")

USER, PASSWORD, SENDER = "billing@example.com", "Faulty-s3cret", "billing@example.com"


@pytest.fixture(scope="module")
def pki():
    with Pki() as value:
        yield value


def check(host, port, protocol, ca_pem, password=PASSWORD):
    try:
        smtp.verify(host, port, protocol, USER, password, SENDER, ca_pem=ca_pem, timeout=3, deadline=6)
    except smtp.SmtpCheckError as error:
        return error
    return None


def test_stripped_starttls_never_gets_credentials(pki):
    """A man in the middle deleting STARTTLS and advertising AUTH gets no_starttls and no credentials."""
    with (
        SmtpServer(mode="starttls", cert=pki.leaf(), users={USER: PASSWORD}) as upstream,
        StripStarttlsProxy(upstream) as proxy,
    ):
        error = check(proxy.host, proxy.port, "starttls", pki.ca_pem)
    assert error.reason == "no_starttls"
    assert b"AUTH" not in proxy.client_data.upper()
    assert PASSWORD.encode() not in proxy.client_data
    assert upstream.auth_attempts == []


def test_self_signed_certificate_accepted_only_when_added_as_ca(pki):
    """A self-signed certificate is refused, and accepted once that certificate is the setting's extra CA."""
    cert = pki.self_signed()
    with open(cert[0]) as handle:
        own_ca = handle.read()
    with SmtpServer(mode="starttls", cert=cert, users={USER: PASSWORD}) as srv:
        assert check(srv.host, srv.port, "starttls", pki.ca_pem).reason == "untrusted_certificate"
        assert srv.auth_attempts == []
        assert check(srv.host, srv.port, "starttls", own_ca) is None
    assert len(srv.auth_attempts) == 1


def test_expired_certificate_refused_even_with_its_ca(pki):
    """An expired certificate is refused although its CA was added, before any AUTH."""
    with SmtpServer(mode="ssl", cert=pki.expired(), users={USER: PASSWORD}) as srv:
        error = check(srv.host, srv.port, "ssl", pki.ca_pem)
    assert error.reason == "untrusted_certificate" and srv.auth_attempts == []


@pytest.mark.parametrize("command", ["STARTTLS", "AUTH", "MAIL"])
def test_connection_reset_is_a_network_failure(pki, command):
    """A connection reset during the TLS handshake, AUTH or MAIL FROM is a network failure, no retry."""
    with SmtpServer(mode="starttls", cert=pki.leaf(), users={USER: PASSWORD}, reset_on=command) as srv:
        error = check(srv.host, srv.port, "starttls", pki.ca_pem)
    assert error.reason == "network", error
    assert srv.connections == 1
    assert srv.commands.count("AUTH") == (0 if command == "STARTTLS" else 1)
    assert len(srv.auth_attempts) == (1 if command == "MAIL" else 0)


@pytest.mark.parametrize(
    "reply, reason",
    [
        ((421, "4.7.0 Try again later, closing connection"), "temporary"),
        ((451, "4.3.0 Temporary server failure"), "temporary"),
        ((550, "5.1.0 Sender rejected"), "sender_refused"),
        ((554, "5.7.1 Transaction failed: policy"), "sender_refused"),
    ],
)
def test_temporary_and_permanent_mail_from_replies(pki, reply, reason):
    """4xx answers to MAIL FROM are temporary, 5xx ones a refused sender; nothing is sent."""
    with SmtpServer(mode="starttls", cert=pki.leaf(), users={USER: PASSWORD}, mail_from_reply=reply) as srv:
        error = check(srv.host, srv.port, "starttls", pki.ca_pem)
    assert (error.reason, error.smtp_code) == (reason, reply[0])
    assert srv.messages == [] and len(srv.auth_attempts) == 1


def test_a_server_that_keeps_challenging_gets_the_password_once(pki):
    """AUTH PLAIN answered with challenge after challenge: the password crosses once, then empty answers."""
    options = {"mode": "starttls", "cert": pki.leaf(), "users": {USER: PASSWORD}, "rechallenge_auth": True}
    with SmtpServer(**options) as srv:
        error = check(srv.host, srv.port, "starttls", pki.ca_pem)
    assert error.reason == "protocol_error" and PASSWORD not in str(error)
    assert len(srv.auth_answers) > 1
    assert [PASSWORD.encode() in answer for answer in srv.auth_answers] == [True] + [False] * (
        len(srv.auth_answers) - 1
    )
    assert srv.commands.count("AUTH") == 1 and srv.messages == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_one_authentication_attempt_per_mechanism(pki, mechanism):
    """Whatever the mechanism, a refused password costs exactly one attempt; a right one succeeds."""
    options = {"mode": "starttls", "cert": pki.leaf(), "users": {USER: PASSWORD}, "auth_mechanisms": (mechanism,)}
    with SmtpServer(**options) as srv:
        error = check(srv.host, srv.port, "starttls", pki.ca_pem, password="wrong-password")
    assert error.reason == "auth_failed"
    assert [attempt[0] for attempt in srv.auth_attempts] == [mechanism]
    assert srv.commands.count("AUTH") == 1 and srv.connections == 1
    with SmtpServer(**options) as srv:
        assert check(srv.host, srv.port, "starttls", pki.ca_pem) is None
    assert [attempt[0] for attempt in srv.auth_attempts] == [mechanism]
