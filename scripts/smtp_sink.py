"""Embedded local SMTP sink for the demo: STARTTLS on 2525 and implicit TLS on 2465.

With a DNS server on 127.0.0.1:2553 (UDP) publishing SPF and DMARC records for the
demo domain, so the mailbox form's deliverability hint has something to show.

Any password is accepted (Odoo still enforces the licensed user rule). Every
received mail is written as an .eml file and summarised on stdout. The CA of
the sink's certificate is written next to them so Odoo can trust it.

Two recipient addresses, used only by the customers that scripts/screenshots.py
adds, are refused at RCPT as a real server would: one for good (550 5.1.1, an
unknown mailbox), one for now (451 4.7.1, greylisting), so the screenshots show
an invoice that was not delivered and one that waits, produced by real sends.

Usage: python scripts/smtp_sink.py STATE_DIR
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from dns_server import DnsServer
from smtp_servers import Pki, SmtpServer

STARTTLS_PORT = int(os.environ.get("SMTP_SINK_PORT", "2525"))
SSL_PORT = int(os.environ.get("SMTP_SINK_SSL_PORT", "2465"))
DNS_PORT = int(os.environ.get("SMTP_SINK_DNS_PORT", "2553"))
DEMO_DNS = {
    "yourcompany.example.com": {"TXT": ["v=spf1 ip4:127.0.0.0/8 ~all"]},
    "_dmarc.yourcompany.example.com": {"TXT": ["v=DMARC1; p=quarantine"]},
}
# recipient -> the (code, text) refusing it at RCPT; see the docstring
REFUSED_RECIPIENTS = {
    "compta@papeterie-roux.example.com": (
        550,
        "5.1.1 <compta@papeterie-roux.example.com>: Recipient address rejected: User unknown",
    ),
    "factures@fromagerie-blanc.example.com": (
        451,
        "4.7.1 <factures@fromagerie-blanc.example.com>: Recipient address rejected: Greylisted, try again later",
    ),
}


class _AnyPassword(dict):
    """Every user name exists and every password matches."""

    class _Equal:
        def __eq__(self, other):
            return True

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return self._Equal()


def main(state_dir):
    os.makedirs(os.path.join(state_dir, "mails"), exist_ok=True)
    pki = Pki(ca_name="smtp_invoicing demo sink CA")
    with open(os.path.join(state_dir, "sink-ca.pem"), "w") as ca_file:
        ca_file.write(pki.ca_pem)
    cert = pki.leaf(hosts=("127.0.0.1", "localhost"))
    servers = [
        SmtpServer(
            mode="starttls", cert=cert, users=_AnyPassword(), port=STARTTLS_PORT, rcpt_replies=REFUSED_RECIPIENTS
        ),
        SmtpServer(mode="ssl", cert=cert, users=_AnyPassword(), port=SSL_PORT, rcpt_replies=REFUSED_RECIPIENTS),
    ]
    for server in servers:
        server.users = _AnyPassword()  # SmtpServer copies users into a plain dict
        server.start()
    dns = DnsServer(DEMO_DNS, port=DNS_PORT).__enter__()
    print(
        f"smtp sink: STARTTLS on 127.0.0.1:{STARTTLS_PORT}, SSL on 127.0.0.1:{SSL_PORT}, "
        f"DNS on 127.0.0.1:{DNS_PORT} (UDP), mails in {state_dir}/mails",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    seen = 0
    while not stop.is_set():
        received = [message for server in servers for message in server.messages]
        for number, message in enumerate(received[seen:], start=seen + 1):
            path = os.path.join(state_dir, "mails", f"{number:05d}.eml")
            with open(path, "wb") as eml:
                eml.write(message.content)
            print(
                f"smtp sink: mail {number} from {message.message['From']} (envelope {message.mail_from}) "
                f"to {', '.join(message.rcpt_tos)}: {message.message['Subject']} -> {path}",
                flush=True,
            )
        seen = len(received)
        time.sleep(0.5)
    for server in servers:
        server.stop()
    dns.__exit__(None, None, None)
    pki.cleanup()


if __name__ == "__main__":
    main(sys.argv[1])
