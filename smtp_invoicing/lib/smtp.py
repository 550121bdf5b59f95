"""Secure connection to a user's own SMTP mailbox, and a side-effect-free check of it.

Pure Python (no Odoo). Every failure is reported as :class:`SmtpCheckError` with a
machine-readable ``reason`` so that the caller can show an actionable message.
"""

import base64
import binascii
import contextlib
import copy
import email.generator
import heapq
import io
import itertools
import json
import logging
import re
import selectors
import smtplib
import socket
import ssl
import threading
import time
import uuid
from concurrent import futures

from . import oauth
from .tls import CONNECTION_REASONS, connection_reason, scrub, shared_ssl_context

_logger = logging.getLogger(__name__)

REASONS = (
    *CONNECTION_REASONS,
    "expects_ssl",
    "expects_starttls",
    "no_starttls",
    "no_auth",
    "auth_failed",
    "app_password_required",
    "basic_auth_disabled",
    "sender_refused",
    "send_as_denied",
    "token_invalid",
    "token_expired",
    "token_revoked",
    "token_scope",
    "consent_required",
    "account_disabled",
    "oauth_client",
    "oauth_unavailable",
    "oauth_refused",
    "temporary",
)
# Failures that a later attempt may cure without anybody changing a setting: a
# re-check keeps the mailbox usable and a mail is retried. Every other reason
# needs a person (password, certificate, sender, protocol).
TEMPORARY_REASONS = frozenset({"dns_unavailable", "refused", "timeout", "temporary", "network", "oauth_unavailable"})
PROTOCOLS = ("starttls", "ssl")
# Preference order for password mechanisms; all of them only ever run inside TLS.
_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")
# A STARTTLS connection with no greeting after this many seconds (at most half the socket
# timeout) has its port probed for implicit TLS; SMTP servers greet at once (RFC 5321
# §3.1), the greeting is still awaited for the rest of the timeout.
PROBE_SECONDS = 2.5


class SmtpCheckError(Exception):
    """A classified SMTP failure; ``detail`` is the server's text, never a secret."""

    def __init__(self, reason, smtp_code=None, detail=""):
        if reason not in REASONS:
            raise ValueError("unknown SMTP check reason %r" % (reason,))
        self.reason, self.smtp_code, self.detail = reason, smtp_code, detail or ""
        message = reason if smtp_code is None else "%s (%s)" % (reason, smtp_code)
        super().__init__("%s: %s" % (message, self.detail) if self.detail else message)


class _DeadlineWatcher:
    """One daemon thread that expires every pending :class:`_Deadline` at its time.

    A timer thread per check doubled the threads of a verification run, each with its
    own stack; here a heap ordered by expiry time is watched by a single thread.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._heap = []
        self._order = itertools.count()
        self._thread = None

    def add(self, seconds, deadline):
        with self._condition:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), deadline))
            # not alive after a fork: the child gets a thread of its own
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="smtp_invoicing_deadlines", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self):
        while True:
            with self._condition:
                while not self._heap:
                    self._condition.wait()
                when, _order, deadline = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                heapq.heappop(self._heap)
            deadline._expire()


_WATCHER = _DeadlineWatcher()


class _Deadline:
    """Overall time limit: shuts the TCP connection down when it expires.

    Per-operation socket timeouts do not bound a server that drips one byte at a time,
    so the watcher thread shuts down a duplicate of the socket's descriptor; the duplicate
    stays valid across the TLS wrapping and STARTTLS, which replace the Python socket object.
    """

    def __init__(self, seconds):
        self.expired = False
        self._lock = threading.Lock()
        self._socket = None
        self._done = False
        _WATCHER.add(seconds, self)

    def attach(self, sock):
        with self._lock:
            if self.expired:
                raise TimeoutError("deadline expired")
            self._socket = sock.dup()

    def _expire(self):
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._socket is not None:
                with contextlib.suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RDWR)

    def cancel(self):
        """Release the duplicate descriptor; a later expiry does nothing (idempotent)."""
        with self._lock:
            self._done = True
            if self._socket is not None:
                self._socket.close()
                self._socket = None


def _speaks_smtp_over_tls(host, port, seconds):
    """True when ``host:port`` greets with "220" inside TLS, on a connection of its own, within ``seconds``.

    Only tells whether the port speaks SMTP over implicit TLS: the certificate is not
    checked and nothing but the handshake and QUIT is sent (no credentials, no mail); the
    server's goodbye is awaited so that it ends the session itself. Any failure is False.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    guard = _Deadline(seconds * 2)  # a server dripping its handshake is cut too
    try:
        with socket.create_connection((host, port), seconds) as raw:
            guard.attach(raw)
            with context.wrap_socket(raw, server_hostname=host) as tls:
                if not _read_line(tls).startswith(b"220"):
                    return False
                tls.sendall(b"QUIT\r\n")
                with contextlib.suppress(OSError):
                    for _reply in range(4):  # the 221, then the end of the session
                        if not tls.recv(512):
                            break
                return True
    except (OSError, ValueError):
        return False
    finally:
        guard.cancel()


def _read_line(sock):
    """The first line (or first bytes) ``sock`` sends, or what came before it closed."""
    received = b""
    while b"\n" not in received and len(received) < 512:
        chunk = sock.recv(512)
        if not chunk:
            break
        received += chunk
    return received


def _greets_in_plain(host, port, seconds):
    """True when ``host:port`` sends an SMTP greeting ("220") in clear text within ``seconds``.

    A new connection, read only: nothing is sent.
    """
    guard = _Deadline(seconds)
    try:
        with socket.create_connection((host, port), seconds) as raw:
            guard.attach(raw)
            return _read_line(raw).startswith(b"220")
    except OSError:
        return False
    finally:
        guard.cancel()


class _GuardedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose TCP socket is registered with a :class:`_Deadline`.

    With ``_probe_implicit_tls`` (STARTTLS connections), a port that stays silent for
    ``PROBE_SECONDS`` is probed for implicit TLS before the greeting is awaited further.
    """

    _deadline = None
    _probe_implicit_tls = False

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout, self.source_address)
        try:
            self._deadline.attach(sock)
            if self._probe_implicit_tls:
                self._check_not_implicit_tls(sock, host, port, timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    def connect(self, host="localhost", port=0, source_address=None):
        """The greeting was awaited for what the probe left of the timeout: the session's commands
        get the whole timeout again."""
        reply = super().connect(host, port, source_address)
        if self.sock is not None and self.timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
            self.sock.settimeout(self.timeout)
        return reply

    @staticmethod
    def _check_not_implicit_tls(sock, host, port, timeout):
        """Raise ``expects_ssl`` when the port waits for a TLS ClientHello instead of greeting.

        An implicit-TLS port (465) says nothing until the client starts TLS, so a STARTTLS
        client would wait the whole timeout and blame the network. After a short silence
        a second connection tries a TLS handshake: only an SMTP greeting inside TLS gives
        the protocol hint; a server merely slow to greet fails the handshake (it speaks
        SMTP in clear, not TLS) and is awaited on the first connection as before.
        """
        started = time.monotonic()
        window = min(PROBE_SECONDS, (timeout or PROBE_SECONDS * 2) / 2)
        # selectors, not select.select(): a worker's descriptors may pass FD_SETSIZE
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            greeted = bool(selector.select(window))
        if greeted:
            return
        if _speaks_smtp_over_tls(host, port, window):
            raise SmtpCheckError("expects_ssl", detail="no greeting in clear text; SMTP greets inside TLS")
        if timeout:
            # the probe's time counts: a silent host costs one timeout, not a timeout and a probe
            sock.settimeout(max(timeout - (time.monotonic() - started), 0.5))


class _GuardedSMTP_SSL(smtplib.SMTP_SSL, _GuardedSMTP):
    """Implicit TLS: SMTP_SSL wraps the socket made (and guarded) by _GuardedSMTP."""


def _text(resp):
    if isinstance(resp, bytes):
        return resp.decode("utf-8", "replace")
    return str(resp or "")


def _reply_reason(code):
    return "temporary" if 400 <= code < 500 else "protocol_error"


def _auth_reason(code, text):
    lowered = text.lower()
    if (code == 534 and re.search(r"\b5\.7\.9\b", text)) or "application-specific password" in lowered:
        return "app_password_required"
    if (code == 535 and "5.7.139" in text) or "5.7.30" in text or "basic authentication is disabled" in lowered:
        return "basic_auth_disabled"
    if code in (530, 534, 535):
        return "auth_failed"
    return _reply_reason(code)


def mail_reason(code, text):
    """The SmtpCheckError reason of a refusal of the sender (MAIL FROM, RCPT at sender check, or after DATA)."""
    if 400 <= code < 500:
        return "temporary"
    if code == 550 and ("5.7.60" in text or "sendasdenied" in text.lower()):
        return "send_as_denied"
    if 500 <= code < 600:
        return "sender_refused"
    return "protocol_error"


def is_temporary(reason):
    """True when ``reason`` (a SmtpCheckError reason) may heal without anybody acting."""
    return reason in TEMPORARY_REASONS


def _classify(exc, stage, secrets=(), host=None):
    """Map a low-level exception to a SmtpCheckError (``stage``: connect, tls, auth, mail; ``host``: the
    name being connected to)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = scrub(_text(exc.smtp_error), secrets)
        code = exc.smtp_code
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return SmtpCheckError(_auth_reason(code, text), code, text)
        return SmtpCheckError(_reply_reason(code), code, text)
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError):
        exc = exc.__context__  # smtplib reports a read timeout as a disconnection
    detail = scrub(str(exc), secrets)
    common = connection_reason(exc, detail, host)
    if common:
        reason, detail = common
        if reason == "timeout" and stage == "connect":
            detail = "no SMTP greeting in time (STARTTLS spoken to an implicit-TLS port?): %s" % detail
        return SmtpCheckError(reason, detail=detail)
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionResetError)):
        # Hung up before/while greeting: typically STARTTLS spoken to an implicit-TLS port.
        return SmtpCheckError("wrong_protocol" if stage == "connect" else "network", detail=detail)
    if isinstance(exc, smtplib.SMTPException):
        return SmtpCheckError("protocol_error", detail=detail)
    if isinstance(exc, OSError):
        return SmtpCheckError("network", detail=detail)
    return None


def _expired_error(error, deadline):
    """The deadline shut the socket down: whatever broke after that is a timeout."""
    if deadline.expired and error.reason in ("network", "wrong_protocol", "protocol_error", "timeout"):
        return SmtpCheckError("timeout", detail="overall deadline exceeded")
    return error


class _Utf8(str):
    """An AUTH response that ``smtplib.SMTP.auth()`` encodes as UTF-8 (RFC 4616, RFC 4954), not ASCII."""

    def encode(self, encoding="utf-8", errors="strict"):
        return str.encode(self, "utf-8", errors)


def _authenticate(connection, mechanism, authobject, answers, secrets):
    """One ``AUTH mechanism`` exchange through ``smtplib.SMTP.auth()``.

    Returns the final ``(code, text, challenges)``, ``challenges`` the decoded server
    challenges. ``authobject`` answers its first ``answers`` calls (the initial response
    counts); a server that keeps challenging gets empty lines, never the credentials
    again. smtplib takes a 503 for success: only 235 is, the caller decides. Raises
    SmtpCheckError with ``secrets`` scrubbed.
    """
    calls = itertools.count()
    challenges = []

    def respond(challenge=None):
        if challenge is not None:
            challenges.append(challenge)
        if next(calls) >= answers:
            return _Utf8("")
        response = authobject(challenge)
        return None if response is None else _Utf8(response)

    try:
        code, resp = connection.auth(mechanism, respond, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as exc:
        code, resp = exc.smtp_code, exc.smtp_error
    except binascii.Error as exc:
        raise SmtpCheckError("protocol_error", detail="AUTH challenge is not base64") from exc
    except Exception as exc:
        error = _classify(exc, "auth", secrets)
        if error is None:
            raise
        raise error from exc
    return code, scrub(_text(resp), secrets), challenges


def single_login(connection, user, password):
    """Authenticate with exactly one AUTH exchange using the best advertised mechanism.

    ``smtplib.SMTP.login()`` retries every mechanism the server offers, which multiplies
    failed attempts (and lockout risk), so it is not used: the one mechanism chosen runs
    through ``smtplib.SMTP.auth()`` with smtplib's own ``auth_plain``/``auth_login``/
    ``auth_cram_md5``. Raises SmtpCheckError.
    """
    advertised = connection.esmtp_features.get("auth", "").upper().split()
    mechanism = next((m for m in _MECHANISMS if m in advertised), None)
    if mechanism is None:
        raise SmtpCheckError("no_auth", detail="no supported AUTH mechanism in: %s" % " ".join(advertised))
    authobject, answers = {
        "PLAIN": (connection.auth_plain, 1),
        "LOGIN": (connection.auth_login, 2),
        "CRAM-MD5": (connection.auth_cram_md5, 2),  # no initial response, then the digest
    }[mechanism]
    secrets = (password, *(_b64(value) for value in ("\0%s\0%s" % (user or "", password or ""), password or "")))
    _logger.debug("SMTP AUTH %s as %s", mechanism, user)
    # read by smtplib's authobjects (_Utf8: CRAM-MD5's key is password.encode("ascii")), and
    # not kept on the connection that then sends the mails
    connection.user, connection.password = user or "", _Utf8(password or "")
    try:
        code, text, _challenges = _authenticate(connection, mechanism, authobject, answers, secrets)
    finally:
        connection.user = connection.password = None
    if code != 235:
        raise SmtpCheckError(_auth_reason(code, text), code, text)


def _b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _challenge_reason(challenge):
    """The reason of the JSON error challenge (base64-decoded) an XOAUTH2 server sends before its 535.

    Gmail: ``{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}``;
    RFC 7628 servers: ``{"status":"invalid_token", …}``, some with an error description.
    """
    try:
        data = json.loads(challenge)
    except ValueError:
        return "token_invalid"
    if not isinstance(data, dict):
        return "token_invalid"
    status = str(data.get("status", "")).lower()
    text = " ".join(str(data.get(key, "")) for key in ("error", "error_description", "message")).lower()
    if "revoked" in text:
        return "token_revoked"
    if "expired" in text:
        return "token_expired"
    if status in ("403", "insufficient_scope"):
        return "token_scope"
    return "token_invalid"


def xoauth2_login(connection, user, access_token):
    """Authenticate with one AUTH XOAUTH2 exchange (Gmail, Microsoft 365); raises SmtpCheckError.

    A refused token gets a base64 JSON error challenge (Gmail) that the client answers
    with an empty line before the 535 (RFC 7628 §3.2.3), or a 535 at once (Microsoft).
    """
    advertised = connection.esmtp_features.get("auth", "").upper().split()
    if "XOAUTH2" not in advertised:
        raise SmtpCheckError("no_auth", detail="XOAUTH2 not in: %s" % " ".join(advertised))
    initial = oauth.xoauth2_string(user or "", access_token or "")
    _logger.debug("SMTP AUTH XOAUTH2 as %s", user)
    code, text, challenges = _authenticate(
        connection, "XOAUTH2", lambda _challenge=None: initial, 1, (access_token, _b64(initial))
    )
    if code == 235:
        return
    if challenges or code in (530, 534, 535):
        raise SmtpCheckError(_challenge_reason(challenges[0]) if challenges else "token_invalid", code, text)
    raise SmtpCheckError(_reply_reason(code), code, text)


def _open(host, port, protocol, user, password, ca_pem, timeout, deadline, local_hostname, access_token=None):
    """Connect, secure and authenticate under ``deadline`` (a _Deadline); returns the connection.

    With ``access_token`` the login is XOAUTH2, otherwise a password mechanism.
    """
    if protocol not in PROTOCOLS:
        raise ValueError("protocol must be one of %s" % (PROTOCOLS,))
    context = shared_ssl_context(ca_pem)
    if protocol == "ssl":
        connection = _GuardedSMTP_SSL(local_hostname=local_hostname, timeout=timeout, context=context)
    else:
        connection = _GuardedSMTP(local_hostname=local_hostname, timeout=timeout)
        connection._probe_implicit_tls = True
    connection._deadline = deadline
    connection._host = host  # smtplib only sets it in __init__; TLS uses it as server_hostname
    stage = "connect"
    try:
        _logger.debug("SMTP connecting to %s:%s (%s)", host, port, protocol)
        connection.connect(host, port)
        stage = "tls"
        connection.ehlo_or_helo_if_needed()
        if protocol == "starttls":
            # STARTTLS is mandatory before AUTH: RFC 3207, and credentials must never cross in clear text.
            if not connection.has_extn("starttls"):
                raise SmtpCheckError("no_starttls", detail="server does not offer STARTTLS")
            connection.starttls(context=context)
            connection.ehlo()
        if not connection.has_extn("auth"):
            raise SmtpCheckError("no_auth", detail="server does not offer AUTH")
        stage = "auth"
        if access_token:
            xoauth2_login(connection, user, access_token)
        else:
            single_login(connection, user, password)
        return connection
    except SmtpCheckError as error:
        connection.close()
        raise _expired_error(error, deadline)  # noqa: B904 (may be error itself: keep its context)
    except Exception as exc:
        connection.close()
        error = _classify(exc, stage, (password, access_token), host=host)
        if error is None:
            raise
        if (
            error.reason == "wrong_protocol"
            and protocol == "ssl"
            and stage == "connect"
            and not deadline.expired
            and _greets_in_plain(host, port, min(PROBE_SECONDS, timeout or PROBE_SECONDS))
        ):
            # the TLS handshake met a clear-text SMTP greeting (WRONG_VERSION_NUMBER, EOF...):
            # confirmed on a connection of its own, the port speaks STARTTLS
            error = SmtpCheckError("expects_starttls", detail=error.detail)
        raise _expired_error(error, deadline) from exc


def _log_failure(host, port, error):
    _logger.info("SMTP check of %s:%s failed: %s", host, port, error.reason)


def open_session(
    host,
    port,
    protocol,
    user,
    password=None,
    *,
    access_token=None,
    ca_pem=None,
    timeout=20.0,
    deadline=60.0,
    local_hostname=None,
):
    """Return an authenticated ``smtplib.SMTP`` over verified TLS, or raise SmtpCheckError.

    ``protocol`` is "starttls" or "ssl" (implicit TLS). ``timeout`` bounds each socket
    operation, ``deadline`` the whole setup. The caller sends with the result and quits it.
    An OAuth mailbox gives its ``access_token`` (XOAUTH2) instead of a password.
    """
    guard = _Deadline(deadline)
    try:
        connection = _open(host, port, protocol, user, password, ca_pem, timeout, guard, local_hostname, access_token)
    except SmtpCheckError as error:
        _log_failure(host, port, error)
        raise
    finally:
        guard.cancel()
    if guard.expired:  # fired between success and cancel(): the socket is already shut down
        connection.close()
        raise SmtpCheckError("timeout", detail="overall deadline exceeded")
    return connection


def fix_boundaries(message):
    """Give every multipart part of ``message`` its MIME boundary now.

    ``smtplib.SMTP.send_message`` flattens a shallow copy of the message: the boundary it draws for
    an outer part without one is written on that copy and lost. Drawn beforehand (random, as the
    generator's own), they make ``submitted_bytes`` give back exactly what was sent.
    """
    for part in message.walk():
        if part.is_multipart() and part.get_boundary() is None:
            part.set_boundary(f"==============={uuid.uuid4().hex}==")


def submitted_bytes(message):
    """The bytes ``smtplib.SMTP.send_message`` submits for ``message``: without its Bcc headers, CRLF
    line ends, and the message's own policy (Odoo's envelope addresses are ASCII: no SMTPUTF8)."""
    submitted = copy.copy(message)
    del submitted["Bcc"]
    del submitted["Resent-Bcc"]
    with io.BytesIO() as out:
        email.generator.BytesGenerator(out).flatten(submitted, linesep="\r\n")
        return out.getvalue()


def _envelope_command(connection, guard, password, command, *args):
    """Run MAIL or RCPT; raise a SmtpCheckError unless the server answers 250."""
    try:
        code, resp = command(*args)
    except Exception as exc:
        error = _classify(exc, "mail", (password,))
        if error is None:
            raise
        raise _expired_error(error, guard) from exc
    if code not in (250, 251):
        text = scrub(_text(resp), (password,))
        raise SmtpCheckError(mail_reason(code, text), code, text)


def verify(
    host,
    port,
    protocol,
    user,
    password=None,
    sender_email=None,
    *,
    access_token=None,
    ca_pem=None,
    timeout=20.0,
    deadline=60.0,
):
    """Check connection, TLS, login and that the server lets the login send as ``sender_email``.

    MAIL FROM:<sender> then RCPT TO:<sender>: servers that check sender ownership
    at RCPT time (Postfix ``reject_sender_login_mismatch`` with its default
    ``smtpd_delay_reject``) refuse it here rather than on the first invoice. The
    transaction is reset (RSET) before DATA: nothing is ever sent.
    """
    guard = _Deadline(deadline)
    password = password or access_token  # scrubbed from every server text below
    try:
        connection = _open(host, port, protocol, user, password, ca_pem, timeout, guard, None, access_token)
        try:
            options = []
            if not sender_email.isascii():
                if not connection.has_extn("smtputf8"):
                    raise SmtpCheckError("sender_refused", detail="server does not support non-ASCII addresses")
                connection.command_encoding = "utf-8"
                options = ["SMTPUTF8"]
            _envelope_command(connection, guard, password, connection.mail, sender_email, options)
            _envelope_command(connection, guard, password, connection.rcpt, sender_email)
            # the check already succeeded; a failing goodbye does not change that
            with contextlib.suppress(smtplib.SMTPException, OSError):
                connection.rset()
                connection.quit()
        finally:
            connection.close()
    except SmtpCheckError as error:
        _log_failure(host, port, error)
        raise
    finally:
        guard.cancel()
    _logger.debug("SMTP check of %s:%s succeeded", host, port)


# Stack size of the verification threads, which only run smtplib and ssl over one socket.
# Odoo caps a server's address space (limit_memory_hard, 2.5 GB by default) and recycles a
# worker whose virtual size passed limit_memory_soft (2 GB): with the default 8 MB stacks,
# about 128 checks in flight could not even start their threads.
CHECK_STACK_SIZE = 2 * 1024 * 1024
_STACK_LOCK = threading.Lock()


class _CheckPool(futures.ThreadPoolExecutor):
    """A ThreadPoolExecutor whose threads get CHECK_STACK_SIZE stacks.

    The stack size is a process-wide setting read when a thread starts: it is set only
    while this pool starts one. A thread that another part of the server starts at that
    very moment gets 2 MB too, which still holds Python's default recursion limit through
    C calls (1 MB does not).
    """

    def _adjust_thread_count(self):
        with _STACK_LOCK:
            previous = threading.stack_size(CHECK_STACK_SIZE)
            try:
                return super()._adjust_thread_count()
            finally:
                threading.stack_size(previous)


def check_pool(workers):
    """Return an executor running up to ``workers`` calls of :func:`verify` at once.

    Threads are started as work arrives, so a run with few checks starts few threads.
    """
    return _CheckPool(max_workers=workers, thread_name_prefix="smtp_invoicing_verify")
