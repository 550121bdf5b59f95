"""lib/oauth.py and XOAUTH2 in lib/smtp.py against the loopback OAuth and SMTP servers (pure, no Odoo)."""

import base64
import json
import os
import sys
import time
import urllib.parse

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from pure_lib import lib

from oauth_server import MICROSOFT_INACTIVITY, OAuthServer
from oauth_smtp import XOAuth2ImapServer, XOAuth2SmtpServer
from smtp_servers import Pki, SmtpServer, closed_port

smtp = lib("smtp")
oauth = lib("oauth")
imap = lib("imap")

ACCOUNT = "billing@contoso.test"
REDIRECT = "http://127.0.0.1:8069/microsoft_outlook/confirm"


@pytest.fixture(scope="module")
def pki():
    with Pki() as value:
        yield value


@pytest.fixture(params=["microsoft", "google"])
def provider(request):
    with OAuthServer(request.param, accounts=[ACCOUNT]) as server:
        yield server


def token_url(server):
    return server.base_url + server.token_path


def sign_in(server, nonce="n-0", scope=oauth.MICROSOFT_SIGN_IN_SCOPE, account=ACCOUNT):
    """The browser part: the authorization URL, the sign-in, the code in the redirect."""
    query = urllib.parse.urlencode(
        {
            "client_id": server.client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": scope,
            "nonce": nonce,
        }
    )
    location = server.sign_in(server.base_url + server.authorize_path + "?" + query, account)
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))["code"]


def exchange(server, code, **extra):
    data = {
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        **extra,
    }
    return oauth.token_request(token_url(server), data, timeout=5)


def refresh(server, refresh_token, secret=None):
    data = {
        "client_id": server.client_id,
        "client_secret": secret or server.client_secret,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
    }
    return oauth.token_request(token_url(server), data, timeout=5)


def test_code_exchange_gives_tokens_and_a_verified_identity(provider):
    """The code grant returns refresh, access and an RS256 ID token whose signature, audience and nonce check out."""
    tokens = exchange(provider, sign_in(provider, nonce="nonce-42"))
    assert tokens["refresh_token"] and tokens["access_token"]
    keys = oauth.fetch_jwks(provider.base_url + provider.jwks_path, timeout=5)
    claims = oauth.verify_id_token(tokens["id_token"], keys, provider.client_id, "nonce-42")
    assert oauth.identity(provider.flavor, claims) == ACCOUNT


def test_id_token_checks_refuse_forgeries(provider):
    """A wrong nonce, another app's token, an expired one or a signature by another key are refused."""
    token = exchange(provider, sign_in(provider, nonce="good"))["id_token"]
    keys = oauth.fetch_jwks(provider.base_url + provider.jwks_path, timeout=5)
    with pytest.raises(oauth.IdentityError, match="nonce"):
        oauth.verify_id_token(token, keys, provider.client_id, "other")
    with pytest.raises(oauth.IdentityError, match="another application"):
        oauth.verify_id_token(token, keys, "someone-elses-app", "good")
    with pytest.raises(oauth.IdentityError, match="expired"):
        oauth.verify_id_token(token, keys, provider.client_id, "good", now=time.time() + 7200)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["preferred_username"] = claims["email"] = "ceo@contoso.test"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(oauth.IdentityError, match="signature"):
        oauth.verify_id_token(".".join((header, forged, signature)), keys, provider.client_id, "good")
    with OAuthServer(provider.flavor, accounts=[ACCOUNT]) as other:
        with pytest.raises(oauth.IdentityError, match="unknown key"):
            oauth.verify_id_token(token, oauth.fetch_jwks(other.base_url + other.jwks_path), provider.client_id, "good")


def test_refusals_are_classified_from_the_real_error_shapes(provider):
    """Revoked, consent withdrawn, account disabled and a wrong app secret each get their own reason."""
    first = exchange(provider, sign_in(provider))["refresh_token"]
    assert refresh(provider, first)["access_token"]
    with pytest.raises(oauth.OAuthError) as error:
        refresh(provider, first, secret="wrong-secret")
    assert error.value.reason == "oauth_client"
    if provider.flavor == "microsoft":
        provider.consent_required = True
        with pytest.raises(oauth.OAuthError) as error:
            refresh(provider, first)
        assert (error.value.reason, error.value.error) == ("consent_required", "invalid_grant")
        assert "AADSTS65001" in error.value.description
        provider.consent_required = False
        provider.disabled_accounts.add(ACCOUNT)
        with pytest.raises(oauth.OAuthError) as error:
            refresh(provider, first)
        assert error.value.reason == "account_disabled"
        provider.disabled_accounts.clear()
    provider.revoke(ACCOUNT)
    with pytest.raises(oauth.OAuthError) as error:
        refresh(provider, first)
    assert (error.value.reason, error.value.error) == ("token_revoked", "invalid_grant")


def test_microsoft_refresh_token_expires_after_90_days_unused():
    """AADSTS700082 (inactivity) is token_expired; a refresh within 90 days renews the window."""
    with OAuthServer("microsoft", accounts=[ACCOUNT]) as server:
        tokens = exchange(server, sign_in(server))
        grant = server.refresh_tokens[tokens["refresh_token"]]
        grant.last_used -= MICROSOFT_INACTIVITY + 60
        with pytest.raises(oauth.OAuthError) as error:
            refresh(server, tokens["refresh_token"])
        assert error.value.reason == "token_expired"
        assert "AADSTS700082" in error.value.description


def test_unreachable_token_endpoint_is_temporary():
    """No answer from the token endpoint is oauth_unavailable, a temporary reason for lib/smtp too."""
    with pytest.raises(oauth.OAuthError) as error:
        oauth.token_request("http://127.0.0.1:%d/token" % closed_port(), {"grant_type": "refresh_token"}, timeout=2)
    assert error.value.reason == "oauth_unavailable"
    assert smtp.is_temporary("oauth_unavailable")


@pytest.mark.parametrize(
    "body, reason",
    [
        (
            {"error": "invalid_grant", "error_description": "AADSTS50173: The provided grant has expired"},
            "token_revoked",
        ),
        ({"error": "invalid_grant", "error_codes": [700082]}, "token_expired"),
        ({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}, "token_revoked"),
        ({"error": "temporarily_unavailable"}, "oauth_unavailable"),
        ("<html>Bad gateway</html>", "oauth_unavailable"),
    ],
)
def test_classify_token_error(body, reason):
    """Error bodies (Microsoft codes, Google descriptions, outages) map to the reasons users read."""
    status = 502 if isinstance(body, str) else 400
    assert oauth.classify_token_error(status, body).reason == reason


def xoauth2_server(pki, oauth_server, **options):
    return XOAuth2SmtpServer(oauth_server, mode="starttls", cert=pki.leaf(), **options)


def test_xoauth2_login_sends_once_inside_tls(pki, provider):
    """XOAUTH2 goes after STARTTLS, in one attempt, and lets the mailbox send as itself."""
    tokens = exchange(provider, sign_in(provider))
    with xoauth2_server(pki, provider) as srv:
        smtp.verify(
            srv.host,
            srv.port,
            "starttls",
            ACCOUNT,
            None,
            ACCOUNT,
            access_token=tokens["access_token"],
            ca_pem=pki.ca_pem,
            timeout=5,
            deadline=10,
        )
        assert srv.auth_attempts == [("XOAUTH2", ACCOUNT, None)]
        assert srv.commands.index("STARTTLS") < srv.commands.index("AUTH")


def test_refused_tokens_are_decoded_into_reasons(pki, provider):
    """Gmail's JSON challenge and Microsoft's 535 5.7.3 both read token_invalid; nothing is retried."""
    tokens = exchange(provider, sign_in(provider))
    provider.revoke(ACCOUNT)
    with xoauth2_server(pki, provider) as srv:
        with pytest.raises(smtp.SmtpCheckError) as error:
            smtp.open_session(
                srv.host,
                srv.port,
                "starttls",
                ACCOUNT,
                access_token=tokens["access_token"],
                ca_pem=pki.ca_pem,
                timeout=5,
            )
        assert error.value.reason == "token_invalid"
        assert error.value.smtp_code == 535
        assert tokens["access_token"] not in str(error.value)
        assert srv.auth_attempts == [("XOAUTH2", ACCOUNT, "revoked")]


@pytest.mark.parametrize(
    "challenge, reason",
    [
        ({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}, "token_invalid"),
        ({"status": "invalid_token", "error_description": "The access token expired"}, "token_expired"),
        ({"status": "invalid_token", "error": "token revoked by the user"}, "token_revoked"),
        ({"status": "403", "scope": "https://mail.google.com/"}, "token_scope"),
    ],
)
def test_challenge_decoding(challenge, reason):
    """The JSON error challenge (base64-decoded) sent before the 535 names why the token was refused."""
    assert smtp._challenge_reason(json.dumps(challenge).encode()) == reason
    assert smtp._challenge_reason(b"not json !") == "token_invalid"


def test_xoauth2_needs_the_server_to_offer_it(pki):
    """A server without XOAUTH2 is no_auth: the token is never sent in another mechanism."""
    with SmtpServer(mode="starttls", cert=pki.leaf(), users={ACCOUNT: "pw-unused-1"}) as srv:
        with pytest.raises(smtp.SmtpCheckError) as error:
            smtp.open_session(srv.host, srv.port, "starttls", ACCOUNT, access_token="tok-123456", ca_pem=pki.ca_pem)
        assert error.value.reason == "no_auth"
        assert srv.auth_attempts == []


def test_imap_xoauth2_login_once_and_refusal(pki):
    """IMAP signs in with XOAUTH2 (one attempt; Gmail's error challenge answered empty) and reads the INBOX."""
    with OAuthServer("google", accounts=[ACCOUNT]) as provider, XOAuth2ImapServer(provider, pki.leaf()) as server:
        token = exchange(provider, sign_in(provider))["access_token"]
        imap.verify("127.0.0.1", server.port, ACCOUNT, access_token=token, ca_pem=pki.ca_pem, timeout=5)
        provider.revoke(ACCOUNT)
        with pytest.raises(imap.ImapCheckError) as error:
            imap.open_session("127.0.0.1", server.port, ACCOUNT, access_token=token, ca_pem=pki.ca_pem, timeout=5)
        assert error.value.reason == "auth_failed"
        assert token not in str(error.value)
        assert server.attempts == [(ACCOUNT, None), (ACCOUNT, "revoked")]
