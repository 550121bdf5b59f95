"""An aiosmtpd server that signs in with XOAUTH2 only, checking tokens with tests/oauth_server.py.

A refused token gets the reply of the real service: Gmail sends a base64 JSON error
challenge, waits for the client's empty line, then answers 535 5.7.8; Microsoft 365
answers 535 5.7.3 at once.
"""

import base64
import binascii
import json

from aiosmtpd.smtp import MISSING, AuthResult

from smtp_servers import SmtpServer, _RecordingSMTP

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
