"""Real SMTP/TCP servers on 127.0.0.1 for tests, and a throw-away PKI (no Odoo imports).

Everything binds to 127.0.0.1 explicitly, runs in daemon threads and stops on ``__exit__``.
"""

import asyncio
import base64
import binascii
import datetime
import email
import email.policy
import hmac
import ipaddress
import os
import selectors
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult
from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
# Every password a loopback server accepts: conftest.py fails a test that logs one.
KNOWN_SECRETS = set()
BAD_CREDENTIALS = (
    "535 5.7.8 Username and Password not accepted. For more information, go to "
    "https://support.google.com/mail/?p=BadCredentials"
)


# --------------------------------------------------------------------------- PKI


def _key():
    return ec.generate_private_key(ec.SECP256R1(), default_backend())


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts):
    entries = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class Pki:
    """A test CA plus leaf certificates written as PEM files in a temporary directory.

    Usable as a context manager (or call ``cleanup()``) to delete the directory.
    """

    def __init__(self, ca_name="Test SMTP CA"):
        self.directory = tempfile.mkdtemp(prefix="smtp-pki-")
        self._count = 0
        self.ca_key = _key()
        now = datetime.datetime.utcnow()
        public = self.ca_key.public_key()
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name(ca_name))
            .issuer_name(_name(ca_name))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.ca_key, hashes.SHA256(), default_backend())
        )
        self.ca_pem = _pem(self.ca_cert).decode("ascii")
        self.ca_path = self._write("ca.pem", _pem(self.ca_cert))

    def _write(self, name, data):
        path = os.path.join(self.directory, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path

    def _issue(self, hosts, expired, self_signed):
        key = _key()
        now = datetime.datetime.utcnow()
        if expired:
            not_before, not_after = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
        else:
            not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
        subject = _name(hosts[0])
        issuer, signer = (subject, key) if self_signed else (self.ca_cert.subject, self.ca_key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(_san(hosts), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False
            )
        cert = builder.sign(signer, hashes.SHA256(), default_backend())
        self._count += 1
        cert_path = self._write("leaf%d.pem" % self._count, _pem(cert))
        key_path = self._write(
            "leaf%d.key" % self._count,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        return cert_path, key_path

    def leaf(self, hosts=(HOST,), expired=False):
        """(cert_path, key_path) of a server certificate signed by this CA."""
        return self._issue(tuple(hosts), expired, self_signed=False)

    def self_signed(self, hosts=(HOST,)):
        """(cert_path, key_path) of a self-signed server certificate, not from this CA."""
        return self._issue(tuple(hosts), False, self_signed=True)

    def wrong_host(self):
        """(cert_path, key_path) signed by this CA but only valid for other.example."""
        return self.leaf(hosts=("other.example",))

    def expired(self, hosts=(HOST,)):
        """(cert_path, key_path) signed by this CA but expired yesterday."""
        return self.leaf(hosts=hosts, expired=True)

    def cleanup(self):
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.cleanup()


def server_context(cert):
    """Server-side SSLContext for a (cert_path, key_path) pair."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    return context


# --------------------------------------------------------------------------- SMTP server


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list
    content: bytes
    message: object = field(repr=False)

    def __getitem__(self, key):  # dict-style access for convenience
        return getattr(self, key)


class _RecordingSMTP(SMTP):
    """aiosmtpd SMTP recording sessions, commands and AUTH attempts into its owner."""

    def __init__(self, owner, *args, **kwargs):
        self._owner = owner
        super().__init__(*args, **kwargs)

    def connection_made(self, transport):
        if self._original_transport is None:  # not the post-STARTTLS re-entry
            with self._owner._lock:
                self._owner.connections += 1
        super().connection_made(transport)

    def _reset_connection(self):
        """Hostile: drop the TCP connection with a RST, without answering."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    async def smtp_AUTH(self, arg):
        self._owner._record("AUTH")
        if self._owner.reset_on == "AUTH":
            return self._reset_connection()
        if self._auth_require_tls and not self._tls_protocol:
            # Refused for lack of TLS, but record what crossed the wire in clear text.
            self._owner._record_cleartext_auth(arg)
        await super().smtp_AUTH(arg)

    async def auth_PLAIN(self, server, args):
        """With ``rechallenge_auth``, hostile: takes the initial response, then keeps challenging,
        recording every answer (decoded) in ``auth_answers``; never accepts."""
        if not self._owner.rechallenge_auth:
            return await super().auth_PLAIN(server, args)
        answer = base64.b64decode(args[1]) if len(args) > 1 else b""
        for _round in range(8):
            with self._owner._lock:
                self._owner.auth_answers.append(answer)
            answer = await self.challenge_auth("again")
            if answer is MISSING or self.transport.is_closing():
                break
        return AuthResult(success=False, handled=False, message=BAD_CREDENTIALS)

    async def auth_CRAM__MD5(self, _server, args):
        """CRAM-MD5 (RFC 2195), only advertised when a test asks for it."""
        challenge = b"<%d.%d@mail.test>" % (os.getpid(), id(self))
        response = await self.challenge_auth(challenge)
        if response is MISSING:
            return AuthResult(success=False)
        user, _sep, digest = response.decode("utf-8", "replace").rpartition(" ")
        return self._owner._authenticate_cram(user, challenge, digest)


def _recording(name):
    async def method(self, arg):
        self._owner._record(name)
        if self._owner.reset_on == name:
            if name == "STARTTLS":  # accept, then break the TLS handshake
                await self.push("220 2.0.0 Ready to start TLS")
            return self._reset_connection()
        await getattr(SMTP, "smtp_" + name)(self, arg)

    method.__name__ = "smtp_" + name
    return method


for _command in ("EHLO", "HELO", "STARTTLS", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"):
    setattr(_RecordingSMTP, "smtp_" + _command, _recording(_command))


class _Handler:
    def __init__(self, owner):
        self._owner = owner

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self._owner.mail_from_delay and self._owner.mail_from_delay_count != 0:
            if self._owner.mail_from_delay_count is not None:
                self._owner.mail_from_delay_count -= 1
            await asyncio.sleep(self._owner.mail_from_delay)
        with self._owner._lock:
            self._owner.mail_from_commands.append(address)
        if self._owner.mail_from_reply:
            return "%d %s" % self._owner.mail_from_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._owner.rcpt_replies.get(address.lower())
        if reply:
            return "%d %s" % reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self._owner.drop_after_data:
            # the whole message arrived, but the connection breaks before the 250
            self._owner.drop_after_data -= 1
            server._reset_connection()
            return "421 4.4.2 connection dropped"
        if self._owner.data_reply:
            return "%d %s" % self._owner.data_reply
        content = envelope.original_content or envelope.content
        received = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            content=content,
            message=email.message_from_bytes(content, policy=email.policy.default),
        )
        with self._owner._lock:
            self._owner.messages.append(received)
        return "250 2.0.0 OK queued"


class _Controller(Controller):
    """Controller bound to an ephemeral port whose startup self-connection uses that port."""

    def __init__(self, owner, *args, **kwargs):
        self._owner = owner
        super().__init__(*args, **kwargs)

    def factory(self):
        return self._owner.smtp_class(self._owner, self.handler, **self.SMTP_kwargs)

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """A real aiosmtpd server on 127.0.0.1 (context manager).

    mode: "starttls" (STARTTLS required before AUTH/MAIL), "ssl" (implicit TLS) or "plain".
    Hostile behaviours: ``data_reply`` answers the message content with (code, text);
    ``reset_on`` ("STARTTLS", "AUTH", "MAIL", "DATA"...) resets the connection on that command
    (STARTTLS: after accepting it, i.e. during the TLS handshake); ``auth_mechanisms``
    restricts the advertised mechanisms among PLAIN, LOGIN and CRAM-MD5 (default PLAIN, LOGIN);
    ``mail_from_delay`` seconds pass before MAIL FROM is answered (a slow server), for the first
    ``mail_from_delay_count`` MAIL commands only when it is set;
    ``rcpt_replies`` maps a recipient address to the (code, text) refusing it at RCPT;
    ``drop_after_data`` resets that many connections after the message content arrived,
    before the server's reply (a connection dropped during DATA); ``rechallenge_auth`` answers
    every AUTH PLAIN response with one more challenge (``auth_answers`` records them).
    """

    smtp_class = _RecordingSMTP

    def __init__(
        self,
        mode="starttls",
        cert=None,
        users=None,
        auth_reply=None,
        mail_from_reply=None,
        advertise_auth_without_tls=False,
        hostname="mail.test",
        port=0,
        data_reply=None,
        reset_on=None,
        auth_mechanisms=("PLAIN", "LOGIN"),
        mail_from_delay=0,
        rcpt_replies=None,
        drop_after_data=0,
        mail_from_delay_count=None,
        rechallenge_auth=False,
    ):
        if mode not in ("starttls", "ssl", "plain"):
            raise ValueError(mode)
        if mode != "plain" and cert is None:
            raise ValueError("mode %r needs cert=(cert_path, key_path)" % mode)
        self.mode, self.host, self.port = mode, HOST, None
        self.users = dict(users or {})
        KNOWN_SECRETS.update(password for password in self.users.values() if password)
        self.auth_reply, self.mail_from_reply = auth_reply, mail_from_reply
        self.data_reply, self.reset_on, self.mail_from_delay = data_reply, reset_on, mail_from_delay
        self.rcpt_replies = {address.lower(): reply for address, reply in (rcpt_replies or {}).items()}
        self.drop_after_data = drop_after_data
        self.mail_from_delay_count = mail_from_delay_count
        self.rechallenge_auth, self.auth_answers = rechallenge_auth, []
        self.messages, self.auth_attempts, self.mail_from_commands, self.commands = [], [], [], []
        self.connections = 0
        self._lock = threading.Lock()
        kwargs = {
            "hostname": HOST,
            "port": port,
            "ready_timeout": 10.0,
            "server_hostname": hostname,
            "authenticator": self._authenticate,
            "timeout": 30,
            "auth_exclude_mechanism": [m for m in ("PLAIN", "LOGIN", "CRAM-MD5") if m not in auth_mechanisms],
        }
        if mode == "starttls":
            kwargs.update(tls_context=server_context(cert), require_starttls=True, auth_require_tls=True)
        elif mode == "ssl":
            # aiosmtpd only knows STARTTLS as "TLS"; implicit TLS is TLS too.
            kwargs.update(ssl_context=server_context(cert), auth_require_tls=False)
        else:
            kwargs.update(auth_require_tls=not advertise_auth_without_tls)
        self._controller = _Controller(self, _Handler(self), **kwargs)

    # recording ---------------------------------------------------------------
    def _record(self, command):
        with self._lock:
            self.commands.append(command)

    def _record_cleartext_auth(self, arg):
        parts = arg.split()
        mechanism = parts[0].upper() if parts else ""
        user = password = None
        if mechanism == "PLAIN" and len(parts) > 1:
            try:
                _authz, user, password = base64.b64decode(parts[1]).decode("utf-8", "replace").split("\0")
            except (ValueError, binascii.Error):
                pass
        elif mechanism == "LOGIN" and len(parts) > 1:
            try:
                user = base64.b64decode(parts[1]).decode("utf-8", "replace")
            except (ValueError, binascii.Error):
                pass
        with self._lock:
            self.auth_attempts.append((mechanism, user, password))

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        user = getattr(auth_data, "login", b"").decode("utf-8", "replace")
        password = getattr(auth_data, "password", None)
        password = password.decode("utf-8", "replace") if password is not None else None
        with self._lock:
            self.auth_attempts.append((mechanism, user, password))
        if self.auth_reply:
            return AuthResult(success=False, handled=False, message="%d %s" % self.auth_reply)
        if user in self.users and self.users[user] == password:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False, message=BAD_CREDENTIALS)

    def _authenticate_cram(self, user, challenge, digest):
        with self._lock:
            self.auth_attempts.append(("CRAM-MD5", user, None))
        if self.auth_reply:
            return AuthResult(success=False, handled=False, message="%d %s" % self.auth_reply)
        password = self.users.get(user)
        expected = password is not None and hmac.new(password.encode(), challenge, "md5").hexdigest()
        if expected and hmac.compare_digest(expected, digest):
            return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False, message=BAD_CREDENTIALS)

    # lifecycle ---------------------------------------------------------------
    def start(self):
        self._controller.start()
        self.port = self._controller.port
        with self._lock:  # forget the controller's own startup connection
            self.connections = 0
            self.commands.clear()
        return self

    def stop(self):
        self._controller.stop(no_assert=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


# --------------------------------------------------------------------------- raw TCP servers


class _TcpServer:
    """Accept loop on 127.0.0.1 in a daemon thread; subclasses handle each connection."""

    def __init__(self):
        self.host = HOST
        self._stop = threading.Event()
        self._sockets = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((HOST, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._sockets.append(conn)
            self._serve(conn)

    def _serve(self, conn):
        """Keep the connection open and silent."""

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(2)
        self._listener.close()
        for conn in self._sockets:
            try:
                conn.close()
            except OSError:
                pass


class SilentListener(_TcpServer):
    """Accepts TCP connections on 127.0.0.1 and never sends a byte.

    ``peak`` is the largest number of connections held open at once by clients that never
    sent a byte either (SMTP clients waiting for a greeting; a TLS probe, which sends its
    ClientHello, does not count): checks that ran side by side, not one after the other.
    ``reset_peak`` leaves out the connections accepted before it. One thread watches the
    listener and every connection (tests count the process's threads).
    """

    def __init__(self):
        super().__init__()
        self._selector = selectors.DefaultSelector()
        self._lives = {}  # connection -> [accepted, closed or None, spoke]
        self._since = 0.0

    def reset_peak(self):
        self._since = time.monotonic()

    @property
    def peak(self):
        events = []
        for accepted, closed, spoke in list(self._lives.values()):
            if not spoke and accepted >= self._since:
                events += [(accepted, 1), (closed if closed is not None else float("inf"), -1)]
        count = peak = 0
        for _when, step in sorted(events, key=lambda event: (event[0], event[1])):
            count += step
            peak = max(peak, count)
        return peak

    def _accept_loop(self):
        self._selector.register(self._listener, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _events in self._selector.select(0.1):
                if key.fileobj is self._listener:
                    try:
                        conn, _addr = self._listener.accept()
                    except (BlockingIOError, TimeoutError):
                        continue
                    except OSError:
                        return
                    self._sockets.append(conn)
                    self._lives[conn] = [time.monotonic(), None, False]
                    self._selector.register(conn, selectors.EVENT_READ)
                    continue
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                life = self._lives[key.fileobj]
                if data:
                    life[2] = True
                else:
                    life[1] = time.monotonic()
                    self._selector.unregister(key.fileobj)

    def __exit__(self, *exc_info):
        super().__exit__(*exc_info)
        self._selector.close()


class SlowGreetingServer(_TcpServer):
    """Greets in clear text only after ``delay`` seconds, then answers EHLO without STARTTLS.

    Records in ``greeted`` the connections it greeted.
    """

    def __init__(self, delay):
        super().__init__()
        self.delay = delay
        self.greeted = 0

    def _serve(self, conn):
        threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn):
        if self._stop.wait(self.delay):
            return
        try:
            conn.sendall(b"220 slow.test ESMTP\r\n")
            self.greeted += 1
            conn.settimeout(5)
            if conn.recv(512).upper().startswith(b"EHLO"):
                conn.sendall(b"250 slow.test\r\n")
                conn.recv(512)
        except OSError:
            return


class DripServer(_TcpServer):
    """Sends an endless multi-line 220 greeting one byte every ``interval`` seconds."""

    GREETING = b"220-drip.test ESMTP slowly getting ready\r\n"

    def __init__(self, interval=0.5):
        super().__init__()
        self.interval = interval

    def _serve(self, conn):
        threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        position = 0
        while not self._stop.wait(self.interval):
            try:
                conn.sendall(self.GREETING[position : position + 1])
            except OSError:
                return
            position = (position + 1) % len(self.GREETING)


class StripStarttlsProxy(_TcpServer):
    """A man in the middle: relays to ``upstream``, deletes STARTTLS from its EHLO replies
    and advertises AUTH instead, hoping for credentials in clear text.

    ``client_data`` holds every byte the client sent, to prove what crossed in clear text.
    """

    def __init__(self, upstream):
        super().__init__()
        self.upstream = upstream
        self.client_data = b""

    def _serve(self, conn):
        threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn):
        try:
            upstream = socket.create_connection((self.upstream.host, self.upstream.port), timeout=5)
        except OSError:
            conn.close()
            return
        self._sockets.append(upstream)

        def client_to_server():
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    break
                self.client_data += data
                try:
                    upstream.sendall(data)
                except OSError:
                    break
            try:
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=client_to_server, daemon=True).start()
        buffer = b""
        while True:
            try:
                data = upstream.recv(4096)
            except OSError:
                data = b""
            if not data:
                break
            buffer += data
            *lines, buffer = buffer.split(b"\r\n")
            kept = [line for line in lines if b"STARTTLS" not in line.upper()]
            if len(kept) < len(lines) and kept:  # an EHLO reply: pretend AUTH works in clear text
                kept.insert(len(kept) - 1, b"250-AUTH PLAIN LOGIN")
            if kept:
                # the last line of a multi-line reply must keep its "250 " form
                if lines and lines[-1][3:4] == b" " and kept[-1][3:4] == b"-":
                    kept[-1] = kept[-1][:3] + b" " + kept[-1][4:]
                try:
                    conn.sendall(b"".join(line + b"\r\n" for line in kept))
                except OSError:
                    break
        conn.close()


def closed_port():
    """A 127.0.0.1 port with nothing listening (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]
