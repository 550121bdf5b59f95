"""Reading a user's own mailbox over IMAP, safely: delivery reports only, never a flag changed.

Pure Python (no Odoo), on ``imapclient``. Every connection is implicit TLS with the same
verification as for SMTP (certificate chain and host name, ``lib/tls.py``'s shared
context); no command is sent before TLS and the password is tried once. Failures are
reported as :class:`ImapCheckError` with a machine-readable ``reason``.

Polling reads only messages newer than the last UID seen, in a read-only selection
(EXAMINE), headers and body structure first with ``BODY.PEEK``, and downloads the whole
message only for delivery reports: the mailbox's other mail is never downloaded.
"""

import email
import email.policy
import logging
import re
from dataclasses import dataclass, field

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.imapclient import SEEN, SENT

from . import oauth
from .tls import CONNECTION_REASONS, connection_reason, scrub, shared_ssl_context

_logger = logging.getLogger(__name__)

REASONS = (*CONNECTION_REASONS, "auth_failed", "imap_disabled")
# Gmail: "[ALERT] Your account is not enabled for IMAP use. Please visit your Gmail
# settings page and enable your account for IMAP access." (and older wordings)
_IMAP_DISABLED = re.compile(r"not enabled for IMAP|IMAP access is disabled|enable (your account )?for IMAP", re.I)

# What the classification reads of every new message; nothing else of it is fetched.
HEADER_FIELDS = (
    "FROM",
    "SENDER",
    "RETURN-PATH",
    "SUBJECT",
    "CONTENT-TYPE",
    "AUTO-SUBMITTED",
    "X-FAILED-RECIPIENTS",
    "X-MS-EXCHANGE-MESSAGE-IS-NDR",
)
_HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (%s)]" % " ".join(HEADER_FIELDS)
_FULL_ITEM = "BODY.PEEK[]"
_REPORT_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon", "mailer_daemon")


class ImapCheckError(Exception):
    """A classified IMAP failure; ``detail`` is the server's text, never a secret."""

    def __init__(self, reason, detail=""):
        if reason not in REASONS:
            raise ValueError("unknown IMAP check reason %r" % (reason,))
        self.reason, self.detail = reason, detail or ""
        super().__init__("%s: %s" % (reason, self.detail) if self.detail else reason)


def _detail(exc):
    text = str(exc)
    # imaplib/imapclient errors carry the server's text as a bytes repr: b'[ALERT] ...'
    match = re.fullmatch(r"b(['\"])(.*)\1", text, re.S)
    return match.group(2) if match else text


def _classify(exc, secrets=(), host=None):
    detail = scrub(_detail(exc), secrets)
    if isinstance(exc, LoginError):
        return ImapCheckError("imap_disabled" if _IMAP_DISABLED.search(detail) else "auth_failed", detail)
    common = connection_reason(exc, detail, host)
    if common:
        return ImapCheckError(*common)
    if isinstance(exc, IMAPClientError):  # imaplib's error/abort: NO, BAD or a broken exchange
        return ImapCheckError("protocol_error", detail)
    if isinstance(exc, OSError):
        return ImapCheckError("network", detail)
    return None


def classify_error(exc, secrets=()):
    """The ImapCheckError of a failure raised by a session (``secrets`` scrubbed), or None."""
    if isinstance(exc, ImapCheckError):
        return exc
    return _classify(exc, secrets)


def _xoauth2_responder(user, access_token):
    """XOAUTH2 answers: the token once; an error challenge (Gmail's base64 JSON) gets the
    empty response RFC 7628 asks for, never the token a second time."""
    answers = [oauth.xoauth2_string(user, access_token)]

    def respond(_challenge):
        return answers.pop() if answers else b""

    return respond


def open_session(host, port, user, password=None, *, access_token=None, ca_pem=None, timeout=20.0):
    """Return an ``imapclient.IMAPClient`` logged in over verified implicit TLS, or raise ImapCheckError.

    One LOGIN command (or, with ``access_token``, one AUTHENTICATE XOAUTH2), no retry
    with other mechanisms: a wrong password counts once against the account's lockout.
    The caller logs out (or uses it as a context manager).
    """
    context = shared_ssl_context(ca_pem)
    client = None
    try:
        _logger.debug("IMAP connecting to %s:%s", host, port)
        client = imapclient.IMAPClient(host, port=port, ssl=True, ssl_context=context, timeout=timeout)
        if access_token:
            client.sasl_login("XOAUTH2", _xoauth2_responder(user, access_token))
        else:
            client.login(user, password)
    except Exception as exc:
        if client is not None:
            _shutdown(client)
        error = _classify(exc, (password, access_token), host=host)
        if error is None:
            raise
        _logger.info("IMAP check of %s:%s failed: %s", host, port, error.reason)
        raise error from exc
    return client


def _shutdown(client):
    try:
        client.shutdown()
    except (OSError, IMAPClientError):
        _logger.debug("IMAP connection already closed")


def logout(client):
    """Log out politely; a failing goodbye changes nothing."""
    try:
        client.logout()
    except (OSError, IMAPClientError):
        _shutdown(client)


def verify(host, port, user, password=None, *, access_token=None, ca_pem=None, timeout=20.0, mailbox="INBOX"):
    """Check connection, TLS, login and a read-only selection of ``mailbox``; changes nothing."""
    client = open_session(host, port, user, password, access_token=access_token, ca_pem=ca_pem, timeout=timeout)
    try:
        client.select_folder(mailbox, readonly=True)
    except Exception as exc:
        error = _classify(exc, (password, access_token))
        if error is None:
            raise
        raise error from exc
    finally:
        logout(client)


# --------------------------------------------------------------------------- classification


def _addresses(value):
    return [address.lower() for address in re.findall(r"[^\s<>\"',;:()]+@[^\s<>\"',;:()]+", value or "")]


def is_delivery_report(headers, bodystructure=None):
    """Whether a message whose header fields are ``headers`` (an email.message.Message of
    HEADER_FIELDS) and body structure ``bodystructure`` (imapclient's BODYSTRUCTURE, optional)
    is a delivery report: RFC 3464 multipart/report of type delivery-status, a MAILER-DAEMON
    or postmaster sender, X-Failed-Recipients, or Microsoft's NDR marks."""
    content_type = (headers.get_content_type() or "").lower()
    if content_type == "multipart/report" and (headers.get_param("report-type") or "").lower() == "delivery-status":
        return True
    if _structure_is_dsn(bodystructure):
        return True
    if headers.get("X-Failed-Recipients") or headers.get("X-MS-Exchange-Message-Is-Ndr") is not None:
        return True
    for name in ("From", "Sender"):
        for address in _addresses(str(headers.get(name) or "")):
            local = address.split("@", 1)[0]
            # Exchange's NDR sender: MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@...
            if local in _REPORT_SENDERS or local.startswith("microsoftexchange"):
                return True
    return False


def _structure_is_dsn(bodystructure):
    if not bodystructure or not getattr(bodystructure, "is_multipart", False):
        return False
    subtype = bodystructure[1]
    params = bodystructure[2] if len(bodystructure) > 2 and isinstance(bodystructure[2], tuple) else ()
    values = dict(zip(params[::2], params[1::2], strict=False))
    report_type = next((value for key, value in values.items() if key.upper() == b"REPORT-TYPE"), b"")
    return subtype.upper() == b"REPORT" and report_type.lower() == b"delivery-status"


# --------------------------------------------------------------------------- polling


@dataclass
class PollResult:
    """What one poll found. Store ``uidvalidity`` and ``last_uid`` for the next poll.

    ``reports``: [(uid, raw bytes)] of the delivery reports; ``scanned``: how many new
    messages had their headers read; ``reset``: UIDVALIDITY changed, so the mailbox was
    rescanned from the start; ``more``: ``limit`` was reached, poll again soon.
    """

    uidvalidity: int
    last_uid: int
    reports: list = field(default_factory=list)
    scanned: int = 0
    reset: bool = False
    more: bool = False


def _header_value(data):
    for key, value in data.items():
        if key.upper().startswith(b"BODY[HEADER"):
            return value or b""
    return b""


def poll(client, uidvalidity=None, last_uid=0, *, mailbox="INBOX", batch=500, limit=5000):
    """Find the delivery reports among the messages of ``mailbox`` with a UID above ``last_uid``.

    ``client`` is a logged-in session (:func:`open_session`). The mailbox is EXAMINEd
    (read-only) and every fetch uses ``BODY.PEEK``: no flag (``\\Seen`` included) is ever set.
    When UIDNEXT did not move since ``last_uid`` the EXAMINE is the only command sent. A
    changed UIDVALIDITY means the UIDs were renumbered: the mailbox is rescanned once from 0
    (``reset``). At most ``limit`` new messages are scanned per call (``more`` tells).
    """
    selected = client.select_folder(mailbox, readonly=True)
    current_validity = selected.get(b"UIDVALIDITY")
    reset = uidvalidity is not None and current_validity != uidvalidity
    if reset:
        _logger.info("IMAP UIDVALIDITY of %s changed (%s -> %s): rescanning", mailbox, uidvalidity, current_validity)
        last_uid = 0
    last_uid = last_uid or 0
    result = PollResult(uidvalidity=current_validity, last_uid=last_uid, reset=reset)
    uidnext = selected.get(b"UIDNEXT")
    if selected.get(b"EXISTS", 1) == 0 or (uidnext is not None and uidnext <= last_uid + 1):
        return result
    # "N:*" always matches the highest UID, even below N: keep only the really new ones
    uids = sorted(uid for uid in client.search(["UID", "%d:*" % (last_uid + 1)]) if uid > last_uid)
    if len(uids) > limit:
        uids, result.more = uids[:limit], True
    report_uids = []
    for start in range(0, len(uids), batch):
        chunk = uids[start : start + batch]
        fetched = client.fetch(chunk, [_HEADER_ITEM, "BODYSTRUCTURE"])
        for uid in chunk:
            data = fetched.get(uid)
            if data is None:  # expunged meanwhile
                continue
            headers = _parse_headers(_header_value(data))
            if is_delivery_report(headers, data.get(b"BODYSTRUCTURE")):
                report_uids.append(uid)
    result.scanned = len(uids)
    if uids:
        result.last_uid = uids[-1]
    for start in range(0, len(report_uids), batch):
        chunk = report_uids[start : start + batch]
        fetched = client.fetch(chunk, [_FULL_ITEM])
        for uid in chunk:
            data = fetched.get(uid) or {}
            raw = data.get(b"BODY[]")
            if raw is not None:
                result.reports.append((uid, raw))
    return result


def _parse_headers(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


# --------------------------------------------------------------------------- Sent folder


def append_sent(client, message_bytes, folder=None, msg_time=None):
    """Append ``message_bytes`` exactly as sent to the Sent folder, flagged ``\\Seen``; returns the folder.

    Raises ImapCheckError("protocol_error") when the mailbox has no Sent folder.
    """
    # RFC 6154's \\Sent flag, else the usual names in the personal namespace
    folder = folder or client.find_special_folder(SENT)
    if folder is None:
        raise ImapCheckError("protocol_error", "no Sent folder in this mailbox")
    client.append(folder, message_bytes, flags=(SEEN,), msg_time=msg_time)
    return folder


# A Message-ID Odoo looks for: one token in angle brackets, nothing to quote or escape.
_MESSAGE_ID = re.compile(r"<[^\s<>\"\\]+>")
_FROM_ITEM = "BODY.PEEK[HEADER.FIELDS (FROM)]"


def find_sent(client, message_ids, folder=None):
    """{message id: the From header of its copy in the Sent folder, or None when there is none}.

    Headers only, nothing changed: the Sent folder (``folder``, else the one flagged ``\\Sent``)
    is EXAMINEd (read-only), each Message-ID is one ``SEARCH HEADER Message-ID``, and only the
    From header of what it finds is fetched (``BODY.PEEK``). What cannot be looked up (no Sent
    folder, not a plain ``<id@host>``) is left out: not known.
    """
    found = {message_id: None for message_id in message_ids if _MESSAGE_ID.fullmatch(message_id or "")}
    folder = folder or (client.find_special_folder(SENT) if found else None)
    if not found or folder is None:
        return {}
    client.select_folder(folder, readonly=True)
    for message_id in list(found):
        uids = client.search(["HEADER", "Message-ID", message_id])
        if not uids:
            continue
        uid = max(uids)
        data = client.fetch([uid], [_FROM_ITEM]).get(uid) or {}
        found[message_id] = str(_parse_headers(_header_value(data)).get("From") or "")
    return found


# --------------------------------------------------------------------------- one visit of a mailbox


@dataclass
class Visit:
    """What one IMAP session did for a mailbox (see :func:`visit`).

    ``poll``: the PollResult, or None when bounce tracking is off; ``copies``: {key: None
    when filed in Sent, or the ImapCheckError that kept it out}; ``found``: {message id: From
    of its copy in the Sent folder, or None} of the ``lookups`` (empty when the Sent folder
    could not be read); ``files_sent``: whether the copy of ``probe`` was already in the Sent
    folder (the server files its own copies), None when not asked or not known.
    """

    poll: PollResult | None = None
    copies: dict = field(default_factory=dict)
    found: dict = field(default_factory=dict)
    files_sent: bool | None = None


def visit(client, *, copies=(), poll_state=None, limit=5000, lookups=(), probe=None):
    """Look up sent mails in the Sent folder, file the Sent copies, then poll the INBOX, in one session.

    ``lookups``: Message-IDs whose copy is looked for in the Sent folder (:func:`find_sent`),
    before anything is appended. ``probe``: one of them, asked before the first copy is filed:
    when its copy is there, the server files copies itself and ``copies`` are not appended.
    ``copies``: [(key, raw bytes, datetime sent)]; each is appended as sent (``\\Seen``) to
    the Sent folder, one failing copy does not stop the others. ``poll_state``:
    (uidvalidity or None, last_uid) to poll, or None not to. A broken connection raises.
    """
    result = Visit()
    folder = None
    if lookups:
        try:
            folder = client.find_special_folder(SENT)
            if folder is not None:  # no Sent folder: nothing is known, nothing decided
                result.found = find_sent(client, lookups, folder=folder)
        except IMAPClientError as exc:
            if isinstance(exc, IMAPClientAbortError):
                raise
            _logger.info("IMAP Sent folder could not be searched: %s", type(exc).__name__)
            if probe is not None:  # whether the server files copies is not known: none is filed yet
                error = _classify(exc)
                result.copies = {key: error for key, _raw, _when in copies}
                copies = ()
    if probe is not None and probe in result.found:
        result.files_sent = result.found[probe] is not None
        if result.files_sent:
            copies = ()
    for key, raw, when in copies:
        try:
            folder = append_sent(client, raw, folder=folder, msg_time=when)
            result.copies[key] = None
        except (IMAPClientError, ImapCheckError) as exc:
            if isinstance(exc, IMAPClientAbortError):
                raise
            result.copies[key] = exc if isinstance(exc, ImapCheckError) else _classify(exc)
    if poll_state is not None:
        uidvalidity, last_uid = poll_state
        result.poll = poll(client, uidvalidity, last_uid, limit=limit)
    return result


def file_reports(client, uids, folder, mailbox="INBOX"):
    """Move the messages ``uids`` of ``mailbox`` to ``folder`` (created when missing), flags kept.

    Called only for reports Odoo recorded, and only when the administrator chose a folder.
    MOVE (RFC 6851) when offered; else COPY, ``\\Deleted`` and UID EXPUNGE of exactly these
    UIDs (UIDPLUS). Without either, nothing is moved: a plain EXPUNGE would also remove
    other mail the user had marked deleted. Returns whether the reports were moved.
    """
    if not uids:
        return True
    if not client.folder_exists(folder):
        client.create_folder(folder)
    if client.has_capability("MOVE"):
        client.select_folder(mailbox)
        client.move(uids, folder)
        return True
    if client.has_capability("UIDPLUS"):
        client.select_folder(mailbox)
        client.copy(uids, folder)
        client.delete_messages(uids, silent=True)
        client.uid_expunge(uids)
        return True
    _logger.info("IMAP server offers neither MOVE nor UIDPLUS: reports left in %s", mailbox)
    return False
