"""Mail servers that sign in with XOAUTH2 only (aiosmtpd SMTP, a small Gmail-like IMAP), checking
tokens with tests/oauth_server.py.

A refused token gets the reply of the real service: Gmail sends a base64 JSON error
challenge, waits for the client's empty line, then answers 535 5.7.8; Microsoft 365
answers 535 5.7.3 at once.
"""

import base64
import binascii
import json
import socket
import ssl
import threading

from aiosmtpd.smtp import MISSING, AuthResult

from smtp_servers import HOST, SmtpServer, _RecordingSMTP, server_context

GMAIL_CHALLENGE = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
GMAIL_REFUSAL = (
    "535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
    "535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1b2c3d4e5f6 - gsmtp"
)
MICROSOFT_REFUSAL = (
    "535 5.7.3 Authentication unsuccessful [PR3P191CA0012.EURP191.PROD.OUTLOOK.COM 2026-03-02T10:00:00.000Z]"
)


class _XOAuth2SMTP(_RecordingSMTP):
    async def auth_XOAUTH2(self, _server, args):
        """XOAUTH2 (Google's and Microsoft's SASL mechanism): ``user=…^Aauth=Bearer …^A^A``."""
        owner = self._owner
        if len(args) > 1:
            blob = args[1]
        else:
            response = await self.challenge_auth("")
            if response is MISSING:
                return AuthResult(success=False)
            blob = base64.b64encode(response).decode()
        try:
            fields = dict(
                part.split("=", 1) for part in base64.b64decode(blob, validate=True).decode().split("\x01") if part
            )
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except (ValueError, KeyError, binascii.Error, UnicodeError):
            return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode response")
        verdict = owner.oauth.check_access_token(token, user)
        with owner._lock:
            owner.auth_attempts.append(("XOAUTH2", user, verdict))
        if verdict is None:
            return AuthResult(success=True, auth_data=user)
        if owner.oauth.flavor == "google":
            await self.challenge_auth(json.dumps(GMAIL_CHALLENGE, separators=(",", ":")))
            return AuthResult(success=False, handled=False, message=GMAIL_REFUSAL)
        return AuthResult(success=False, handled=False, message=MICROSOFT_REFUSAL)


class XOAuth2SmtpServer(SmtpServer):
    """STARTTLS (or SSL) submission server offering ``AUTH XOAUTH2`` only (plus the
    password mechanisms listed in ``auth_mechanisms``), tokens checked against ``oauth``."""

    smtp_class = _XOAuth2SMTP

    def __init__(self, oauth, mode="starttls", cert=None, auth_mechanisms=(), **options):
        self.oauth = oauth
        super().__init__(mode=mode, cert=cert, auth_mechanisms=auth_mechanisms, **options)


class XOAuth2ImapServer:
    """A TLS IMAP server that, like Gmail, only takes AUTHENTICATE XOAUTH2: a refused token
    gets the base64 JSON error challenge, then ``NO [AUTHENTICATIONFAILED]``. Counts attempts."""

    def __init__(self, oauth, cert):
        self.oauth = oauth
        self.attempts = []
        self._context = server_context(cert)
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        try:
            with self._context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] Gimap ready\r\n")
                reader = tls.makefile("rb")
                for line in reader:
                    tag, command = line.split()[:2]
                    command = command.upper()
                    if command == b"CAPABILITY":
                        tls.sendall(b"* CAPABILITY IMAP4rev1 AUTH=XOAUTH2\r\n" + tag + b" OK done\r\n")
                    elif command == b"AUTHENTICATE":
                        tls.sendall(b"+ \r\n")
                        fields = dict(
                            part.split("=", 1)
                            for part in base64.b64decode(reader.readline().strip()).decode().split("\x01")
                            if part
                        )
                        user, token = fields.get("user"), fields.get("auth", "").removeprefix("Bearer ")
                        verdict = self.oauth.check_access_token(token, user)
                        self.attempts.append((user, verdict))
                        if verdict is None:
                            tls.sendall(tag + b" OK " + user.encode() + b" authenticated (Success)\r\n")
                            continue
                        challenge = base64.b64encode(json.dumps(GMAIL_CHALLENGE, separators=(",", ":")).encode())
                        tls.sendall(b"+ " + challenge + b"\r\n")
                        reader.readline()
                        tls.sendall(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n")
                    elif command in (b"SELECT", b"EXAMINE"):
                        tls.sendall(
                            b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] UIDs valid\r\n" + tag + b" OK [READ-ONLY] done\r\n"
                        )
                    else:
                        tls.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                        return
        except (OSError, ssl.SSLError, ValueError):
            return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._listener.close()
        self._thread.join(5)
