"""Syntax checks for what an administrator types in an SMTP setting."""

import contextlib
import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
_FORBIDDEN = re.compile(r"[\r\n\x00]")


def has_control_chars(value):
    """True when ``value`` holds CR, LF or NUL, which could split mail headers."""
    return bool(value and _FORBIDDEN.search(value))


def one_line(value):
    """``value`` with CR, LF, NUL and Unicode line breaks turned into spaces, for a mail header."""
    return " ".join((value or "").splitlines()).replace("\x00", " ")


def is_valid_host(host):
    """True for an IPv4/IPv6 address or a DNS host name (IDN allowed)."""
    if not host or host != host.strip() or has_control_chars(host):
        return False
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return True
    try:
        ascii_host = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.split(".")
    return len(ascii_host) <= 253 and all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def is_valid_port(port):
    """True for a TCP port number."""
    return isinstance(port, int) and 1 <= port <= 65535
