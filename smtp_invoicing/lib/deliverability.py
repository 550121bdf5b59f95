"""Deliverability hint: do the sender domain's SPF and DMARC records allow this mailbox?

Pure Python on dnspython, no Odoo. An SPF record cannot be fully evaluated
without the sending IP address of the provider, which Odoo does not know: the
check looks for the mechanisms that authorise the mailbox's provider (its
``include:``, an ``ip4:``/``ip6:`` range holding the SMTP host, or ``a``/``mx``
of the domain when the host is in it), following includes and redirects within
SPF's own limit of 10 DNS lookups (RFC 7208 §4.6.4). DMARC only reads the
policy: since Odoo sends with the envelope sender equal to the From address,
an SPF pass is aligned.

Lookups are bounded by ``lifetime`` seconds each. Answers (negative ones too) are kept
in dnspython's own cache for their DNS TTL, one cache per nameserver configuration, so a
form opened repeatedly does not query DNS again; dnspython does not keep failures, so a
check that DNS could not answer is kept ``ERROR_CACHE_SECONDS`` here.
"""

import contextlib
import functools
import ipaddress
import threading
import time
from dataclasses import dataclass

import dns.exception
import dns.resolver

ERROR_CACHE_SECONDS = 60
# answers kept per nameserver configuration (each check asks a handful of names)
CACHE_ANSWERS = 10000
MAX_SPF_LOOKUPS = 10

# RFC 2606 / RFC 6761 names never exist in public DNS: the system's resolver is not asked
# (configured nameservers are, as they may serve them, e.g. a demo or a test).
RESERVED_SUFFIXES = (".test", ".example", ".invalid", ".localhost", ".local", ".example.com", ".example.net")

# SPF includes that authorise the big providers' outgoing servers, by SMTP host.
PROVIDER_INCLUDES = {
    "smtp.gmail.com": ("_spf.google.com",),
    "smtp.office365.com": ("spf.protection.outlook.com",),
    "smtp-mail.outlook.com": ("spf.protection.outlook.com",),
    "ssl0.ovh.net": ("mx.ovh.com",),
}

# Domains of public mailbox services: their owner publishes SPF and DMARC for its own servers,
# the company has nothing to configure there (and could not). Exact domains, plus every
# country domain of the services listed in PUBLIC_MAILBOX_PREFIXES (gmx.de, gmx.fr, yahoo.fr...).
PUBLIC_MAILBOX_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "outlook.fr",
        "hotmail.com",
        "hotmail.fr",
        "live.com",
        "live.fr",
        "msn.com",
        "yahoo.com",
        "ymail.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "web.de",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "sfr.fr",
        "neuf.fr",
        "bbox.fr",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "zoho.com",
        "mail.com",
        "yandex.com",
        "t-online.de",
    }
)
PUBLIC_MAILBOX_PREFIXES = ("gmx.", "yahoo.", "hotmail.", "outlook.", "live.")

# SPF states
SPF_PASS = "pass"  # the record authorises the mailbox's provider
SPF_NOT_LISTED = "not_listed"  # a record exists but does not name the provider
SPF_MISSING = "missing"
SPF_INVALID = "invalid"  # several v=spf1 records: receivers treat it as an error
# DMARC states
DMARC_MISSING = "missing"
DMARC_PRESENT = "present"
DMARC_INVALID = "invalid"
# overall
GOOD, WARNING, BAD, UNKNOWN = "good", "warning", "bad", "unknown"


class DnsLookupError(Exception):
    """DNS did not answer (timeout, server failure): nothing can be concluded."""


@dataclass
class Report:
    """Result of a deliverability check; ``level`` is good, warning, bad or unknown."""

    domain: str
    level: str
    spf: str | None = None
    dmarc: str | None = None
    dmarc_policy: str | None = None
    # "reserved", "no_domain" or "dns_error" when level is unknown; "public" (level good): a public
    # mailbox service's domain, nothing to configure
    reason: str | None = None
    detail: str | None = None


def sender_domain(email):
    """Return the lower-case domain of ``email``, or None."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().strip(".").lower()
    return domain or None


def is_reserved(domain):
    dotted = "." + domain
    return dotted.endswith(RESERVED_SUFFIXES + (".example.org",)) or domain in (
        "example.com",
        "example.net",
        "example.org",
    )


def is_public_mailbox(domain):
    """True for the domain of a public mailbox service (gmail.com, gmx.de...): nothing to configure there."""
    return domain in PUBLIC_MAILBOX_DOMAINS or domain.startswith(PUBLIC_MAILBOX_PREFIXES)


def spf_mechanism(smtp_host):
    """The SPF mechanism that authorises ``smtp_host``, or None when no record can name it.

    A provider's include; ``ip4:``/``ip6:`` for a public IP address (an ``include:`` needs a
    domain with an SPF record of its own); None for ``localhost`` and loopback or private
    addresses, whose mail reaches the Internet through another server.
    """
    host = (smtp_host or "").strip().lower().rstrip(".").strip("[]")
    if host in PROVIDER_INCLUDES:
        return "include:" + PROVIDER_INCLUDES[host][0]
    if not host or host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "include:" + host
    if not address.is_global:
        return None
    return ("ip4:" if address.version == 4 else "ip6:") + str(address)


@functools.lru_cache(maxsize=8)
def _resolver(nameservers, timeout):
    """A dnspython resolver with its own answer cache; ``nameservers`` is a tuple of ``(ip, port)``,
    else the system's. Shared by every check of that configuration (dnspython's resolver and
    cache are thread-safe)."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [ip for ip, _port in nameservers]
        resolver.port = nameservers[0][1]
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.cache = dns.resolver.LRUCache(CACHE_ANSWERS)
    return resolver


def parse_nameservers(value):
    """Parse ``"127.0.0.1:5353, ::1"`` into ``[("127.0.0.1", 5353), ("::1", 53)]``."""
    result = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        host, port = item, 53
        if item.startswith("["):  # [::1]:5353
            host, _sep, rest = item[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else 53
        elif item.count(":") == 1:
            host, port = item.split(":")
            port = int(port)
        ipaddress.ip_address(host)
        result.append((host, port))
    return result


def _txt(resolver, name):
    """Return the TXT strings of ``name`` ([] when it has none); DnsLookupError when DNS fails."""
    try:
        answer = resolver.resolve(name, "TXT", raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.YXDOMAIN) as error:
        raise DnsLookupError(f"{name}: {error}") from None
    except dns.exception.DNSException as error:
        raise DnsLookupError(f"{name}: {error}") from None
    if answer.rrset is None:
        return []
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer.rrset]


def _addresses(resolver, host):
    """IP addresses of ``host`` (itself when it is one); [] when it has none."""
    with contextlib.suppress(ValueError):
        return [ipaddress.ip_address(host)]
    found = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = resolver.resolve(host, rdtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.DNSException as error:
            raise DnsLookupError(f"{host}: {error}") from None
        if answer.rrset is not None:
            found.extend(ipaddress.ip_address(rdata.address) for rdata in answer.rrset)
    return found


def _spf_records(strings):
    return [s for s in strings if s.lower() == "v=spf1" or s.lower().startswith("v=spf1 ")]


def _in_domain(host, domain):
    host = (host or "").lower().rstrip(".")
    return host == domain or host.endswith("." + domain)


class _SpfWalk:
    """Follow include: and redirect= from a record, within SPF's lookup limit."""

    def __init__(self, resolver, domain, smtp_host):
        self.resolver = resolver
        self.domain = domain
        self.smtp_host = (smtp_host or "").lower().rstrip(".")
        self.expected = PROVIDER_INCLUDES.get(self.smtp_host, ())
        self.lookups = 0
        self._host_ips = None

    def host_ips(self):
        if self._host_ips is None:
            self._host_ips = _addresses(self.resolver, self.smtp_host) if self.smtp_host else []
        return self._host_ips

    def allows(self, record, current_domain):
        """True when ``record`` (of ``current_domain``) authorises the mailbox's server."""
        for term in record.split()[1:]:
            qualifier = term[0] if term[0] in "+-~?" else "+"
            mechanism = term.lstrip("+-~?").lower()
            name, _sep, value = mechanism.partition(":")
            if name.startswith("redirect="):
                name, value = "redirect", mechanism.split("=", 1)[1]
            if qualifier != "+" and name != "redirect":
                continue
            if name == "all":
                return True
            if name in ("ip4", "ip6") and value and self.smtp_host:
                try:
                    network = ipaddress.ip_network(value, strict=False)
                except ValueError:
                    continue
                if any(ip.version == network.version and ip in network for ip in self.host_ips()):
                    return True
            elif name in ("a", "mx") and _in_domain(self.smtp_host, value.split("/")[0] or current_domain):
                return True
            elif name in ("include", "redirect") and value:
                if value.rstrip(".") in self.expected:
                    return True
                if self.lookups >= MAX_SPF_LOOKUPS:
                    continue
                self.lookups += 1
                for nested in _spf_records(_txt(self.resolver, value))[:1]:
                    if self.allows(nested, value):
                        return True
        return False


def _report(domain, smtp_host, resolver):
    spf_strings = _spf_records(_txt(resolver, domain))
    report = Report(domain=domain, level=UNKNOWN)
    if not spf_strings:
        report.spf = SPF_MISSING
    elif len(spf_strings) > 1:
        report.spf = SPF_INVALID
    else:
        allowed = _SpfWalk(resolver, domain, smtp_host).allows(spf_strings[0], domain)
        report.spf = SPF_PASS if allowed else SPF_NOT_LISTED
    dmarc_strings = [s for s in _txt(resolver, f"_dmarc.{domain}") if s.lower().startswith("v=dmarc1")]
    if not dmarc_strings:
        report.dmarc = DMARC_MISSING
    elif len(dmarc_strings) > 1:
        report.dmarc = DMARC_INVALID
    else:
        report.dmarc = DMARC_PRESENT
        tags = dict(part.strip().split("=", 1) for part in dmarc_strings[0].split(";") if "=" in part)
        report.dmarc_policy = tags.get("p", "").strip().lower() or None
    if report.spf == SPF_PASS:
        report.level = GOOD if report.dmarc == DMARC_PRESENT else WARNING
    elif report.spf == SPF_NOT_LISTED:
        report.level = WARNING
    else:
        report.level = BAD
    return report


# failures only: dnspython's cache keeps answers, not timeouts or server failures
_failures = {}
_failures_lock = threading.Lock()


def clear_cache():
    """Forget every DNS answer and failure kept."""
    _resolver.cache_clear()
    with _failures_lock:
        _failures.clear()


def check(email, smtp_host, nameservers=None, timeout=3.0):
    """Return the deliverability Report of sending as ``email`` through ``smtp_host``; never raises."""
    domain = sender_domain(email)
    if not domain:
        return Report(domain="", level=UNKNOWN, reason="no_domain")
    if is_public_mailbox(domain):
        return Report(domain=domain, level=GOOD, reason="public")
    if is_reserved(domain) and not nameservers:
        return Report(domain=domain, level=UNKNOWN, reason="reserved")
    key = (domain, (smtp_host or "").lower(), tuple(nameservers or ()))
    now = time.monotonic()
    with _failures_lock:
        failure = _failures.get(key)
        if failure and failure[0] > now:
            return failure[1]
    try:
        return _report(domain, smtp_host, _resolver(tuple(nameservers or ()), timeout))
    except DnsLookupError as error:
        report = Report(domain=domain, level=UNKNOWN, reason="dns_error", detail=str(error))
    with _failures_lock:
        _failures[key] = (now + ERROR_CACHE_SECONDS, report)
    return report
