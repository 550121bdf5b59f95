"""Parsing one delivery report (DSN, RFC 3464, or an MTA's own bounce format). Pure Python.

``flufl.bounce`` (the GNU Mailman detectors) finds the failed recipients in dozens of MTA
formats; the stdlib ``email`` package reads the RFC 3464 fields (Status, Action,
Diagnostic-Code) and the original Message-ID from the embedded headers.
"""

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass

from flufl.bounce import all_failures

# Status code (RFC 3463) -> plain-words key, most specific first; a class alone ("4") last.
REASONS = (
    ("5.1.1", "address_does_not_exist"),
    ("5.1.0", "address_does_not_exist"),
    ("5.1.3", "address_does_not_exist"),  # bad address syntax
    ("5.1.6", "address_does_not_exist"),  # mailbox has moved
    ("5.1.10", "address_does_not_exist"),  # Microsoft 365: recipient not found (null MX)
    ("5.2.1", "mailbox_disabled"),
    ("5.2.2", "mailbox_full"),
    ("5.2.3", "message_too_large"),
    ("5.3.4", "message_too_large"),
    ("5.1.2", "domain_not_found"),
    ("5.4.4", "domain_not_found"),
    ("5.4.1", "address_does_not_exist"),  # Microsoft 365: recipient address rejected, access denied
    ("5.7.1", "rejected_as_spam"),
    ("5.7.23", "rejected_as_spam"),  # SPF
    ("5.7.25", "rejected_as_spam"),  # reverse DNS
    ("5.7.26", "rejected_as_spam"),  # DMARC
    ("5.7.350", "rejected_as_spam"),
    ("5.7.", "rejected_as_spam"),
    ("4.", "delayed"),
)
REASON_KEYS = (
    "address_does_not_exist",
    "mailbox_disabled",
    "mailbox_full",
    "message_too_large",
    "domain_not_found",
    "rejected_as_spam",
    "delayed",
    "other",
)
# Diagnostic texts that say more than a bare 5.0.0 (qmail, Exim and old servers).
_TEXT_REASONS = (
    (
        re.compile(r"user unknown|no such user|no mailbox|does not exist|unknown user|recipient not found", re.I),
        "address_does_not_exist",
    ),
    (re.compile(r"mailbox (is )?full|over quota|quota exceeded|insufficient storage", re.I), "mailbox_full"),
    (
        re.compile(r"host not found|domain not found|no such domain|name service error|NXDOMAIN", re.I),
        "domain_not_found",
    ),
    (re.compile(r"\bspam\b|blocked|blacklist|blocklist|policy", re.I), "rejected_as_spam"),
)
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_MESSAGE_ID = re.compile(r"^Message-ID:\s*(<[^>\s]+>)", re.I | re.M)
_ADDRESS = re.compile(r"<?([^\s<>@\"';,()]+@[^\s<>@\"';,()]+?)>?\.?$")


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a report is about. ``permanent``: 5.x.x (hard), else 4.x.x (delayed)."""

    address: str
    status: str
    diagnostic: str
    reason: str

    @property
    def permanent(self):
        return self.status.startswith("5")


@dataclass(frozen=True)
class DeliveryReport:
    """``recipients``: FailedRecipient tuple; ``original_message_id``: "<...>" or None."""

    recipients: tuple
    original_message_id: str


def reason_for(status, diagnostic=""):
    """The plain-words key (REASON_KEYS) of a status code such as "5.1.1", helped by the diagnostic text."""
    status = (status or "").strip()
    if status.startswith("4"):
        return "delayed"
    for prefix, key in REASONS:
        if status == prefix or (prefix.endswith(".") and status.startswith(prefix)):
            return key
    for pattern, key in _TEXT_REASONS:
        if pattern.search(diagnostic or ""):
            return key
    return "other"


def _text(part):
    try:
        payload = part.get_payload(decode=True)
    except (LookupError, ValueError):
        payload = None
    if payload is None:
        return ""
    return payload.decode(part.get_content_charset() or "utf-8", "replace")


def _address(value):
    """ "rfc822; Foo@Example.com" -> "foo@example.com"."""
    value = (value or "").split(";", 1)[-1].strip()
    match = _ADDRESS.search(value)
    return match.group(1).lower() if match else value.lower()


def _unfold(value):
    return re.sub(r"\s+", " ", str(value or "")).strip()


def _dsn_fields(message):
    """{address: (status, action, diagnostic)} of the RFC 3464 per-recipient blocks."""
    fields = {}
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):  # unparsed body: parse the blocks ourselves
            text = blocks if isinstance(blocks, str) else _text(part)
            blocks = [email.message_from_string(block.strip() + "\n") for block in re.split(r"\n\s*\n", text)]
        for block in blocks:
            recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
            if not recipient:
                continue
            diagnostic = _unfold(block.get("Diagnostic-Code", "")).split(";", 1)[-1].strip()
            status = _unfold(block.get("Status", ""))
            match = _STATUS.search(status) or _STATUS.search(diagnostic)
            fields[_address(recipient)] = (
                ".".join(match.groups()) if match else "",
                _unfold(block.get("Action", "")).lower(),
                diagnostic,
            )
    return fields


def _original_message_id(message, body_text):
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if hasattr(inner, "get") and inner.get("Message-ID"):
                return _unfold(inner["Message-ID"])
        elif content_type == "text/rfc822-headers":
            match = _MESSAGE_ID.search(_text(part))
            if match:
                return match.group(1)
    # qmail, Exim: the returned message is quoted inline in the text
    match = _MESSAGE_ID.search(body_text)
    if match:
        return match.group(1)
    for header in ("In-Reply-To", "References"):
        ids = re.findall(r"<[^>\s]+>", str(message.get(header) or ""))
        if ids:
            return ids[-1] if header == "References" else ids[0]
    return None


def _notification_text(message):
    """The human-readable text of the report (not the returned message)."""
    texts = []
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            break
        if part.get_content_type() == "text/plain":
            texts.append(_text(part))
    return "\n".join(texts)


def _diagnostic_near(text, address):
    """The lines describing ``address`` in a human-readable bounce (qmail, Exim...)."""
    index = text.lower().find(address)
    if index < 0:
        return ""
    after = text[index + len(address) :]
    lines = []
    for line in after.splitlines()[:6]:
        if not line.strip():
            if lines:
                break
            continue
        lines.append(line.strip(" >:"))
    return _unfold(" ".join(lines))


def parse_report(raw):
    """A DeliveryReport of the raw report bytes, or None when no failed recipient is found."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    temporary, permanent = all_failures(message)
    detected = {address.decode("utf-8", "replace").lower(): address in permanent for address in temporary | permanent}
    fields = _dsn_fields(message)
    text = _notification_text(message)
    recipients = []
    for address in sorted(set(detected) | set(fields)):
        status, action, diagnostic = fields.get(address, ("", "", ""))
        if action and action not in ("failed", "delayed"):
            continue  # "delivered", "relayed", "expanded": not a failure
        diagnostic = diagnostic or _diagnostic_near(text, address)
        if not status:
            match = _STATUS.search(diagnostic)
            if match:
                status = ".".join(match.groups())
            elif action == "delayed" or detected.get(address) is False:
                status = "4.0.0"
            else:
                status = "5.0.0"
        recipients.append(FailedRecipient(address, status, diagnostic, reason_for(status, diagnostic)))
    if not recipients:
        return None
    return DeliveryReport(tuple(recipients), _original_message_id(message, text))


def report_key(raw):
    """A stable key of one report, to record it once: its own Message-ID, else a digest of its bytes.

    The same report seen twice (a mailbox whose UIDVALIDITY changed is rescanned) has the same key.
    """
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    message = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.compat32)
    message_id = _unfold(message.get("Message-ID"))
    if message_id and len(message_id) <= 200:
        return message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()
