"""The mailbox owner's connect page, and the OAuth redirect of microsoft_outlook and google_gmail.

The providers send the browser back to the redirect URL registered for Odoo's own
Outlook and Gmail integrations (``/microsoft_outlook/confirm``, ``/google_gmail/confirm``):
the same app registration serves both. Those controllers are extended, not replaced: a
``state`` made for an own mailbox is handled here, any other goes to the original.
"""

import json
import logging

from werkzeug.exceptions import Forbidden, NotFound

from odoo import _, http
from odoo.exceptions import AccessError, UserError
from odoo.http import request

from odoo.addons.google_gmail.controllers.main import GoogleGmailController
from odoo.addons.microsoft_outlook.controllers.main import MicrosoftOutlookController

_logger = logging.getLogger(__name__)


def _own_state(state):
    """The signed part of a ``state`` made for an own mailbox, or None (another flow's)."""
    try:
        data = json.loads(state or "")
    except ValueError:
        return None
    signed = data.get("smtp_invoicing") if isinstance(data, dict) else None
    return signed if isinstance(signed, str) else None


def _mailbox(server_id):
    """The own mailbox ``server_id`` (sudo) if the current user may connect it; 403/404 otherwise."""
    server = request.env["smtp_invoicing.mailbox"].sudo().browse(int(server_id)).exists()
    if not server:
        raise NotFound()
    try:
        server._smtp_invoicing_check_connect_access(request.env.user)
    except AccessError:
        _logger.info("Mail server %s: connect page refused to user %s", server.id, request.env.uid)
        raise Forbidden() from None
    return server


def _page(server, error=None, done=False):
    return request.render(
        "smtp_invoicing.mailbox_connect_page",
        {
            "server": server,
            "user": request.env.user,
            "is_owner": request.env.user == server.smtp_invoicing_owner_id,
            "error": error,
            "done": done,
        },
    )


def _complete_sign_in(kind, signed, code, error):
    """The provider sent the browser back: check the state, then exchange the code."""
    values = request.env["smtp_invoicing.mailbox"]._smtp_invoicing_read_state(signed)
    if not values or values.get("user") != request.env.uid or values.get("kind") != kind:
        _logger.warning("OAuth sign-in of an own mailbox with a wrong or expired state (user %s)", request.env.uid)
        raise Forbidden()
    server = _mailbox(values.get("server"))
    if server.smtp_invoicing_auth_kind != kind:
        raise Forbidden()
    if error or not code:
        return _page(server, error=_("The sign-in was cancelled or refused: %(detail)s", detail=error or _("no code")))
    refusal = server._smtp_invoicing_complete_sign_in(code, values.get("nonce"), request.env.user)
    if refusal:
        return _page(server, error=refusal)
    return request.redirect("/smtp_invoicing/mailbox/%s/connect?done=1" % server.id)


class SmtpInvoicingMailboxController(http.Controller):
    @http.route("/smtp_invoicing/mailboxes", type="http", auth="user", methods=["GET"])
    def smtp_invoicing_my_mailboxes(self, **kwargs):
        """The mailboxes whose owner is the current user (linked from their preferences)."""
        servers = (
            request.env["smtp_invoicing.mailbox"]
            .sudo()
            .search([])
            .filtered(lambda server: server.smtp_invoicing_owner_id == request.env.user)
        )
        return request.render("smtp_invoicing.my_mailboxes_page", {"servers": servers, "user": request.env.user})

    @http.route("/smtp_invoicing/mailbox/<int:server_id>/connect", type="http", auth="user", methods=["GET"])
    def smtp_invoicing_connect(self, server_id, done=None, **kwargs):
        return _page(_mailbox(server_id), done=bool(done))

    @http.route("/smtp_invoicing/mailbox/<int:server_id>/sign_in", type="http", auth="user", methods=["POST"])
    def smtp_invoicing_sign_in(self, server_id, **kwargs):
        """Start the provider's authorization-code flow (POST: a link cannot start it)."""
        server = _mailbox(server_id)
        try:
            url = server._smtp_invoicing_authorize_url(request.env.user)
        except UserError as error:
            return _page(server, error=error.args[0])
        return request.redirect(url, local=False)

    @http.route("/smtp_invoicing/mailbox/<int:server_id>/password", type="http", auth="user", methods=["POST"])
    def smtp_invoicing_password(self, server_id, password=None, **kwargs):
        server = _mailbox(server_id)
        try:
            server._smtp_invoicing_set_password_by(request.env.user, password)
        except UserError as error:
            return _page(server, error=error.args[0])
        return request.redirect("/smtp_invoicing/mailbox/%s/connect?done=1" % server.id)

    @http.route("/smtp_invoicing/mailbox/<int:server_id>/disconnect", type="http", auth="user", methods=["POST"])
    def smtp_invoicing_disconnect(self, server_id, **kwargs):
        server = _mailbox(server_id)
        server._smtp_invoicing_disconnect_by(request.env.user)
        return request.redirect("/smtp_invoicing/mailbox/%s/connect" % server.id)


class SmtpInvoicingOutlookController(MicrosoftOutlookController):
    @http.route()
    def microsoft_outlook_callback(self, code=None, state=None, error_description=None, **kwargs):
        """Own mailboxes: their owner (not only an administrator) completes the sign-in here."""
        signed = _own_state(state)
        if signed is None:
            return super().microsoft_outlook_callback(
                code=code, state=state, error_description=error_description, **kwargs
            )
        return _complete_sign_in("microsoft", signed, code, error_description or kwargs.get("error"))


class SmtpInvoicingGmailController(GoogleGmailController):
    @http.route()
    def google_gmail_callback(self, code=None, state=None, error=None, **kwargs):
        """Own mailboxes: their owner (not only an administrator) completes the sign-in here."""
        signed = _own_state(state)
        if signed is None:
            return super().google_gmail_callback(code=code, state=state, error=error, **kwargs)
        return _complete_sign_in("google", signed, code, error)
