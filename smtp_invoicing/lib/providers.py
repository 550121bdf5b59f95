"""What each provider lets a mailbox send, and which SMTP replies mean "slow down". Pure Python.

Sources (what the numbers and reply texts below come from):

- Google Workspace Admin Help, "Gmail sending limits in Google Workspace" (support.google.com/a/answer/166852):
  2,000 messages a day per user, 10,000 recipients a day, 100 recipients per message sent through SMTP;
  past the limit ``550 5.4.5 Daily user sending limit exceeded`` and sending stops for up to 24 hours.
  Gmail Help, "Limits for sending & getting mail" (support.google.com/mail/answer/22839): about 500 a day
  for a gmail.com account. Gmail files every message sent through its SMTP in the account's Sent Mail
  itself, and rewrites a From that is not one of the account's verified "Send mail as" addresses to the
  account (the mail still leaves, with 250).
- Microsoft Learn, "Exchange Online limits" (receiving and sending limits): 10,000 recipients a day,
  500 recipients per message, 30 messages a minute over SMTP AUTH. "Message storage and concurrent
  connection throttling for SMTP Authenticated Submission" and the Exchange Team Blog of 20 April 2018,
  "Changes coming to the SMTP Authenticated Submission client protocol": every message submitted over
  SMTP AUTH is stored in Sent Items; three concurrent connections per mailbox, more are refused with
  ``432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded`` (the current page says
  ``432 4.3.2 Concurrent connections limit exceeded``). Outlook.com runs on the same service, with about
  300 recipients a day and 100 per message for a free account (Microsoft Support, "Sending limits in
  Outlook.com").
- OVHcloud publishes no sending quota.

``None`` in a :class:`Profile` means "no known limit"; ``files_sent_copy`` is ``None`` when nobody knows
whether the server files a Sent copy (a custom server).
"""

import datetime
import re
from dataclasses import dataclass

DAY = 24 * 60 * 60
MINUTE = 60
CONSUMER_GOOGLE_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


@dataclass(frozen=True)
class Profile:
    """A provider's documented limits for one mailbox (``None``: no known limit).

    ``daily_messages``/``daily_recipients`` are rolling 24-hour budgets, ``per_minute`` messages a
    minute, ``connections`` simultaneous SMTP connections of the mailbox, ``recipients_per_message``
    the recipients one message may have. ``files_sent_copy``: the provider stores every message sent
    through its SMTP in the Sent folder itself (``None``: unknown). ``rewrites_from``: the provider
    replaces a From it does not own by the account's address instead of refusing the mail.
    """

    daily_messages: int | None
    daily_recipients: int | None
    per_minute: int | None
    connections: int | None
    recipients_per_message: int | None
    files_sent_copy: bool | None
    rewrites_from: bool
    label: str
    source: str


_GOOGLE_SOURCE = (
    "Google Workspace Admin Help: Gmail sending limits in Google Workspace (support.google.com/a/answer/166852)"
)
_MICROSOFT_SOURCE = (
    "Microsoft Learn: Exchange Online limits; Message storage and concurrent connection throttling for SMTP "
    "Authenticated Submission; Exchange Team Blog, 20 April 2018"
)

GMAIL = Profile(
    daily_messages=500,
    daily_recipients=None,
    per_minute=None,
    connections=None,
    recipients_per_message=100,
    files_sent_copy=True,
    rewrites_from=True,
    label="Gmail",
    source="Gmail Help: Limits for sending & getting mail (support.google.com/mail/answer/22839); " + _GOOGLE_SOURCE,
)
GOOGLE_WORKSPACE = Profile(
    daily_messages=2000,
    daily_recipients=10000,
    per_minute=None,
    connections=None,
    recipients_per_message=100,
    files_sent_copy=True,
    rewrites_from=True,
    label="Google Workspace",
    source=_GOOGLE_SOURCE,
)
MICROSOFT_365 = Profile(
    daily_messages=None,
    daily_recipients=10000,
    per_minute=30,
    connections=3,
    recipients_per_message=500,
    files_sent_copy=True,
    rewrites_from=False,
    label="Microsoft 365",
    source=_MICROSOFT_SOURCE,
)
OUTLOOK_COM = Profile(
    daily_messages=None,
    daily_recipients=300,
    per_minute=30,
    connections=3,
    recipients_per_message=100,
    files_sent_copy=True,
    rewrites_from=False,
    label="Outlook.com",
    source="Microsoft Support: Sending limits in Outlook.com; same SMTP submission service as Microsoft 365 ("
    + _MICROSOFT_SOURCE
    + ")",
)
OVH = Profile(
    daily_messages=None,
    daily_recipients=None,
    per_minute=None,
    connections=None,
    recipients_per_message=None,
    files_sent_copy=False,
    rewrites_from=False,
    label="OVH",
    source="OVHcloud publishes no sending quota",
)
CUSTOM = Profile(
    daily_messages=None,
    daily_recipients=None,
    per_minute=None,
    connections=None,
    recipients_per_message=None,
    files_sent_copy=None,
    rewrites_from=False,
    label="Custom server",
    source="",
)
_PROFILES = {"microsoft365": MICROSOFT_365, "outlook": OUTLOOK_COM, "ovh": OVH, "custom": CUSTOM}


def _domain(address):
    address = (address or "").strip().lower()
    if "@" not in address:
        return ""
    return address.rsplit("@", 1)[1].strip().strip(">").rstrip(".")


def profile_of(preset, sender_email=None, smtp_user=None):
    """The :class:`Profile` of a mailbox set up with ``preset`` (a code of ``presets.SELECTION``).

    Gmail's budget is the signed-in account's: ``smtp_user`` decides (``sender_email`` when the user is
    not an address); gmail.com and googlemail.com accounts get 500 a day, any other domain is a Google
    Workspace account (2,000). With no address at all, the smaller consumer budget is the safe guess.
    An unknown or empty code is a custom server.
    """
    if preset == "gmail":
        domain = _domain(smtp_user) or _domain(sender_email)
        return GOOGLE_WORKSPACE if domain and domain not in CONSUMER_GOOGLE_DOMAINS else GMAIL
    return _PROFILES.get(preset or "custom", CUSTOM)


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class SlowDown:
    """A reply that asks to wait ``seconds`` before sending again (not a refusal of the mail).

    ``kind``: one of :data:`KINDS`. ``split_recipients``: the message has too many recipients for one
    transaction; send it again to fewer recipients at a time, at once (``seconds`` is 0).
    A ``daily_limit`` waits a whole day at most: the caller shortens it from its own send log
    (:func:`rolling_wait`).
    """

    kind: str
    seconds: int
    split_recipients: bool = False


KINDS = ("daily_limit", "rate_limit", "connection_limit", "login_rate", "try_later", "too_many_recipients")
WAIT_SECONDS = {
    "daily_limit": DAY,
    "rate_limit": MINUTE,
    "connection_limit": MINUTE,
    "login_rate": 15 * MINUTE,
    "try_later": 5 * MINUTE,
    "too_many_recipients": 0,
}

# The enhanced status code (RFC 3463) at the start of the reply text, or of one of its lines.
_ENHANCED = re.compile(r"(?:^|\n)\s*(?:\d{3}[ -])?([245])\.(\d{1,3})\.(\d{1,3})\b")
_RATE_WORDS = re.compile(
    r"\brat(?:e|es|ed)\b|\brate[- ]?limit|too many (?:messages|mails|emails|connections|requests)|slow(?:ing)? down"
    r"|throttl|submission rate|exceeded the configured limit",
    re.IGNORECASE,
)
_TLS_WORDS = re.compile(r"\b(?:start)?tls\b|\bssl\b|encrypt|secure connection", re.IGNORECASE)
_DAILY_WORDS = re.compile(r"\bdaily\b.*\b(?:limit|quota)\b|sending (?:limit|quota)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class _Rule:
    """``codes``: the reply codes; ``enhanced``: a pattern the whole enhanced status code must match;
    ``words``: what the text must also say when the reply has that code (``None``: nothing more);
    ``words_alone``: what suffices when the reply has no enhanced code (``None``: the code is required)."""

    kind: str
    codes: frozenset
    enhanced: re.Pattern
    words: re.Pattern | None = None
    words_alone: re.Pattern | None = None


def _words(pattern):
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


_SUBMISSION_QUOTA = _words(r"SubmissionQuotaExceeded")
_SENDER_THREADS = _words(r"sender thread limit|concurrent connections? limit")
_LOGIN_ATTEMPTS = _words(r"too many (?:login|auth\w*) attempts")

# Most specific first. An enhanced code that a rule does not list rules it out: "550 5.1.1 user unknown"
# never reads as a limit whatever its words.
_RULES = (
    # Gmail past its rolling day (and Google's SMTP relay: "Daily SMTP relay sending limit exceeded");
    # RFC 3463 X.4.5 is "mail system congestion" elsewhere, hence the words.
    _Rule("daily_limit", frozenset({550, 554}), re.compile(r"5\.4\.5"), _DAILY_WORDS, _DAILY_WORDS),
    # Exchange Online past 10,000 recipients a day; 5.2.0 alone is any store driver failure.
    _Rule("daily_limit", frozenset({550, 554}), re.compile(r"5\.2\.0"), _SUBMISSION_QUOTA, _SUBMISSION_QUOTA),
    # Outlook.com's recipient rate limit: "550 5.1.90 ... you've reached your daily limit for message recipients"
    _Rule("daily_limit", frozenset({550, 554}), re.compile(r"5\.1\.90"), _words(r"daily limit")),
    # Exchange: three connections per mailbox. "432 4.3.2 STOREDRV.Deliver; recipient thread limit exceeded"
    # is a delivery queue's throttle, not this mailbox's connections; "421 4.3.2 Service not available" is
    # a server going down.
    _Rule("connection_limit", frozenset({432, 421, 451}), re.compile(r"4\.3\.2"), _SENDER_THREADS, _SENDER_THREADS),
    # Gmail refusing logins for a while; 454 4.7.0 is also "TLS not available" and "temporary system problem".
    _Rule("login_rate", frozenset({454, 421}), re.compile(r"4\.7\.0"), _LOGIN_ATTEMPTS, _LOGIN_ATTEMPTS),
    # Exchange's message rate; 4.4.2 alone is "bad connection" ("421 4.4.2 Connection dropped").
    _Rule(
        "rate_limit", frozenset({421, 450, 451, 452}), re.compile(r"4\.4\.2"), _RATE_WORDS, _words(r"submission rate")
    ),
    # Gmail's "450 4.2.1 ... receiving mail at a rate ..." and Google relay's "Peak SMTP relay limit exceeded";
    # 4.2.1 alone is "mailbox disabled".
    _Rule("rate_limit", frozenset({450, 451, 452}), re.compile(r"4\.2\.1"), _words(r"\brate\b|peak .*limit")),
    # Gmail's burst reply "421 4.7.0 Try again later, closing connection"; a 421 4.7.0 about TLS is a
    # setting to fix (ruled out in classify_reply) and any other 421 4.7.0 a plain temporary failure.
    _Rule(
        "try_later",
        frozenset({421}),
        re.compile(r"4\.7\.0"),
        _words(r"try again later|unusual rate|too many"),
        _words(r"try again later, closing connection"),
    ),
    # "451 4.7.1 Rate limited, try again later" and other 4.7.x policy replies about a rate.
    _Rule(
        "rate_limit",
        frozenset({421, 450, 451}),
        re.compile(r"4\.7\.\d+"),
        _RATE_WORDS,
        _words(r"\brate[- ]?limit(?:ed)?\b|submission rate"),
    ),
    # Too many recipients in one transaction (Gmail "452 4.5.3 Your message has too many recipients";
    # Postfix "452 4.5.3 Error: too many recipients"): split them, no pause.
    _Rule("too_many_recipients", frozenset({452}), re.compile(r"4\.5\.3"), None, _words(r"too many recipients")),
    _Rule("too_many_recipients", frozenset({550, 552, 554}), re.compile(r"5\.5\.3"), _words(r"too many recipients")),
)


def enhanced_status(text):
    """The first enhanced status code (RFC 3463) heading a line of ``text``, e.g. "5.4.5", or None."""
    match = _ENHANCED.search(text or "")
    return "%s.%d.%d" % (match.group(1), int(match.group(2)), int(match.group(3))) if match else None


def classify_reply(code, text):
    """The :class:`SlowDown` an SMTP reply asks for, or None when it is no such thing.

    ``code``: the reply code (int); ``text``: its text (str or bytes, lines joined as smtplib joins them),
    with or without the enhanced status code in front. The enhanced status code decides first, the words
    second: a reply whose enhanced code a kind does not list never has that kind, and codes shared with
    other meanings (4.4.2 "bad connection", 4.2.1 "mailbox disabled", 5.4.5 "congestion", 454 4.7.0 "TLS
    not available") need the provider's words too. A reply without an enhanced code needs the provider's
    exact wording. None for every acceptance, every real refusal (``550 5.1.1 user unknown``,
    ``535 5.7.8``, ``550 5.7.60 SendAsDenied``) and every 4xx that says nothing about rate or quota: the
    caller retries those as it retries any temporary failure. A ``421 4.7.0`` that asks for TLS (or
    encryption) is a setting to fix, never a pause.
    """
    try:
        code = int(code)
    except (TypeError, ValueError):
        return None
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    text = text or ""
    status = enhanced_status(text)  # every rule's codes and enhanced codes share their class (4 or 5)
    if code == 421 and _TLS_WORDS.search(text) and not _RATE_WORDS.search(text):
        return None  # "421 4.7.0 TLS required ... try again later": a setting to fix, not a pause
    for rule in _RULES:
        if code not in rule.codes:
            continue
        if status is None:
            if rule.words_alone is None or not rule.words_alone.search(text):
                continue
        elif not rule.enhanced.fullmatch(status) or (rule.words is not None and not rule.words.search(text)):
            continue
        return SlowDown(rule.kind, WAIT_SECONDS[rule.kind], split_recipients=rule.kind == "too_many_recipients")
    return None


# --------------------------------------------------------------------------- budgets


def _epoch(when):
    """Epoch seconds of ``when``: a number, or a datetime (naive: UTC, as Odoo stores them)."""
    if isinstance(when, datetime.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return when.timestamp()
    return float(when)


def rolling_wait(events, limit, now, window=DAY, need=1):
    """Seconds to wait until ``need`` more fit a rolling budget of ``limit`` per ``window`` seconds.

    ``events``: (when, count) pairs of what was already sent (``when``: epoch seconds or datetime, naive
    meaning UTC); an event counts while ``now - window < when <= now`` and frees its count at
    ``when + window``. 0 when it fits now, None when it never can (``need > limit``). ``limit`` None: no
    known limit, 0. This is how a caller shortens the 24 hours of a ``daily_limit`` :class:`SlowDown`
    from its own send log.
    """
    if limit is None:
        return 0.0
    if need > limit:
        return None
    now = _epoch(now)
    recent = sorted((_epoch(when), count) for when, count in events if now - window < _epoch(when) <= now)
    used = sum(count for _when, count in recent)
    for when, count in recent:
        if used + need <= limit:
            break
        used -= count
        if used + need <= limit:
            return max(0.0, when + window - now)
    return 0.0
