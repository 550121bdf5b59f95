"""Verified TLS, and the failures that SMTP and IMAP connections to a mailbox share.

Pure Python (no Odoo). One TLS client context for both protocols (certificate chain and
host name verified, TLS 1.2 at least), the scrubbing of secrets from what a server or a
library says, and the reasons of failures that happen before either protocol speaks:
DNS, a refused or silent port, a certificate, a TLS handshake. ``lib/smtp.py`` and
``lib/imap.py`` classify their own protocol's errors and ask :func:`connection_reason`
for the rest.
"""

import functools
import socket
import ssl
import threading
import time

from .presets import PRESETS

# Reasons of failures that SMTP and IMAP share: those of connection_reason(), a connection
# broken later (network) and a server that answers what its protocol does not (protocol_error).
CONNECTION_REASONS = (
    "dns",
    "dns_unavailable",
    "refused",
    "timeout",
    "wrong_protocol",
    "untrusted_certificate",
    "hostname_mismatch",
    "network",
    "protocol_error",
)
# OpenSSL X509_V_ERR_HOSTNAME_MISMATCH / X509_V_ERR_IP_ADDRESS_MISMATCH
MISMATCH_CODES = (62, 64)
# Loading the system CA store costs ~0.1 s of CPU: contexts are shared between
# connections (an SSLContext is safe to use from several threads) and rebuilt hourly
# so that an updated CA store is picked up.
_CONTEXT_LIFETIME = 3600
# Host names of the provider presets (sending and incoming): they exist, so a resolver that
# says otherwise is not working here (offline machine, filtering DNS), not a typo.
KNOWN_HOSTS = frozenset(host for preset in PRESETS.values() for host in (preset["host"], preset["imap_host"]))
# getaddrinfo() codes of a resolver that could not answer now (EAI_AGAIN: no DNS reachable
# or a timeout; EAI_FAIL: a server failure, SERVFAIL); EAI_NONAME/EAI_NODATA say the name
# has no address.
_DNS_UNAVAILABLE_CODES = frozenset({socket.EAI_AGAIN, socket.EAI_FAIL})


def make_ssl_context(ca_pem=None):
    """Verifying TLS >= 1.2 client context: system CAs plus the optional extra CA PEM text."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if ca_pem:
        try:
            context.load_verify_locations(cadata=ca_pem)
        except ssl.SSLError as exc:
            raise ValueError("invalid CA certificate PEM: %s" % exc) from exc
    return context


@functools.lru_cache(maxsize=32)
def _cached_ssl_context(ca_pem, period):
    return make_ssl_context(ca_pem)


# Loading the system's trusted certificates takes about 20 ms and lets other threads run: a
# verification run starting hundreds of checks at once would build a context in each of them
# (seconds of CPU time on a small server) before the first one is cached.
_CONTEXT_LOCK = threading.Lock()


def shared_ssl_context(ca_pem):
    """The :func:`make_ssl_context` of ``ca_pem``, shared by every connection for up to an hour:
    built once, whatever the number of threads asking for it at the same time."""
    with _CONTEXT_LOCK:
        return _cached_ssl_context(ca_pem or None, int(time.monotonic() // _CONTEXT_LIFETIME))


def scrub(text, secrets):
    """``text`` with every non-empty string of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def dns_reason(error, host):
    """``dns_unavailable`` or ``dns``: the reason of ``error``, a ``socket.gaierror`` resolving ``host``.

    Only a resolver's temporary failure, or a known provider host it cannot find, is
    ``dns_unavailable`` (Odoo tries again by itself); any other name is reported as one
    that does not exist, for a person to correct.
    """
    if error.errno in _DNS_UNAVAILABLE_CODES:
        return "dns_unavailable"
    if (host or "").strip().lower().rstrip(".") in KNOWN_HOSTS:
        return "dns_unavailable"
    return "dns"


def connection_reason(exc, detail, host=None):
    """``(reason, detail)`` of a failure common to SMTP and IMAP, or None for the protocol to classify.

    ``detail`` is the caller's scrubbed text of ``exc``; a certificate failure gives
    OpenSSL's verification message instead. A TLS error other than a certificate's is
    ``wrong_protocol``: typically a port that speaks in clear text.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = str(exc.verify_message or exc)
        if exc.verify_code in MISMATCH_CODES or "mismatch" in message.lower():
            return "hostname_mismatch", message
        return "untrusted_certificate", message
    if isinstance(exc, ssl.SSLError):
        return "wrong_protocol", detail
    if isinstance(exc, socket.gaierror):
        return dns_reason(exc, host), detail
    if isinstance(exc, ConnectionRefusedError):
        return "refused", detail
    if isinstance(exc, TimeoutError):  # socket.timeout is an alias since Python 3.10
        return "timeout", detail
    return None
