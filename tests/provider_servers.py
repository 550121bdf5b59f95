"""Loopback stand-ins for Gmail and Microsoft 365 SMTP submission, limits included (no Odoo imports).

Built on :class:`smtp_servers.SmtpServer` (aiosmtpd on 127.0.0.1, STARTTLS with the test :class:`Pki`
required before AUTH PLAIN/LOGIN, AUTH required before MAIL). Each stand-in knows one account and
behaves as its provider documents (sources in ``smtp_invoicing/lib/providers.py``), with limits small
enough for a test and a ``clock`` (a callable returning a datetime, naive meaning UTC, or epoch seconds;
:class:`FakeClock` for tests and benchmarks that simulate days). Every window is rolling and counts
only what the stand-in accepted.

What a test reads (under ``lock``): ``accepted`` (:class:`Accepted`, the message as delivered),
``refusals`` (:class:`Refusal`, each policy reply it sent), ``sent`` (the bytes filed in the Sent
folder), ``peak_connections`` (simultaneous TCP connections), ``peak_sessions`` (simultaneous
signed-in connections), plus everything ``SmtpServer`` records (``messages``, ``commands``,
``auth_attempts``, ``connections``).
"""

import asyncio
import datetime
import email
import email.policy
import email.utils
import imaplib
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from smtp_servers import ReceivedMessage, SmtpServer, _Handler, _RecordingSMTP

DAY = 24 * 60 * 60
GSMTP = " - gsmtp"


class FakeClock:
    """A clock a test moves by hand: ``clock()`` is the current naive UTC datetime."""

    def __init__(self, start=None):
        self.now = start or datetime.datetime(2026, 1, 5, 9, 0, 0)
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            return self.now

    def advance(self, seconds=0, **timedelta_args):
        """Move the clock forward (seconds, or any ``datetime.timedelta`` argument); returns the new time."""
        with self._lock:
            self.now += datetime.timedelta(seconds=seconds, **timedelta_args)
            return self.now


def epoch(value):
    """Epoch seconds of a clock reading: a number, or a datetime (naive: UTC)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    return float(value)


@dataclass(frozen=True)
class Reply:
    """An SMTP reply: ``code``, its ``lines`` (each starting with the enhanced status code, as the
    providers write them); ``close``: the server closes the connection after it (421)."""

    code: int
    lines: tuple
    close: bool = False

    @property
    def text(self):
        """The text as smtplib reports it (``smtp_error``, decoded): the lines joined by newlines."""
        return "\n".join(self.lines)

    def render(self):
        last = len(self.lines) - 1
        return "\r\n".join("%d%s%s" % (self.code, " " if i == last else "-", line) for i, line in enumerate(self.lines))


@dataclass
class Accepted:
    """A message the stand-in accepted (250), as it was delivered and filed."""

    mail_from: str
    rcpt_tos: list
    content: bytes
    message: object = field(repr=False)
    at: float = 0.0
    original_from: str | None = None  # the client's From when the provider rewrote it
    session: int = 0

    @property
    def from_header(self):
        return str(self.message["From"])


@dataclass
class Refusal:
    """A policy reply the stand-in sent: ``stage`` is auth, mail, rcpt, data (the DATA command) or
    message (after the content)."""

    stage: str
    code: int
    text: str
    at: float
    session: int
    mail_from: str | None = None

    @property
    def reply(self):
        return "%d %s" % (self.code, self.text)


def imap_filer(host, port, user, password, folder="Sent", ssl_context=None):
    """A ``on_sent`` callback that APPENDs each filed message, flagged \\Seen, to ``folder`` over IMAPS."""

    def file(content):
        session = imaplib.IMAP4_SSL(host, port, ssl_context=ssl_context, timeout=30)
        try:
            session.login(user, password)
            status, data = session.append(folder, r"(\Seen)", None, content)
            if status != "OK":
                raise imaplib.IMAP4.error("APPEND refused: %r" % (data,))
        finally:
            session.logout()

    return file


# --------------------------------------------------------------------------- protocol and handler


class _ProviderSMTP(_RecordingSMTP):
    """Asks its owner before AUTH and DATA, tracks open and signed-in connections, closes after a 421."""

    def __init__(self, owner, *args, **kwargs):
        super().__init__(owner, *args, **kwargs)
        self.number = 0  # the connection's number at the stand-in (0: not tracked)
        self.signed_in = False
        self.close_after_reply = False
        self._lost = False

    def connection_made(self, transport):
        first = self._original_transport is None and not self.number
        super().connection_made(transport)
        if first:
            self._owner._opened(self)

    def connection_lost(self, error):
        if self.number and not self._lost:
            self._lost = True
            self._owner._closed(self)
        super().connection_lost(error)

    async def refuse(self, stage, reply):
        self._owner._refused(stage, reply, self)
        await self.push(reply.render())
        if reply.close:
            self.transport.close()

    async def smtp_AUTH(self, arg):
        if arg and self._tls_protocol and self.session.extended_smtp and not self.session.authenticated:
            reply = self._owner._auth_refusal(self)
            if reply:
                return await self.refuse("auth", reply)
        await super().smtp_AUTH(arg)
        if self.session.authenticated and not self.signed_in:
            self.signed_in = True
            self._owner._signed_in(self)

    async def smtp_MAIL(self, arg):
        await super().smtp_MAIL(arg)
        if self.close_after_reply and self.transport is not None:
            self.close_after_reply = False
            self.transport.close()

    async def smtp_DATA(self, arg):
        if not arg and self.session.authenticated and self.envelope.rcpt_tos:
            reply = self._owner._data_refusal(self, self.envelope)
            if reply:
                self._set_rset_state()
                return await self.refuse("data", reply)
        await super().smtp_DATA(arg)


class _ProviderHandler(_Handler):
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self._owner._mail_refusal(server, address)
        if reply:
            self._owner._refused("mail", reply, server, address)
            server.close_after_reply = reply.close
            return reply.render()
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._owner._rcpt_refusal(server, envelope, address)
        if reply:
            self._owner._refused("rcpt", reply, server, envelope.mail_from)
            return reply.render()
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        owner = self._owner
        content = envelope.original_content or envelope.content
        reply = owner._message_refusal(server, envelope, content)
        if reply:
            owner._refused("message", reply, server, envelope.mail_from)
            return reply.render()
        delivered, original_from = owner._deliver(content)
        accepted = owner._accept(server, envelope, delivered, original_from)
        if owner.on_sent is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, owner.on_sent, delivered)
            except Exception as error:  # the provider files it whatever happens to a test's mailbox
                with owner.lock:
                    owner.sent_errors.append(error)
        return "250 2.0.0 OK %s" % owner._queue_id(accepted)


# --------------------------------------------------------------------------- the stand-ins


_HEADER_NAME = re.compile(rb"^([!-9;-~]+):")


def _rewrite_from(content, new_from, keep_as):
    """``content`` with its From header replaced by ``new_from`` and the original value kept under the
    header ``keep_as`` (bytes untouched elsewhere); (content, original From value or None)."""
    separator = b"\r\n" if b"\r\n" in content[:4096] else b"\n"
    head, blank, body = content.partition(separator * 2)
    lines = head.split(separator)
    start = next((i for i, line in enumerate(lines) if line[:5].lower() == b"from:"), None)
    if start is None:
        return content, None
    end = start + 1
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    original = separator.join(lines[start:end])[5:]
    replaced = [b"From: " + new_from.encode("utf-8"), keep_as.encode("ascii") + b":" + original]
    lines[start:end] = replaced
    unfolded = re.sub(rb"\r?\n[ \t]", b" ", original).strip().decode("utf-8", "replace")
    return separator.join(lines) + blank + body, unfolded


class _ProviderStandIn(SmtpServer):
    """What both stand-ins share: one account, a clock, rolling windows, connection tracking, a Sent folder."""

    smtp_class = _ProviderSMTP
    provider = "provider"

    def __init__(self, pki, account, password, aliases=(), clock=None, on_sent=None, hostname="smtp.provider.test"):
        super().__init__(mode="starttls", cert=pki.leaf(), users={account: password}, hostname=hostname)
        self._controller.handler = _ProviderHandler(self)
        self._controller.SMTP_kwargs["auth_required"] = True  # submission: no MAIL before AUTH
        self.account = account
        self.aliases = tuple(aliases)
        self.clock = clock or time.time
        self.on_sent = on_sent
        self.lock = self._lock
        self.accepted, self.refusals, self.sent, self.sent_errors = [], [], [], []
        self.open_connections = self.peak_connections = 0
        self.open_sessions = self.peak_sessions = 0
        self._numbers = 0
        self._window = deque()  # (at, recipients) of accepted messages, oldest first

    # clock and windows ------------------------------------------------------------
    def now(self):
        return epoch(self.clock())

    def _owned(self, address):
        return (address or "").strip().lower() in {self.account.lower(), *(alias.lower() for alias in self.aliases)}

    def sent_within(self, seconds):
        """(messages, recipients) accepted in the last ``seconds`` by the clock."""
        since = self.now() - seconds
        with self._lock:
            recent = [recipients for at, recipients in self._window if at > since]
        return len(recent), sum(recent)

    def window_frees_at(self, seconds, limit, need=1):
        """Epoch time at which ``need`` more messages fit ``limit`` per ``seconds`` (now if they do)."""
        now = self.now()
        with self._lock:
            recent = [at for at, _recipients in self._window if at > now - seconds]
        if len(recent) + need <= limit:
            return now
        return recent[len(recent) + need - limit - 1] + seconds

    # lifecycle ---------------------------------------------------------------------
    def start(self):
        super().start()
        # the controller's own startup connection (it reads the greeting) is not a client's
        deadline = time.monotonic() + 5
        while self.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            self.peak_connections = self.open_connections
            self.peak_sessions = self.open_sessions
        return self

    # events from the protocol --------------------------------------------------------
    def _opened(self, server):
        with self._lock:
            self._numbers += 1
            server.number = self._numbers
            self.open_connections += 1
            self.peak_connections = max(self.peak_connections, self.open_connections)

    def _closed(self, server):
        with self._lock:
            self.open_connections -= 1
            if server.signed_in:
                self.open_sessions -= 1
            self._released(server)

    def _signed_in(self, server):
        with self._lock:
            self.open_sessions += 1
            self.peak_sessions = max(self.peak_sessions, self.open_sessions)

    def _released(self, server):
        """A signed-in connection closed (called under the lock)."""

    def _refused(self, stage, reply, server, mail_from=None):
        with self._lock:
            self.refusals.append(Refusal(stage, reply.code, reply.text, self.now(), server.number, mail_from))

    def _accept(self, server, envelope, delivered, original_from):
        at = self.now()
        accepted = Accepted(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            content=delivered,
            message=email.message_from_bytes(delivered, policy=email.policy.default),
            at=at,
            original_from=original_from,
            session=server.number,
        )
        with self._lock:
            self.accepted.append(accepted)
            self._window.append((at, len(envelope.rcpt_tos)))
            while self._window and self._window[0][0] <= at - DAY:
                self._window.popleft()
            self.messages.append(
                ReceivedMessage(envelope.mail_from, list(envelope.rcpt_tos), delivered, accepted.message)
            )
            self.sent.append(delivered)
        return accepted

    def _queue_id(self, accepted):
        return "%s.%d" % (self.provider, len(self.accepted))

    # policy hooks: a Reply refuses, None lets through ---------------------------------
    def _auth_refusal(self, server):
        return None

    def _mail_refusal(self, server, address):
        return None

    def _rcpt_refusal(self, server, envelope, address):
        return None

    def _data_refusal(self, server, envelope):
        return None

    def _message_refusal(self, server, envelope, content):
        return None

    def _deliver(self, content):
        """(the bytes as delivered, the client's From when it was rewritten, else None)."""
        return content, None


class GmailStandIn(_ProviderStandIn):
    """smtp.gmail.com for one account.

    - ``daily_limit`` messages per rolling 24 h (counted on accepted messages): past it, the DATA command
      gets ``550 5.4.5 Daily user sending limit exceeded`` (as field reports show, before the content)
      and nothing is accepted until the oldest message of the window is 24 h old;
    - ``burst`` messages per ``burst_window`` seconds (None: no burst limit): past it, MAIL FROM gets
      ``421 4.7.0 Try again later, closing connection. (MAIL)`` and the connection is closed;
    - ``login_limit`` AUTH attempts per ``login_window`` seconds (None: unlimited): past it, AUTH gets
      ``454 4.7.0 Too many login attempts, please try again later.`` (refused attempts do not count);
    - ``recipients_per_message`` (100): the next RCPT gets ``452 4.5.3 Your message has too many recipients``;
    - a From header that is not the account or one of ``aliases`` (verified "Send mail as" addresses) is
      rewritten to the account, the display name kept, the original kept in ``X-Google-Original-From``;
      the message is accepted all the same (250);
    - every accepted message is filed in ``sent`` (Sent Mail), and passed to ``on_sent(bytes)`` before
      the 250 when given (e.g. :func:`imap_filer` to APPEND it to a real IMAP mailbox).
    """

    provider = "gmail"

    def __init__(
        self,
        pki,
        account,
        password,
        aliases=(),
        daily_limit=500,
        burst=None,
        burst_window=60,
        recipients_per_message=100,
        login_limit=None,
        login_window=600,
        clock=None,
        on_sent=None,
        hostname="smtp.gmail.test",
    ):
        super().__init__(pki, account, password, aliases, clock, on_sent, hostname)
        self.daily_limit, self.burst, self.burst_window = daily_limit, burst, burst_window
        self.recipients_per_message = recipients_per_message
        self.login_limit, self.login_window = login_limit, login_window
        self._logins = deque()

    @property
    def sent_mail(self):
        return self.sent

    def _auth_refusal(self, server):
        if self.login_limit is None:
            return None
        now = self.now()
        with self._lock:
            while self._logins and self._logins[0] <= now - self.login_window:
                self._logins.popleft()
            if len(self._logins) >= self.login_limit:
                return Reply(
                    454,
                    (
                        "4.7.0 Too many login attempts, please try again later. For more information, go to",
                        "4.7.0  https://support.google.com/mail/answer/7126229" + GSMTP,
                    ),
                )
            self._logins.append(now)
        return None

    def _mail_refusal(self, server, address):
        if self.burst is not None and self.sent_within(self.burst_window)[0] >= self.burst:
            return Reply(421, ("4.7.0 Try again later, closing connection. (MAIL)" + GSMTP,), close=True)
        return None

    def _rcpt_refusal(self, server, envelope, address):
        if self.recipients_per_message is not None and len(envelope.rcpt_tos) >= self.recipients_per_message:
            return Reply(
                452,
                (
                    "4.5.3 Your message has too many recipients. For more information regarding",
                    "4.5.3 Google's sending limits, visit",
                    "4.5.3  https://support.google.com/mail/answer/6592" + GSMTP,
                ),
            )
        return None

    def _data_refusal(self, server, envelope):
        if self.daily_limit is not None and self.sent_within(DAY)[0] >= self.daily_limit:
            return Reply(
                550,
                (
                    "5.4.5 Daily user sending limit exceeded. For more information on Gmail",
                    "5.4.5 sending limits go to",
                    "5.4.5  https://support.google.com/a/answer/166852" + GSMTP,
                ),
            )
        return None

    def _deliver(self, content):
        message = email.message_from_bytes(content, policy=email.policy.compat32)
        name, address = email.utils.parseaddr(str(message.get("From", "")))
        if self._owned(address):
            return content, None
        new_from = email.utils.formataddr((name, self.account)) if name else self.account
        return _rewrite_from(content, new_from, "X-Google-Original-From")


class MicrosoftStandIn(_ProviderStandIn):
    """smtp.office365.com for one mailbox (Outlook.com behaves the same, with other numbers).

    - ``per_minute`` messages per rolling minute: past it, MAIL FROM gets ``421 4.4.2 Message submission
      rate for this client has exceeded the configured limit`` and the connection is closed (what clients
      report; Microsoft's page adds that the excess may merely be delayed);
    - ``daily_recipients`` recipients per rolling 24 h: a message that would go past them gets, after its
      content, ``554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException``;
    - ``max_connections`` signed-in connections of the mailbox: the per-mailbox limit cannot apply at the
      greeting (Exchange does not know the mailbox before AUTH) and Microsoft says it concerns connections
      that *send* at the same time ("STOREDRV.ClientSubmit": the submission of the message); field traces
      show the ``432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded`` as the reply to the end
      of the content. So the first ``max_connections`` signed-in connections hold a slot until they
      close; another one signs in fine but each message it submits gets the 432 after its content while
      no slot is free (``connection_limit_at="mail"`` refuses at MAIL FROM instead);
    - a sender it does not own (``aliases`` are the addresses it may send as; ``check_send_as``): MAIL FROM
      gets ``550 5.7.60 SMTP; Client does not have permissions to send as this sender``, a From header
      ``554 5.2.252 SendAsDenied`` after the content. No rewriting;
    - every accepted message is filed in ``sent`` (Sent Items) and passed to ``on_sent(bytes)``.
    """

    provider = "microsoft"
    THREADS = "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"

    def __init__(
        self,
        pki,
        account,
        password,
        per_minute=30,
        daily_recipients=10000,
        max_connections=3,
        aliases=(),
        connection_limit_at="data",
        check_send_as=True,
        clock=None,
        on_sent=None,
        hostname="smtp.office365.test",
    ):
        if connection_limit_at not in ("data", "mail"):
            raise ValueError(connection_limit_at)
        super().__init__(pki, account, password, aliases, clock, on_sent, hostname)
        self.per_minute, self.daily_recipients, self.max_connections = per_minute, daily_recipients, max_connections
        self.connection_limit_at, self.check_send_as = connection_limit_at, check_send_as
        self._slots = set()  # numbers of the connections holding a submission slot

    @property
    def sent_items(self):
        return self.sent

    def _signed_in(self, server):
        super()._signed_in(server)
        self._take_slot(server)

    def _take_slot(self, server):
        with self._lock:
            if server.number in self._slots:
                return True
            if self.max_connections is None or len(self._slots) < self.max_connections:
                self._slots.add(server.number)
                return True
            return False

    def _released(self, server):
        self._slots.discard(server.number)

    def _threads(self, server):
        return None if self._take_slot(server) else Reply(432, (self.THREADS,))

    def _mail_refusal(self, server, address):
        if self.check_send_as and not self._owned(address):
            return Reply(550, ("5.7.60 SMTP; Client does not have permissions to send as this sender",))
        if self.per_minute is not None and self.sent_within(60)[0] >= self.per_minute:
            return Reply(
                421,
                ("4.4.2 Message submission rate for this client has exceeded the configured limit",),
                close=True,
            )
        return self._threads(server) if self.connection_limit_at == "mail" else None

    def _message_refusal(self, server, envelope, content):
        if self.connection_limit_at == "data":
            reply = self._threads(server)
            if reply:
                return reply
        if self.check_send_as:
            message = email.message_from_bytes(content, policy=email.policy.compat32)
            address = email.utils.parseaddr(str(message.get("From", "")))[1]
            if not self._owned(address):
                return Reply(
                    554,
                    (
                        "5.2.252 SendAsDenied; %s not allowed to send as %s; "
                        "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; "
                        "Failed to process message due to a permanent exception" % (self.account, address),
                    ),
                )
        if self.daily_recipients is not None:
            recipients = self.sent_within(DAY)[1]
            if recipients + len(envelope.rcpt_tos) > self.daily_recipients:
                return Reply(
                    554,
                    (
                        "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process "
                        "message due to a permanent exception with message [BeginDiagnosticData]Cannot submit "
                        "message.[EndDiagnosticData]",
                    ),
                )
        return None
