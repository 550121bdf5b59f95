"""A real OAuth 2.0 / OpenID Connect authorization server on 127.0.0.1 for tests (no Odoo imports).

It speaks like Microsoft's identity platform (``flavor="microsoft"``: the
``/common/oauth2/v2.0/{authorize,token}`` and ``/common/discovery/v2.0/keys`` paths
that ``microsoft_outlook.endpoint`` points to) or like Google (``flavor="google"``):
the authorization-code and refresh-token grants, ID tokens signed RS256 with a key
made here, and the providers' real error shapes. Tests revoke, expire or withhold
consent on tokens, and the XOAUTH2 SMTP server (tests/oauth_smtp.py) asks it whether
an access token is good.
"""

import base64
import html
import http.server
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from smtp_servers import KNOWN_SECRETS

HOST = "127.0.0.1"
TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
MICROSOFT_INACTIVITY = 90 * 86400  # refresh tokens die after 90 days unused
ACCESS_LIFETIME = 3599


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(number):
    return _b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


@dataclass
class Grant:
    """One sign-in: the account, the client, and when its refresh token was last used."""

    account: str
    client_id: str
    last_used: float
    revoked: bool = False


def microsoft_error(code, error, text):
    """Microsoft Entra's error body (``AADSTS…`` in the description, the code in ``error_codes``)."""
    return {
        "error": error,
        "error_description": "AADSTS%d: %s\r\nTrace ID: 0a1b2c3d-0000-4000-8000-000000000000\r\n"
        "Correlation ID: 5e6f7a8b-0000-4000-8000-000000000000\r\nTimestamp: 2026-03-02 10:00:00Z" % (code, text),
        "error_codes": [code],
        "timestamp": "2026-03-02 10:00:00Z",
        "trace_id": "0a1b2c3d-0000-4000-8000-000000000000",
        "correlation_id": "5e6f7a8b-0000-4000-8000-000000000000",
        "error_uri": "https://login.microsoftonline.com/error?code=%d" % code,
    }


class OAuthServer:
    """The authorization server (context manager). ``accounts`` may sign in; tokens are
    random strings remembered here (and added to the log-leak checker's secrets)."""

    def __init__(self, flavor, client_id="odoo-app-id", client_secret="odoo-app-secret-7Hq2", accounts=()):
        if flavor not in ("microsoft", "google"):
            raise ValueError(flavor)
        self.flavor, self.client_id, self.client_secret = flavor, client_id, client_secret
        KNOWN_SECRETS.add(client_secret)
        self.accounts = {account.lower() for account in accounts}
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.codes, self.refresh_tokens, self.access_tokens = {}, {}, {}
        self.token_requests = []  # (grant_type, answer status)
        self.consent_required = False  # Microsoft AADSTS65001 on the next refresh
        self.disabled_accounts = set()
        # a browser on the sign-in page types this account and submits at once (Chromium tours)
        self.browser_account = None
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server._handle(self, "GET")

            def do_POST(self):
                server._handle(self, "POST")

        self._httpd = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = "http://%s:%s" % (HOST, self.port)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # urls ---------------------------------------------------------------------
    @property
    def microsoft_endpoint(self):
        """The value of ``microsoft_outlook.endpoint``."""
        return self.base_url + "/common/oauth2/v2.0/"

    @property
    def authorize_path(self):
        return "/common/oauth2/v2.0/authorize" if self.flavor == "microsoft" else "/o/oauth2/v2/auth"

    @property
    def token_path(self):
        return "/common/oauth2/v2.0/token" if self.flavor == "microsoft" else "/token"

    @property
    def jwks_path(self):
        return "/common/discovery/v2.0/keys" if self.flavor == "microsoft" else "/oauth2/v3/certs"

    def odoo_parameters(self):
        """ir.config_parameter values pointing Odoo's modules at this server, app credentials included."""
        if self.flavor == "microsoft":
            return {
                "microsoft_outlook.endpoint": self.microsoft_endpoint,
                "microsoft_outlook_client_id": self.client_id,
                "microsoft_outlook_client_secret": self.client_secret,
            }
        return {
            "smtp_invoicing.google_auth_endpoint": self.base_url + self.authorize_path,
            "smtp_invoicing.google_token_endpoint": self.base_url + self.token_path,
            "smtp_invoicing.google_jwks_uri": self.base_url + self.jwks_path,
            "google_gmail_client_id": self.client_id,
            "google_gmail_client_secret": self.client_secret,
        }

    # what tests do ------------------------------------------------------------
    def sign_in(self, authorize_url, account):
        """What the user's browser does on the sign-in page: returns the redirect URL with the code."""
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(authorize_url).query))
        return self._authorize(query, account)[1]

    def revoke(self, account):
        """The user withdraws Odoo's access (or changes their password): every token dies."""
        with self._lock:
            for grant in self.refresh_tokens.values():
                if grant.account == account.lower():
                    grant.revoked = True
            for token in self.access_tokens.values():
                if token["account"] == account.lower():
                    token["revoked"] = True

    def check_access_token(self, token, user):
        """None when ``token`` lets ``user`` send mail, else why not: expired, revoked or invalid."""
        with self._lock:
            data = self.access_tokens.get(token)
        if data is None or data["account"] != (user or "").lower():
            return "invalid"
        if data["revoked"]:
            return "revoked"
        if data["expires"] < time.time():
            return "expired"
        return None

    # protocol -----------------------------------------------------------------
    def _handle(self, request, method):
        path, _sep, query = request.path.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        if method == "POST":
            length = int(request.headers.get("Content-Length") or 0)
            params.update(urllib.parse.parse_qsl(request.rfile.read(length).decode()))
        if path == self.jwks_path and method == "GET":
            return self._send_json(request, 200, self._jwks())
        if path == self.authorize_path and method == "GET":
            return self._send_page(request, params)
        if path == self.authorize_path and method == "POST":
            status, location = self._authorize(params, params.get("login", ""))
            if status != 302:
                return self._send_json(request, status, {"error": location})
            request.send_response(302)
            request.send_header("Location", location)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return None
        if path == self.token_path and method == "POST":
            status, body = self._token(params)
            with self._lock:
                self.token_requests.append((params.get("grant_type"), status))
            return self._send_json(request, status, body)
        return self._send_json(request, 404, {"error": "not_found"})

    def _send_json(self, request, status, body):
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _send_page(self, request, params):
        """The sign-in page a browser sees (the Chromium tour types the account here)."""
        hidden = "".join(
            '<input type="hidden" name="%s" value="%s"/>' % (html.escape(k), html.escape(v)) for k, v in params.items()
        )
        page = (
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
            '<form method="post" action="%s">%s<label for="login">Account</label>'
            '<input id="login" name="login" value="%s"/><button type="submit" class="o_test_sign_in">Sign in</button>'
            "</form></body></html>"
        ) % (self.authorize_path, hidden, html.escape(self.browser_account or params.get("login_hint", "")))
        if self.browser_account:
            page = page.replace("</body>", "<script>document.forms[0].submit();</script></body>")
        data = page.encode()
        request.send_response(200)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _authorize(self, params, account):
        if params.get("client_id") != self.client_id or params.get("response_type") != "code":
            return 400, "unauthorized_client"
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            return 400, "invalid_request"
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.codes[code] = {
                "account": (account or "").strip().lower(),
                "redirect_uri": redirect_uri,
                "nonce": params.get("nonce"),
                "scope": params.get("scope", ""),
            }
        query = urllib.parse.urlencode({"code": code, "state": params.get("state", "")})
        return 302, "%s%s%s" % (redirect_uri, "&" if "?" in redirect_uri else "?", query)

    def _error(self, status, kind, text):
        """(status, body) of a refusal in the flavor's own shape."""
        if self.flavor == "microsoft":
            code, error = {
                "revoked": (50173, "invalid_grant"),
                "expired": (700082, "invalid_grant"),
                "consent": (65001, "invalid_grant"),
                "client": (7000215, "invalid_client"),
                "disabled": (50057, "invalid_grant"),
                "code": (70008, "invalid_grant"),
            }[kind]
            return status, microsoft_error(code, error, text)
        if kind == "client":
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        if kind == "code":
            return 400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
        return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}

    def _token(self, params):
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return self._error(401, "client", "Invalid client secret provided.")
        now = time.time()
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            with self._lock:
                code = self.codes.pop(params.get("code", ""), None)
            if not code or code["redirect_uri"] != params.get("redirect_uri") or code["account"] not in self.accounts:
                return self._error(400, "code", "The provided authorization code or refresh token has expired.")
            refresh = secrets.token_urlsafe(32)
            with self._lock:
                self.refresh_tokens[refresh] = Grant(code["account"], self.client_id, now)
            KNOWN_SECRETS.add(refresh)
            body = self._access(code["account"], now)
            body["refresh_token"] = refresh
            if "openid" in (params.get("scope") or code["scope"]).split() or self.flavor == "google":
                body["id_token"] = self._id_token(code["account"], code["nonce"], now)
            return 200, body
        if grant_type == "refresh_token":
            with self._lock:
                grant = self.refresh_tokens.get(params.get("refresh_token", ""))
            if grant is None or grant.revoked:
                return self._error(400, "revoked", "The provided grant has expired due to it being revoked.")
            if grant.account in self.disabled_accounts:
                return self._error(400, "disabled", "The user account is disabled.")
            if self.flavor == "microsoft" and now - grant.last_used > MICROSOFT_INACTIVITY:
                return self._error(
                    400, "expired", "The refresh token has expired due to inactivity. The token was issued on ..."
                )
            if self.consent_required:
                return self._error(
                    400, "consent", "The user or administrator has not consented to use the application."
                )
            grant.last_used = now
            body = self._access(grant.account, now)
            if self.flavor == "microsoft":  # Microsoft hands out a new refresh token at each refresh
                refresh = secrets.token_urlsafe(32)
                with self._lock:
                    self.refresh_tokens[refresh] = Grant(grant.account, self.client_id, now)
                KNOWN_SECRETS.add(refresh)
                body["refresh_token"] = refresh
            return 200, body
        return 400, {"error": "unsupported_grant_type"}

    def _access(self, account, now):
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.access_tokens[token] = {"account": account, "expires": now + ACCESS_LIFETIME, "revoked": False}
        KNOWN_SECRETS.add(token)
        scope = "https://outlook.office.com/SMTP.Send" if self.flavor == "microsoft" else "https://mail.google.com/"
        return {"token_type": "Bearer", "scope": scope, "expires_in": ACCESS_LIFETIME, "access_token": token}

    def _id_token(self, account, nonce, now):
        if self.flavor == "microsoft":
            claims = {
                "aud": self.client_id,
                "iss": "%s/%s/v2.0" % (self.base_url, TENANT),
                "iat": int(now),
                "nbf": int(now),
                "exp": int(now) + 3600,
                "name": account.split("@")[0].title(),
                "oid": secrets.token_hex(16),
                "preferred_username": account,
                "email": account,
                "sub": secrets.token_hex(16),
                "tid": TENANT,
                "ver": "2.0",
            }
        else:
            claims = {
                "iss": "https://accounts.google.com",
                "azp": self.client_id,
                "aud": self.client_id,
                "sub": str(secrets.randbits(64)),
                "email": account,
                "email_verified": True,
                "iat": int(now),
                "exp": int(now) + 3600,
            }
        if nonce:
            claims["nonce"] = nonce
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        signature = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def _jwks(self):
        numbers = self.key.public_key().public_numbers()
        return {
            "keys": [
                {"kty": "RSA", "use": "sig", "kid": self.kid, "n": _int_b64url(numbers.n), "e": _int_b64url(numbers.e)}
            ]
        }

    # lifecycle ----------------------------------------------------------------
    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._httpd.shutdown()
        self._httpd.server_close()
