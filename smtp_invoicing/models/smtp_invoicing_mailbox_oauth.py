import json
import logging
import secrets
import time

from markupsafe import Markup
from werkzeug.urls import url_encode, url_join

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL, email_normalize
from odoo.tools.misc import hash_sign, verify_hash_signed

from ..lib import crypto, oauth, smtp
from .smtp_invoicing_mailbox import OAUTH_KINDS
from .smtp_invoicing_mailbox_password import MissingSecret, secret_box

_logger = logging.getLogger(__name__)

AUTH_KINDS = [
    ("password", "User name and password"),
    ("microsoft", "Microsoft 365 (OAuth)"),
    ("google", "Gmail (OAuth)"),
]
STATE_SCOPE = "smtp_invoicing_oauth"
# An access token this close to its expiry is refreshed before use (seconds).
REFRESH_MARGIN = 300
MICROSOFT_HOSTS = frozenset({"smtp.office365.com", "smtp-mail.outlook.com", "smtp.outlook.com"})
SIGN_IN_REASONS = oauth.SIGN_IN_AGAIN_REASONS | {"token_invalid", "token_scope"}
BASIC_AUTH_REASONS = frozenset({"basic_auth_disabled"})
_TOKEN_COLUMNS = ("smtp_invoicing_oauth_refresh_enc", "smtp_invoicing_oauth_access_enc")
# a token that cannot be decrypted: missing or other key, or another row's token
_SECRET_ERRORS = (crypto.SecretError, ValueError)


class SmtpInvoicingMailbox(models.Model):
    """Own mailboxes that sign in with Microsoft 365 or Gmail (OAuth 2.0, XOAUTH2 for SMTP).

    Reused from Odoo's ``microsoft_outlook`` and ``google_gmail``: the app credentials of
    Settings (``microsoft_outlook_client_id``…, ``google_gmail_client_id``…), Microsoft's
    ``microsoft_outlook.endpoint`` (read by the mixin's ``_get_microsoft_endpoint`` on the
    mailbox's server), their redirect URLs and controllers (extended in
    ``controllers/main.py``). The mailbox delegates only fields to ``ir.mail_server``
    (``_inherits``), not the mixins' methods: its own ``_fetch_outlook_token`` and
    ``_fetch_gmail_token`` make the mixins' token requests but keep the provider's error
    code (see their docstrings). Not used: the mixins' clear token fields of the server,
    their ``_fetch_*_access_token``, ``_generate_*oauth2_string`` and ``_smtp_login``
    (core servers only: a mailbox's server keeps ``smtp_authentication = 'login'`` and the
    mailbox connects through ``lib/smtp``).

    The mailbox's owner (the licensed user whose address it is) connects it; the
    tokens are encrypted at rest like passwords, and the signed-in account must be the
    mailbox's user name.
    """

    _inherit = "smtp_invoicing.mailbox"

    smtp_invoicing_auth_kind = fields.Selection(
        AUTH_KINDS,
        string="Sign-in",
        default="password",
        help="How Odoo signs in to the mailbox: with its password (or App Password), or with the "
        "owner's Microsoft 365 or Google account (OAuth, no password stored).",
    )
    smtp_invoicing_oauth_refresh_enc = fields.Char(groups="base.group_system", copy=False)
    smtp_invoicing_oauth_access_enc = fields.Char(groups="base.group_system", copy=False)
    smtp_invoicing_oauth_expires = fields.Integer(groups="base.group_system", copy=False)
    smtp_invoicing_oauth_account = fields.Char(string="Signed-in Account", readonly=True, copy=False)
    smtp_invoicing_failure_reason = fields.Char(readonly=True, copy=False)
    smtp_invoicing_connected = fields.Boolean(string="Connected", compute="_compute_smtp_invoicing_connected")
    smtp_invoicing_awaiting_connection = fields.Boolean(
        string="Awaiting Connection",
        compute="_compute_smtp_invoicing_connected",
        search="_search_smtp_invoicing_awaiting_connection",
        help="Nobody has signed in or typed the password of this mailbox yet: its owner must connect it.",
    )
    smtp_invoicing_owner_id = fields.Many2one(
        "res.users", string="Owner", compute="_compute_smtp_invoicing_owner_id", compute_sudo=True
    )
    smtp_invoicing_sign_in_again = fields.Boolean(compute="_compute_smtp_invoicing_sign_in_again")
    smtp_invoicing_basic_auth_notice = fields.Boolean(
        string="Microsoft Basic Auth Ending", compute="_compute_smtp_invoicing_basic_auth_notice"
    )
    smtp_invoicing_connect_url = fields.Char(string="Connect Link", compute="_compute_smtp_invoicing_connect_url")
    smtp_invoicing_connection_notice = fields.Char(
        string="Sign-in Notice", compute="_compute_smtp_invoicing_connection_notice"
    )

    # ------------------------------------------------------------------
    # Computes
    # ------------------------------------------------------------------

    @api.depends(
        "smtp_invoicing_auth_kind",
        "smtp_invoicing_password_enc",
        "smtp_invoicing_oauth_refresh_enc",
    )
    def _compute_smtp_invoicing_connected(self):
        for server in self:
            secret = server.sudo()._smtp_invoicing_secret_column()
            server.smtp_invoicing_connected = bool(secret)
            server.smtp_invoicing_awaiting_connection = not secret

    def _search_smtp_invoicing_awaiting_connection(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(_("Unsupported search on Awaiting Connection."))
        self.env.cr.execute(
            """SELECT id FROM smtp_invoicing_mailbox
                WHERE CASE WHEN smtp_invoicing_auth_kind IN ('microsoft', 'google')
                      THEN smtp_invoicing_oauth_refresh_enc IS NULL ELSE smtp_invoicing_password_enc IS NULL END"""
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        positive = (operator == "=") == value
        return [("id", "in" if positive else "not in", ids)]

    def _compute_smtp_invoicing_owner_id(self):
        for server in self:
            owner = server._smtp_invoicing_licensed_user()
            server.smtp_invoicing_owner_id = owner or False

    @api.depends("verification_state", "smtp_invoicing_failure_reason", "smtp_invoicing_auth_kind")
    def _compute_smtp_invoicing_sign_in_again(self):
        for server in self:
            server.smtp_invoicing_sign_in_again = (
                server.smtp_invoicing_auth_kind in OAUTH_KINDS
                and server.verification_state == "failed"
                and server.smtp_invoicing_failure_reason in SIGN_IN_REASONS
            )

    @api.depends("smtp_invoicing_preset", "smtp_host", "smtp_invoicing_auth_kind", "smtp_invoicing_failure_reason")
    def _compute_smtp_invoicing_basic_auth_notice(self):
        for server in self:
            server.smtp_invoicing_basic_auth_notice = server._smtp_invoicing_is_microsoft_password()

    @api.depends("smtp_invoicing_auth_kind", "smtp_invoicing_awaiting_connection", "smtp_invoicing_sign_in_again")
    def _compute_smtp_invoicing_connection_notice(self):
        labels = dict(self._fields["smtp_invoicing_auth_kind"]._description_selection(self.env))
        for server in self:
            if server.smtp_invoicing_awaiting_connection:
                notice = _("Awaiting connection")
            elif server.smtp_invoicing_sign_in_again:
                notice = _("Sign in again")
            elif server.smtp_invoicing_basic_auth_notice:
                notice = _("Password: Microsoft ends it in December 2026, switch to OAuth")
            else:
                notice = labels.get(server.smtp_invoicing_auth_kind or "password")
            server.smtp_invoicing_connection_notice = notice

    def _compute_smtp_invoicing_connect_url(self):
        for server in self:
            server.smtp_invoicing_connect_url = (
                url_join(server.get_base_url(), "/smtp_invoicing/mailbox/%s/connect" % server.id)
                if server.id
                else False
            )

    def _smtp_invoicing_is_microsoft_password(self):
        """A Microsoft 365 mailbox still signing in with a password (Basic authentication)."""
        self.ensure_one()
        return bool(
            (self.smtp_invoicing_auth_kind or "password") == "password"
            and (
                self.smtp_invoicing_preset in ("microsoft365", "outlook")
                or (self.smtp_host or "").lower() in MICROSOFT_HOSTS
                or self.smtp_invoicing_failure_reason in BASIC_AUTH_REASONS
            )
        )

    def _smtp_invoicing_secret_column(self):
        """The encrypted secret this mailbox signs in with (password or refresh token), if any."""
        self.ensure_one()
        if self.smtp_invoicing_auth_kind in OAUTH_KINDS:
            return self.smtp_invoicing_oauth_refresh_enc
        return self.smtp_invoicing_password_enc

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------

    @api.onchange("smtp_invoicing_auth_kind")
    def _onchange_smtp_invoicing_auth_kind(self):
        for server in self:
            if server.smtp_invoicing_auth_kind == "microsoft" and server.smtp_invoicing_preset == "custom":
                server.smtp_invoicing_preset = "microsoft365"
                server._onchange_smtp_invoicing_preset()
            elif server.smtp_invoicing_auth_kind == "google" and server.smtp_invoicing_preset == "custom":
                server.smtp_invoicing_preset = "gmail"
                server._onchange_smtp_invoicing_preset()

    # ------------------------------------------------------------------
    # Tokens at rest
    # ------------------------------------------------------------------

    def _smtp_invoicing_token_context(self, column):
        return "%s:%s" % (self._smtp_invoicing_secret_context(), column)

    def _smtp_invoicing_store_tokens(self, refresh_token, access_token, expires):
        """Encrypt and save the tokens (a falsy ``refresh_token`` keeps the saved one).

        Plain SQL like the password: no ORM write, so no tracking, chatter or log sees them.
        """
        self.ensure_one()
        box = secret_box()
        refresh_enc = (
            box.encrypt(refresh_token, self._smtp_invoicing_token_context(_TOKEN_COLUMNS[0])) if refresh_token else None
        )
        access_enc = box.encrypt(access_token, self._smtp_invoicing_token_context(_TOKEN_COLUMNS[1]))
        self.env.cr.execute(
            """UPDATE smtp_invoicing_mailbox
                  SET smtp_invoicing_oauth_refresh_enc = COALESCE(%s, smtp_invoicing_oauth_refresh_enc),
                      smtp_invoicing_oauth_access_enc = %s, smtp_invoicing_oauth_expires = %s
                WHERE id = %s""",
            (refresh_enc, access_enc, int(expires), self.id),
        )
        self.invalidate_recordset([*_TOKEN_COLUMNS, "smtp_invoicing_oauth_expires"])

    def _smtp_invoicing_token(self, column):
        self.ensure_one()
        token = self.sudo()[column]
        if not token:
            return False
        try:
            return secret_box().decrypt(token, self._smtp_invoicing_token_context(column))
        except _SECRET_ERRORS as error:
            _logger.warning("OAuth token of mailbox %s cannot be decrypted: %s", self.id, error)
            raise MissingSecret(self._smtp_invoicing_sign_in_message()) from None

    def _smtp_invoicing_forget_access_token(self):
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_oauth_access_enc = NULL, smtp_invoicing_oauth_expires = 0"
            " WHERE id IN %s",
            [tuple(self.ids)],
        )
        self.invalidate_recordset([_TOKEN_COLUMNS[1], "smtp_invoicing_oauth_expires"])

    def _smtp_invoicing_forget_secret(self):
        """Erase every secret of these mailboxes (password and tokens) and who signed in."""
        self.env.cr.execute(
            """UPDATE smtp_invoicing_mailbox
                  SET smtp_invoicing_password_enc = NULL,
                      smtp_invoicing_oauth_refresh_enc = NULL, smtp_invoicing_oauth_access_enc = NULL,
                      smtp_invoicing_oauth_expires = 0, smtp_invoicing_oauth_account = NULL
                WHERE id IN %s""",
            [tuple(self.ids)],
        )
        self.invalidate_recordset(
            [
                "smtp_invoicing_password_enc",
                *_TOKEN_COLUMNS,
                "smtp_invoicing_oauth_expires",
                "smtp_invoicing_oauth_account",
            ]
        )

    @api.model
    def _smtp_invoicing_reencrypt_passwords(self):
        """Key rotation covers the OAuth tokens too."""
        rotated = super()._smtp_invoicing_reencrypt_passwords()
        box = secret_box()
        for column in _TOKEN_COLUMNS:
            name = SQL.identifier(column)
            self.env.cr.execute(SQL("SELECT id, %s FROM smtp_invoicing_mailbox WHERE %s IS NOT NULL", name, name))
            for server_id, token in self.env.cr.fetchall():
                try:
                    new_token = box.rotate(token)
                except _SECRET_ERRORS:
                    _logger.warning("Mailbox %s: OAuth token not re-encrypted, no key decrypts it", server_id)
                    continue
                self.env.cr.execute(
                    SQL("UPDATE smtp_invoicing_mailbox SET %s = %s WHERE id = %s", name, new_token, server_id)
                )
        self.invalidate_model(list(_TOKEN_COLUMNS))
        return rotated

    # ------------------------------------------------------------------
    # Provider configuration (microsoft_outlook / google_gmail)
    # ------------------------------------------------------------------

    def _smtp_invoicing_oauth_config(self):
        """Client id, client secret and redirect URL of the provider's app, as configured in
        Settings for Odoo's Outlook or Gmail integration; UserError when missing."""
        self.ensure_one()
        params = self.env["ir.config_parameter"].sudo()
        base_url = self.get_base_url()
        if self.smtp_invoicing_auth_kind == "microsoft":
            client_id = params.get_param("microsoft_outlook_client_id")
            client_secret = params.get_param("microsoft_outlook_client_secret")
            redirect_uri = url_join(base_url, "/microsoft_outlook/confirm")
            provider = _("Microsoft (Outlook)")
        else:
            client_id = params.get_param("google_gmail_client_id")
            client_secret = params.get_param("google_gmail_client_secret")
            redirect_uri = url_join(base_url, "/google_gmail/confirm")
            provider = _("Google (Gmail)")
        if not client_id or not client_secret:
            raise UserError(
                _(
                    "Sign-in with %(provider)s is not set up: a Settings administrator enters the app's client ID "
                    "and secret in Settings › General Settings › Integrations.",
                    provider=provider,
                )
            )
        return {"client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri}

    def _smtp_invoicing_google_endpoint(self, key, default):
        """google_gmail writes Google's URLs in its code; own mailboxes read them from
        ``smtp_invoicing.google_<key>`` (default: Google's), like microsoft_outlook.endpoint."""
        return self.env["ir.config_parameter"].sudo().get_param("smtp_invoicing.google_%s" % key, default)

    def _smtp_invoicing_jwks_uri(self):
        if self.smtp_invoicing_auth_kind == "microsoft":
            # https://login.microsoftonline.com/common/oauth2/v2.0/ → …/common/discovery/v2.0/keys
            return url_join(self._get_microsoft_endpoint(), "../../discovery/v2.0/keys")
        return self._smtp_invoicing_google_endpoint("jwks_uri", oauth.GOOGLE_JWKS_URI)

    def _get_microsoft_endpoint(self):
        return self.mail_server_id._get_microsoft_endpoint()

    def _fetch_outlook_token(self, grant_type, **values):
        """The same request as microsoft_outlook's (its endpoint, app and redirect URL), but a
        refusal keeps Microsoft's error code (``oauth.OAuthError``): a revoked consent, an expiry
        from disuse or an outage need different words and actions, which the mixin's single
        UserError cannot tell apart."""
        self.ensure_one()
        config = self._smtp_invoicing_oauth_config()
        data = {
            "client_id": config["client_id"],
            "client_secret": config["client_secret"],
            "scope": oauth.MICROSOFT_REFRESH_SCOPE,
            "redirect_uri": config["redirect_uri"],
            "grant_type": grant_type,
            **values,
        }
        return oauth.token_request(url_join(self._get_microsoft_endpoint(), "token"), data, timeout=10)

    def _fetch_gmail_token(self, grant_type, **values):
        """The same request as google_gmail's, but to the configurable token endpoint and keeping
        Google's error code (google_gmail raises one UserError without it, and its URL cannot be
        changed)."""
        self.ensure_one()
        config = self._smtp_invoicing_oauth_config()
        data = {
            "client_id": config["client_id"],
            "client_secret": config["client_secret"],
            "grant_type": grant_type,
            "redirect_uri": config["redirect_uri"],
            **values,
        }
        url = self._smtp_invoicing_google_endpoint("token_endpoint", oauth.GOOGLE_TOKEN_ENDPOINT)
        return oauth.token_request(url, data, timeout=10)

    # ------------------------------------------------------------------
    # Sign-in: authorization URL, code exchange, identity
    # ------------------------------------------------------------------

    def _smtp_invoicing_authorize_url(self, user):
        """The provider's sign-in page for ``user`` connecting this mailbox.

        ``state`` is signed, expires in an hour and names the mailbox, the user and a
        nonce that the ID token must carry back (CSRF and replay protection).
        """
        self.ensure_one()
        config = self._smtp_invoicing_oauth_config()
        nonce = secrets.token_urlsafe(16)
        signed = hash_sign(
            self.env(su=True),
            STATE_SCOPE,
            {"server": self.id, "user": user.id, "kind": self.smtp_invoicing_auth_kind, "nonce": nonce},
            expiration_hours=1,
        )
        # a JSON object, as microsoft_outlook's and google_gmail's controllers parse it
        state = json.dumps({"smtp_invoicing": signed})
        params = {
            "client_id": config["client_id"],
            "redirect_uri": config["redirect_uri"],
            "response_type": "code",
            "state": state,
            "nonce": nonce,
            "login_hint": self.sudo().smtp_user,
        }
        if self.smtp_invoicing_auth_kind == "microsoft":
            params.update(response_mode="query", scope=oauth.MICROSOFT_SIGN_IN_SCOPE, prompt="select_account")
            return url_join(self._get_microsoft_endpoint(), "authorize?%s" % url_encode(params))
        # access_type and prompt: Google only gives a refresh token with them
        params.update({"scope": oauth.GOOGLE_SIGN_IN_SCOPE, "access_type": "offline", "prompt": "consent"})
        base = self._smtp_invoicing_google_endpoint("auth_endpoint", oauth.GOOGLE_AUTH_ENDPOINT)
        return "%s?%s" % (base, url_encode(params))

    @api.model
    def _smtp_invoicing_read_state(self, signed):
        """The values of a ``state`` made by ``_smtp_invoicing_authorize_url``, or None."""
        try:
            return verify_hash_signed(self.env(su=True), STATE_SCOPE, signed or "")
        except (ValueError, TypeError, UnicodeError):
            return None

    def _smtp_invoicing_complete_sign_in(self, code, nonce, user):
        """Exchange the authorization ``code``, check who signed in, save the tokens, verify.

        Returns None, or the message refusing the sign-in (another account, or a failure
        of the provider). Called by the provider's redirect (controllers/main.py).
        """
        self.ensure_one()
        server = self.sudo()
        try:
            if server.smtp_invoicing_auth_kind == "microsoft":
                response = server._fetch_outlook_token(
                    "authorization_code", code=code, scope=oauth.MICROSOFT_SIGN_IN_SCOPE
                )
            else:
                response = server._fetch_gmail_token("authorization_code", code=code)
            keys = oauth.fetch_jwks(server._smtp_invoicing_jwks_uri())
            claims = oauth.verify_id_token(
                response.get("id_token") or "", keys, server._smtp_invoicing_oauth_config()["client_id"], nonce
            )
        except oauth.OAuthError as error:
            _logger.info("Mailbox %s: sign-in refused (%s %s)", server.id, error.reason, error.error)
            return server._smtp_invoicing_reason_message(smtp.SmtpCheckError(error.reason, detail=error.error))
        except oauth.IdentityError as error:
            _logger.warning("Mailbox %s: sign-in with an invalid ID token (%s)", server.id, error)
            return _("The sign-in could not be confirmed (%(detail)s). Try again.", detail=str(error))
        except UserError as error:
            return error.args[0]
        account = oauth.identity(server.smtp_invoicing_auth_kind, claims)
        expected = email_normalize(server.smtp_user or "") or ""
        if not account or account != expected:
            _logger.info("Mailbox %s: sign-in as another account refused", server.id)
            server._message_log(
                body=_(
                    "%(user)s signed in as %(account)s instead of %(expected)s: refused, nothing was saved.",
                    user=user.name,
                    account=account or _("an unknown account"),
                    expected=expected,
                )
            )
            return _(
                "You signed in as %(account)s, but this mailbox is %(expected)s. Sign out of %(account)s at the "
                "provider, then sign in again with %(expected)s.",
                account=account or _("an unknown account"),
                expected=expected,
            )
        if not response.get("refresh_token"):
            return _(
                "The provider gave no lasting access (no refresh token). Sign in again and accept every permission."
            )
        server._smtp_invoicing_store_tokens(response["refresh_token"], response["access_token"], oauth.expiry(response))
        server.write({"smtp_invoicing_oauth_account": account, "smtp_invoicing_failure_reason": False})
        server._smtp_invoicing_connected_by(user, account)
        return None

    def _smtp_invoicing_connected_by(self, user, account=None):
        """The owner (or an administrator) connected the mailbox: log it, close the owner's
        to-do, and queue the verification."""
        self.ensure_one()
        self._message_log(
            body=_("Connected by %(user)s as %(account)s.", user=user.name, account=account)
            if account
            else _("Password entered by %(user)s.", user=user.name)
        )
        self._smtp_invoicing_connect_activities().action_feedback(feedback=_("Connected."))
        self.action_verify()

    # ------------------------------------------------------------------
    # Credentials: the access token, refreshed when needed
    # ------------------------------------------------------------------

    def _smtp_invoicing_credentials(self):
        """OAuth mailboxes log in with an access token (XOAUTH2), refreshed when expired.

        Raises UserError when nobody has signed in, or SmtpCheckError when the provider
        refused the refresh (``token_revoked``…) or could not be reached (``oauth_unavailable``).
        """
        self.ensure_one()
        if self.smtp_invoicing_auth_kind not in OAUTH_KINDS:
            return super()._smtp_invoicing_credentials()
        return {"user": self.sudo().smtp_user, "password": None, "access_token": self._smtp_invoicing_access_token()}

    def _smtp_invoicing_access_token(self, force_refresh=False):
        """A valid access token; refreshed (``_fetch_outlook_token``, ``_fetch_gmail_token``) when
        it expires in less than REFRESH_MARGIN (the new tokens are saved encrypted at once)."""
        self.ensure_one()
        server = self.sudo()
        expires = server.smtp_invoicing_oauth_expires or 0
        if not force_refresh and expires - time.time() > REFRESH_MARGIN:
            access = server._smtp_invoicing_token(_TOKEN_COLUMNS[1])
            if access:
                return access
        refresh = server._smtp_invoicing_token(_TOKEN_COLUMNS[0])
        if not refresh:
            raise MissingSecret(server._smtp_invoicing_sign_in_message())
        try:
            if server.smtp_invoicing_auth_kind == "microsoft":
                response = server._fetch_outlook_token("refresh_token", refresh_token=refresh)
                new_refresh = response["refresh_token"]
            else:
                response = server._fetch_gmail_token("refresh_token", refresh_token=refresh)
                new_refresh = None  # Google keeps the same refresh token
            access, expires = response["access_token"], int(time.time()) + int(response["expires_in"])
        except oauth.OAuthError as error:
            _logger.info("Mailbox %s: token refresh refused (%s %s)", server.id, error.reason, error.error)
            raise smtp.SmtpCheckError(error.reason, detail=error.error) from None
        server._smtp_invoicing_store_tokens(new_refresh, access, expires)
        _logger.info("Mailbox %s: access token refreshed", server.id)
        return access

    def _smtp_invoicing_kind_label(self):
        """The sign-in kind as the user reads it, in their language."""
        labels = dict(self._fields["smtp_invoicing_auth_kind"]._description_selection(self.env))
        return labels.get(self.smtp_invoicing_auth_kind or "password", "")

    def _smtp_invoicing_sign_in_message(self):
        return _(
            "%(owner)s must sign in to “%(name)s” with %(provider)s: open the mailbox's connect page.",
            owner=self.smtp_invoicing_owner_id.name or self.sudo().smtp_user or _("The mailbox owner"),
            name=self.name,
            provider=self._smtp_invoicing_kind_label(),
        )

    # ------------------------------------------------------------------
    # Verification: failures, their words and who must act
    # ------------------------------------------------------------------

    def _smtp_invoicing_note_failure(self, error):
        """Remember why the last check or connection failed (``SmtpCheckError`` reason or
        False); a token the mail server refused is not used again."""
        self.ensure_one()
        reason = error.reason if isinstance(error, smtp.SmtpCheckError) else False
        if reason and reason.startswith("token_") and self.smtp_invoicing_auth_kind in OAUTH_KINDS:
            self._smtp_invoicing_forget_access_token()
        if self.smtp_invoicing_failure_reason != reason:
            self.smtp_invoicing_failure_reason = reason

    def _smtp_invoicing_record_verification(self, error=None, notes=None):
        """Also note the failure's reason (Sign in again, switch to OAuth)."""
        self._smtp_invoicing_note_failure(error)
        return super()._smtp_invoicing_record_verification(error, notes=notes)

    def _smtp_invoicing_owner_reasons(self):
        """A sign-in that no longer works is the owner's to renew."""
        return super()._smtp_invoicing_owner_reasons() | SIGN_IN_REASONS | {"oauth_refused"}

    def _smtp_invoicing_no_secret_message(self):
        """An OAuth mailbox nobody signed in to: its owner signs in."""
        if self.smtp_invoicing_auth_kind in OAUTH_KINDS:
            return self._smtp_invoicing_sign_in_message()
        return super()._smtp_invoicing_no_secret_message()

    def _smtp_invoicing_reason_message(self, error):
        """Words for the OAuth reasons; the others as before."""
        owner = self.smtp_invoicing_owner_id.name or self.sudo().smtp_user
        provider = _("Microsoft") if self.smtp_invoicing_auth_kind == "microsoft" else _("Google")
        params = {"owner": owner, "user": self.sudo().smtp_user, "provider": provider, "detail": error.detail}
        messages = {
            "token_invalid": _(
                "The mail server refused the sign-in of %(user)s (it was withdrawn or has expired). "
                "%(owner)s must sign in again.",
                **params,
            ),
            "token_expired": _(
                "The sign-in of %(user)s with %(provider)s has expired (unused for too long, or its password was "
                "changed). %(owner)s must sign in again.",
                **params,
            ),
            "token_revoked": _(
                "The access of Odoo to %(user)s was withdrawn at %(provider)s (password changed, sessions ended or "
                "permission removed). %(owner)s must sign in again.",
                **params,
            ),
            "token_scope": _(
                "%(provider)s did not give Odoo the permission to send mail as %(user)s. %(owner)s must sign in "
                "again and accept the permission to send email.",
                **params,
            ),
            "consent_required": _(
                "%(provider)s asks for consent to let Odoo send mail as %(user)s. Your %(provider)s administrator "
                "must grant consent to the app (or %(owner)s accepts it when signing in again).",
                **params,
            ),
            "account_disabled": _(
                "The account %(user)s is disabled or locked at %(provider)s. Once it is unlocked, %(owner)s must "
                "sign in again.",
                **params,
            ),
            "oauth_client": _(
                "%(provider)s refused the app configured in Odoo (client ID or secret wrong or expired, or "
                "redirect URL not registered). A Settings administrator must check the app in Settings › "
                "Integrations. (%(detail)s)",
                **params,
            ),
            "oauth_unavailable": _("The sign-in service of %(provider)s could not be reached.", **params),
            "oauth_refused": _(
                "%(provider)s refused to renew the sign-in of %(user)s (%(detail)s). %(owner)s must sign in again.",
                **params,
            ),
        }
        return messages.get(error.reason) or super()._smtp_invoicing_reason_message(error)

    # ------------------------------------------------------------------
    # The owner connects: to-dos, actions, access
    # ------------------------------------------------------------------

    def _smtp_invoicing_connect_activities(self):
        """The owner's to-dos on this mailbox: connecting it is what they ask for."""
        return self.activity_ids.filtered(
            lambda activity: (
                activity.activity_type_id == self._smtp_invoicing_activity_type()
                and activity.user_id == self.smtp_invoicing_owner_id
            )
        )

    def _smtp_invoicing_connect_summary(self):
        return _("Connect your mailbox")

    def _smtp_invoicing_ask_owner(self, reason=None, summary=None):
        """Give the owner a to-do (and its notification) with the connect link, once."""
        for server in self.sudo():
            owner = server.smtp_invoicing_owner_id
            if not owner or server._smtp_invoicing_connect_activities():
                continue
            link = server.smtp_invoicing_connect_url
            if server.smtp_invoicing_auth_kind in OAUTH_KINDS:
                what = _("sign in with your %(provider)s account", provider=server._smtp_invoicing_kind_label())
            else:
                what = _("type the (App) password of the mailbox")
            text = _(
                "%(reason)s Odoo sends invoices from %(email)s. To connect it, %(what)s on this page:",
                reason=reason or _("Your mailbox is waiting for you."),
                email=server.sender_email,
                what=what,
            )
            note = Markup('<p>%s</p><p><a href="%s">%s</a></p>') % (text, link, link)
            server.activity_schedule(
                activity_type_id=server._smtp_invoicing_activity_type().id,
                summary=summary or server._smtp_invoicing_connect_summary(),
                note=note,
                user_id=owner.id,
            )

    def _smtp_invoicing_check_connect_access(self, user):
        """Raise AccessError unless ``user`` may connect, reconnect or disconnect this mailbox:
        its owner, or a Settings administrator who may see it (their companies)."""
        self.ensure_one()
        if user == self.sudo().smtp_invoicing_owner_id:
            return
        if user.has_group("base.group_system"):
            self.with_user(user).check_access("read")
            return
        raise AccessError(_("Only the owner of this mailbox or a Settings administrator can connect it."))

    def _smtp_invoicing_set_password_by(self, user, password):
        """The owner (or an administrator) types the password; it is never shown again."""
        self.ensure_one()
        self._smtp_invoicing_check_connect_access(user)
        server = self.sudo()
        if server.smtp_invoicing_auth_kind in OAUTH_KINDS:
            raise UserError(_("This mailbox signs in with its account, not with a password."))
        if not password:
            raise UserError(_("Type the password of the mailbox."))
        server.write({"smtp_pass": password})
        server._smtp_invoicing_connected_by(user)

    def _smtp_invoicing_disconnect_by(self, user):
        self.ensure_one()
        self._smtp_invoicing_check_connect_access(user)
        server = self.sudo()
        server._smtp_invoicing_forget_secret()
        server.write({"smtp_invoicing_failure_reason": False})
        server._smtp_invoicing_reset_verification()
        server._message_log(body=_("Disconnected by %(user)s: the saved secret was erased.", user=user.name))
        if user != server.smtp_invoicing_owner_id:
            server._smtp_invoicing_ask_owner()

    def action_smtp_invoicing_connect(self):
        """Open the connect page (sign in, App Password)."""
        self.ensure_one()
        self._smtp_invoicing_check_connect_access(self.env.user)
        return {"type": "ir.actions.act_url", "url": "/smtp_invoicing/mailbox/%s/connect" % self.id, "target": "self"}

    def action_smtp_invoicing_disconnect(self):
        self.ensure_one()
        self._smtp_invoicing_disconnect_by(self.env.user)
        return True

    def action_smtp_invoicing_switch_to_oauth(self):
        """Microsoft 365 password mailbox → Microsoft 365 (OAuth), same record: its name,
        sender, templates and company lines stay; the owner is asked to sign in."""
        for server in self:
            if not server._smtp_invoicing_is_microsoft_password():
                raise UserError(_("Only Microsoft 365 mailboxes that use a password can switch to OAuth."))
            server.write({"smtp_invoicing_auth_kind": "microsoft", "smtp_invoicing_failure_reason": False})
            server._message_log(body=_("Switched to Microsoft 365 (OAuth): the password was erased."))
        return True
