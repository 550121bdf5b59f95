"""A tiny authoritative DNS server on 127.0.0.1 (UDP) for the deliverability tests.

Built on dnspython's message API: answers TXT/A/AAAA from a dict, NXDOMAIN for
unknown names (negative answers carry an SOA, as real servers' do), and stays silent
for names listed in ``silent`` (to provoke timeouts). Counts the queries it receives.
"""

import socket
import threading

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

HOST = "127.0.0.1"
_SOA = "ns.test. hostmaster.test. 1 3600 600 86400 300"


class DnsServer:
    def __init__(self, records=None, silent=(), port=0):
        # records: {"name.": {"TXT": ["v=spf1 ..."], "A": ["192.0.2.1"]}}
        self.records = {self._key(name): value for name, value in (records or {}).items()}
        self.silent = {self._key(name) for name in silent}
        self.queries = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, port))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    @staticmethod
    def _key(name):
        return name.lower().rstrip(".") + "."

    @property
    def nameservers(self):
        return [(HOST, self.port)]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                wire, address = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                continue
            question = query.question[0]
            name = question.name.to_text().lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rdtype))
            if name in self.silent:
                continue
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            entry = self.records.get(name)
            if entry is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif entry.get(rdtype):
                values = entry[rdtype]
                if rdtype == "TXT":
                    values = [" ".join(f'"{chunk}"' for chunk in _chunks(value)) for value in values]
                response.answer.append(dns.rrset.from_text_list(question.name, 300, "IN", rdtype, values))
            if not response.answer:  # RFC 2308: a negative answer carries the SOA that bounds its caching
                response.authority.append(dns.rrset.from_text(question.name, 300, "IN", "SOA", _SOA))
            self._sock.sendto(response.to_wire(), address)


def _chunks(text, size=255):
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
