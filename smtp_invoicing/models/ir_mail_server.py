import functools

from odoo import _, fields, models
from odoo.exceptions import UserError
from odoo.tools import email_normalize

from ..lib import presets


def sender_of(smtp_user, from_filter):
    """The sender address a server's user name, else its FROM filter, gives (one full address), or False."""
    return email_normalize(smtp_user or "") or email_normalize(from_filter or "") or False


class IrMailServer(models.Model):
    """Core's outgoing servers, and the servers own mailboxes delegate to (``smtp_invoicing.mailbox``).

    The one file of the product that extends ``ir.mail_server``: each override takes the
    servers that back a mailbox, hands them to their mailbox, and gives the rest to
    ``super()`` untouched. Core servers get no field, default, chatter or rule of the product.
    """

    _inherit = "ir.mail_server"

    # archived mailboxes included: an archived mailbox's server stays out of core's list and
    # other companies' sight, and is no core server to convert again
    smtp_invoicing_mailbox_ids = fields.One2many(
        "smtp_invoicing.mailbox",
        "mail_server_id",
        string="Own Mailbox",
        readonly=True,
        context={"active_test": False},
    )

    def _smtp_invoicing_core_servers(self):
        """The servers of self that do not back an own mailbox (archived mailboxes included)."""
        if not self:
            return self
        own = self.env["smtp_invoicing.mailbox"]._smtp_invoicing_of_servers(self).mail_server_id
        return self - own

    def _find_mail_server(self, email_from, mail_servers=None):
        """Own mailboxes only carry mails whose template chose them: never a fallback.

        Core's choice among the other servers is unchanged.
        """
        if mail_servers is None:
            mail_servers = self.sudo().search([], order="sequence")
        return super()._find_mail_server(email_from, mail_servers=mail_servers._smtp_invoicing_core_servers())

    def connect(
        self,
        host=None,
        port=None,
        user=None,
        password=None,
        encryption=None,
        smtp_from=None,
        ssl_certificate=None,
        ssl_private_key=None,
        smtp_debug=False,
        mail_server_id=None,
        allow_archived=False,
    ):
        """A mailbox's server connects as its mailbox says (``_smtp_invoicing_connect``): verified
        TLS, its secret, its sender identity. Called by ``mail.mail.send()`` once per batch and by
        ``send_email()``; other servers connect as core does."""
        servers = self.sudo().browse(mail_server_id).exists() if mail_server_id else self.browse()
        mailbox = self.env["smtp_invoicing.mailbox"]._smtp_invoicing_of_servers(servers)
        if mailbox:
            if not allow_archived and not mailbox.active:
                raise UserError(_('The server "%s" cannot be used because it is archived.', mailbox.display_name))
            # a refusal is written on the mailbox in its readers' language, not the queue's
            return mailbox.with_context(lang=mailbox._smtp_invoicing_reader_lang())._smtp_invoicing_connect()
        return super().connect(
            host=host,
            port=port,
            user=user,
            password=password,
            encryption=encryption,
            smtp_from=smtp_from,
            ssl_certificate=ssl_certificate,
            ssl_private_key=ssl_private_key,
            smtp_debug=smtp_debug,
            mail_server_id=mail_server_id,
            allow_archived=allow_archived,
        )

    def _prepare_email_message(self, message, smtp_session):
        """A mailbox's session sends single-line headers only (``_smtp_invoicing_one_line_headers``)."""
        if getattr(smtp_session, "smtp_invoicing_mailbox_id", None):
            self.env["smtp_invoicing.mailbox"]._smtp_invoicing_one_line_headers(message)
        return super()._prepare_email_message(message, smtp_session)

    def send_email(
        self,
        message,
        mail_server_id=None,
        smtp_server=None,
        smtp_port=None,
        smtp_user=None,
        smtp_password=None,
        smtp_encryption=None,
        smtp_ssl_certificate=None,
        smtp_ssl_private_key=None,
        smtp_debug=False,
        smtp_session=None,
    ):
        """A mail through a mailbox's server is sent by core, under its mailbox's watch
        (``_smtp_invoicing_send_email``: a refusal an accountant understands, the Sent copy).
        Called by ``mail.mail._send()`` for each mail."""
        send = functools.partial(
            super().send_email,
            message,
            mail_server_id=mail_server_id,
            smtp_server=smtp_server,
            smtp_port=smtp_port,
            smtp_user=smtp_user,
            smtp_password=smtp_password,
            smtp_encryption=smtp_encryption,
            smtp_ssl_certificate=smtp_ssl_certificate,
            smtp_ssl_private_key=smtp_ssl_private_key,
            smtp_debug=smtp_debug,
            smtp_session=smtp_session,
        )
        Mailbox = self.env["smtp_invoicing.mailbox"].sudo()
        if smtp_session is not None:
            # the queue's sessions tell whether a mailbox opened them: no query per mail
            mailbox = Mailbox.browse(getattr(smtp_session, "smtp_invoicing_mailbox_id", None) or ())
        elif mail_server_id:
            mailbox = Mailbox._smtp_invoicing_of_servers(self.sudo().browse(mail_server_id))
        else:
            mailbox = Mailbox
        if not mailbox:
            return send()
        return mailbox._smtp_invoicing_send_email(send, message, smtp_session=smtp_session)

    def action_smtp_invoicing_convert(self):
        """Turn this outgoing server into an own mailbox, in place ("Use as own mailbox" on core's form).

        Its settings and password are kept (the password encrypted from now on), the sender is
        filled from its user name where possible and its company from the licensed user's; it is
        then queued for verification and opened in the own-mailbox form.
        """
        self.ensure_one()
        self._smtp_invoicing_check_convertible()
        user = self._smtp_invoicing_conversion_user()
        sender_email = sender_of(self.smtp_user, self.from_filter)
        if not sender_email:
            raise UserError(
                _(
                    "“%(name)s” cannot become an own mailbox: its user name is not an email address, so Odoo "
                    "cannot tell which address it sends from. Enter that address in FROM Filtering, then try again.",
                    name=self.name,
                )
            )
        company = user.company_id
        values = {
            "mail_server_id": self.id,
            "sender_email": sender_email,
            "sender_name": company.name or user.name,
            "smtp_invoicing_company_id": company.id,
            "smtp_invoicing_preset": presets.preset_of_host(self.smtp_host),
        }
        # the mailbox moves the clear password core keeps in its column into its encrypted
        # field (smtp_invoicing_mailbox_password.py): the password is kept, and no longer in clear
        mailbox = self.env["smtp_invoicing.mailbox"].create(values)
        mailbox._smtp_invoicing_adopt_password()
        mailbox._message_log(body=_("Converted from an outgoing server into an own mailbox."))
        if mailbox.smtp_invoicing_connected:
            mailbox.action_verify()
        else:  # no password to verify with: its owner types it on the connect page
            mailbox._smtp_invoicing_ask_owner()
        action = self.env["ir.actions.act_window"]._for_xml_id("smtp_invoicing.smtp_invoicing_mailbox_action")
        form = self.env.ref("smtp_invoicing.smtp_invoicing_mailbox_view_form")
        action.update(res_id=mailbox.id, view_mode="form", views=[(form.id, "form")])
        return action

    def _smtp_invoicing_check_convertible(self):
        """Raise UserError when this server cannot become an own mailbox as it is."""
        self.ensure_one()
        if self.smtp_invoicing_mailbox_ids:
            raise UserError(_("“%(name)s” is already an own mailbox.", name=self.name))
        if self.smtp_authentication != "login" or not self.smtp_user:
            raise UserError(
                _(
                    "“%(name)s” cannot become an own mailbox: it must log in with a user name and password "
                    "(Authenticate with: Username).",
                    name=self.name,
                )
            )
        if self.smtp_encryption not in ("starttls", "ssl"):
            raise UserError(
                _(
                    "“%(name)s” cannot become an own mailbox: it must use an encrypted connection, TLS (STARTTLS) "
                    "or SSL. Passwords are never sent unencrypted. Choose one on the server, test the connection, "
                    "then try again.",
                    name=self.name,
                )
            )

    def _smtp_invoicing_conversion_user(self):
        """Return the licensed user of this server's user name, in any company; UserError if none."""
        candidate = self.env["smtp_invoicing.mailbox"].new(
            {"name": self.name, "smtp_user": self.smtp_user, "smtp_invoicing_company_id": False}
        )
        user = candidate._smtp_invoicing_licensed_user()
        if not user:
            raise UserError(candidate._smtp_invoicing_license_message())
        return user
