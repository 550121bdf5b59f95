"""OAuth 2.0 pieces of own mailboxes that are not Odoo-specific.

Pure Python (no Odoo): the token request with errors classified into reasons a
person can act on, the check of an OpenID Connect ID token (RS256 against the
provider's published keys) and the XOAUTH2 SASL string. The Odoo side
(``models/smtp_invoicing_mailbox_oauth.py``) reuses the configuration, endpoints and
helpers of Odoo's ``microsoft_outlook`` and ``google_gmail`` modules and calls this.
"""

import base64
import binascii
import json
import re
import time

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# Scopes asked at sign-in: the SMTP permission, a refresh token, and the signed-in
# identity (``openid email``) that must be the mailbox's user name.
MICROSOFT_SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
MICROSOFT_SIGN_IN_SCOPE = "offline_access openid email profile " + MICROSOFT_SMTP_SCOPE
MICROSOFT_REFRESH_SCOPE = "offline_access " + MICROSOFT_SMTP_SCOPE
GOOGLE_MAIL_SCOPE = "https://mail.google.com/"
GOOGLE_SIGN_IN_SCOPE = "openid email " + GOOGLE_MAIL_SCOPE
# google_gmail has its URLs written in its code; these are the same, as defaults.
GOOGLE_AUTH_ENDPOINT = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"
GOOGLE_JWKS_URI = "https://www.googleapis.com/oauth2/v3/certs"

# Reasons of a refused token request (also lib/smtp reasons, so that the verification
# records them like any other failure); the first four need the owner to sign in again.
REASONS = (
    "token_expired",
    "token_revoked",
    "consent_required",
    "account_disabled",
    "oauth_client",
    "oauth_unavailable",
    "oauth_refused",
)
SIGN_IN_AGAIN_REASONS = frozenset({"token_expired", "token_revoked", "consent_required", "account_disabled"})
# Microsoft Entra error codes (AADSTS…) of a refresh that a new sign-in cures.
_MICROSOFT_CODES = {
    700082: "token_expired",  # refresh token expired after 90 days of inactivity
    700084: "token_expired",  # single-page-app refresh token lifetime
    50173: "token_revoked",  # grant revoked: password changed or reset, sessions revoked
    70008: "token_expired",  # grant expired or revoked
    70000: "token_revoked",  # invalid grant (revoked or malformed)
    65001: "consent_required",  # user or administrator has not consented to the app
    65004: "consent_required",  # user declined consent
    50057: "account_disabled",
    50053: "account_disabled",  # account locked
    50126: "oauth_refused",
    7000215: "oauth_client",  # invalid client secret
    7000222: "oauth_client",  # client secret expired
    700016: "oauth_client",  # application not found in the directory
    50011: "oauth_client",  # redirect URI mismatch
}
_CLOCK_SKEW = 300


class OAuthError(Exception):
    """A refused or failed token request: ``reason`` (one of REASONS), the provider's
    ``error`` code and description (never a token)."""

    def __init__(self, reason, error="", description="", status=None):
        if reason not in REASONS:
            raise ValueError("unknown OAuth reason %r" % (reason,))
        self.reason, self.error, self.description, self.status = reason, error or "", description or "", status
        super().__init__("%s: %s %s" % (reason, self.error, self.description.splitlines()[0] if description else ""))


class IdentityError(Exception):
    """The ID token is not valid for this sign-in (signature, audience, nonce, expiry)."""


def classify_token_error(status, body):
    """Return the OAuthError of a token endpoint's non-2xx answer ``body`` (parsed JSON or text).

    Microsoft answers ``{"error": "invalid_grant", "error_description": "AADSTS700082: …",
    "error_codes": [700082], …}``; Google ``{"error": "invalid_grant",
    "error_description": "Token has been expired or revoked."}``.
    """
    if not isinstance(body, dict):
        reason = "oauth_unavailable" if status is None or status >= 500 or status == 429 else "oauth_refused"
        return OAuthError(reason, "", str(body or "")[:200], status)
    error = str(body.get("error") or "")
    description = str(body.get("error_description") or "")
    codes = [code for code in body.get("error_codes") or () if isinstance(code, int)]
    codes += [int(code) for code in re.findall(r"AADSTS(\d+)", description)]
    for code in codes:
        if code in _MICROSOFT_CODES:
            return OAuthError(_MICROSOFT_CODES[code], error, description, status)
    if error in ("temporarily_unavailable", "server_error") or (status and (status >= 500 or status == 429)):
        return OAuthError("oauth_unavailable", error, description, status)
    if error in ("invalid_client", "unauthorized_client"):
        return OAuthError("oauth_client", error, description, status)
    if error == "consent_required":
        return OAuthError("consent_required", error, description, status)
    if error == "invalid_grant":
        lowered = description.lower()
        if "expired" in lowered and "revoked" not in lowered:
            return OAuthError("token_expired", error, description, status)
        return OAuthError("token_revoked", error, description, status)
    return OAuthError("oauth_refused", error, description, status)


def token_request(url, data, timeout=10):
    """POST a token request (form-encoded); return the JSON answer or raise OAuthError."""
    try:
        response = requests.post(url, data=data, timeout=timeout, headers={"Accept": "application/json"})
    except requests.RequestException as error:
        raise OAuthError("oauth_unavailable", type(error).__name__, "", None) from None
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if not response.ok:
        raise classify_token_error(response.status_code, body)
    if not isinstance(body, dict) or not body.get("access_token"):
        raise OAuthError("oauth_refused", "no_access_token", "the token endpoint answered without an access token")
    return body


def expiry(response, now=None):
    """Unix time at which the access token of a token ``response`` expires."""
    now = int(time.time() if now is None else now)
    try:
        return now + int(response.get("expires_in", 3600))
    except (TypeError, ValueError):
        return now + 3600


# --------------------------------------------------------------------------- ID tokens


def _b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fetch_jwks(url, timeout=10):
    """The provider's public signing keys (a JWKS document)."""
    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
        keys = response.json().get("keys")
    except (requests.RequestException, ValueError, AttributeError) as error:
        raise OAuthError("oauth_unavailable", "jwks", type(error).__name__) from None
    if not isinstance(keys, list):
        raise OAuthError("oauth_unavailable", "jwks", "no keys")
    return keys


def _public_key(jwk):
    if jwk.get("kty") != "RSA":
        raise IdentityError("unsupported key type")
    numbers = rsa.RSAPublicNumbers(int.from_bytes(_b64url(jwk["e"]), "big"), int.from_bytes(_b64url(jwk["n"]), "big"))
    return numbers.public_key()


def verify_id_token(id_token, keys, audience, nonce, now=None):
    """Return the claims of an RS256 ``id_token`` signed by one of ``keys`` (a JWKS list).

    Checks the signature, the audience (the app's client id), the expiry and the
    nonce of this sign-in. Raises IdentityError.
    """
    try:
        header_b64, payload_b64, signature_b64 = id_token.split(".")
        header = json.loads(_b64url(header_b64))
        claims = json.loads(_b64url(payload_b64))
        signature = _b64url(signature_b64)
    except (AttributeError, ValueError, binascii.Error) as error:
        raise IdentityError("malformed ID token") from error
    if header.get("alg") != "RS256" or not isinstance(claims, dict):
        raise IdentityError("unsupported ID token algorithm")
    candidates = [key for key in keys if isinstance(key, dict) and key.get("kid") == header.get("kid")]
    if not candidates:
        raise IdentityError("ID token signed with an unknown key")
    signed = (header_b64 + "." + payload_b64).encode("ascii")
    try:
        _public_key(candidates[0]).verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, KeyError, ValueError) as error:
        raise IdentityError("invalid ID token signature") from error
    now = time.time() if now is None else now
    audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    if audience not in audiences:
        raise IdentityError("ID token issued for another application")
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] + _CLOCK_SKEW < now:
        raise IdentityError("expired ID token")
    if nonce and claims.get("nonce") != nonce:
        raise IdentityError("ID token of another sign-in (nonce)")
    return claims


def identity(provider, claims):
    """The signed-in address of verified ID token ``claims``, lower-cased, or "".

    Microsoft: ``preferred_username`` (the account's sign-in name, the mailbox's SMTP
    user name), else ``email``. Google: ``email`` when Google verified it.
    """
    if provider == "microsoft":
        value = claims.get("preferred_username") or claims.get("email") or claims.get("upn") or ""
    else:
        value = claims.get("email") if claims.get("email_verified") in (True, "true") else ""
    return str(value or "").strip().lower()


def xoauth2_string(user, access_token):
    """The XOAUTH2 SASL initial response (before base64) of ``user`` with ``access_token``, for SMTP and IMAP."""
    return "user=%s\x01auth=Bearer %s\x01\x01" % (user, access_token)
