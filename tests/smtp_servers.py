"""Real SMTP/TCP servers on 127.0.0.1 for tests, and a throw-away PKI (no Odoo imports).

Everything binds to 127.0.0.1 explicitly, runs in daemon threads and stops on ``__exit__``.
"""

import base64
import binascii
import datetime
import email
import email.policy
import ipaddress
import os
import shutil
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult
from cryptography import x509
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
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

    async def smtp_AUTH(self, arg):
        self._owner._record("AUTH")
        if self._auth_require_tls and not self._tls_protocol:
            # Refused for lack of TLS, but record what crossed the wire in clear text.
            self._owner._record_cleartext_auth(arg)
        await super().smtp_AUTH(arg)


def _recording(name):
    async def method(self, arg):
        self._owner._record(name)
        await getattr(SMTP, "smtp_" + name)(self, arg)

    method.__name__ = "smtp_" + name
    return method


for _command in ("EHLO", "HELO", "STARTTLS", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"):
    setattr(_RecordingSMTP, "smtp_" + _command, _recording(_command))


class _Handler:
    def __init__(self, owner):
        self._owner = owner

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self._owner._lock:
            self._owner.mail_from_commands.append(address)
        if self._owner.mail_from_reply:
            return "%d %s" % self._owner.mail_from_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_DATA(self, server, session, envelope):
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
        return _RecordingSMTP(self._owner, self.handler, **self.SMTP_kwargs)

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """A real aiosmtpd server on 127.0.0.1 (context manager).

    mode: "starttls" (STARTTLS required before AUTH/MAIL), "ssl" (implicit TLS) or "plain".
    """

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
    ):
        if mode not in ("starttls", "ssl", "plain"):
            raise ValueError(mode)
        if mode != "plain" and cert is None:
            raise ValueError("mode %r needs cert=(cert_path, key_path)" % mode)
        self.mode, self.host, self.port = mode, HOST, None
        self.users = dict(users or {})
        self.auth_reply, self.mail_from_reply = auth_reply, mail_from_reply
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
    """Accepts TCP connections on 127.0.0.1 and never sends a byte."""


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


def closed_port():
    """A 127.0.0.1 port with nothing listening (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]
