from odoo import _, models
from odoo.exceptions import UserError
from odoo.tools import email_normalize

from ..lib import presets


def sender_of(smtp_user, from_filter):
    """The sender address a server's user name, else its FROM filter, gives (one full address), or False."""
    return email_normalize(smtp_user or "") or email_normalize(from_filter or "") or False


class IrMailServer(models.Model):
    _inherit = "ir.mail_server"

    def action_smtp_invoicing_convert(self):
        """Turn this outgoing server into an own mailbox, in place ("Use as own mailbox" on core's form).

        Its settings and password are kept (the password encrypted from now on), the sender is
        filled from its user name where possible and its company from the licensed user's; it is
        then queued for verification and opened in the own-mailbox form.
        """
        self.ensure_one()
        self._smtp_invoicing_check_convertible()
        user = self._smtp_invoicing_conversion_user()
        sender_email = self.sender_email or sender_of(self.smtp_user, self.from_filter)
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
            "smtp_invoicing_mailbox": True,
            "sender_email": sender_email,
            "sender_name": self.sender_name or company.name or user.name,
            "smtp_invoicing_company_id": company.id,
            "smtp_invoicing_preset": presets.preset_of_host(self.smtp_host),
        }
        # write() moves the clear password core keeps in its column into the encrypted field
        # (ir_mail_server_password.py): the password is kept, and no longer in clear
        self.write(values)
        self._message_log(body=_("Converted from an outgoing server into an own mailbox."))
        if self.smtp_invoicing_connected:
            self.action_verify()
        else:  # no password to verify with: its owner types it on the connect page
            self._smtp_invoicing_ask_owner()
        action = self.env["ir.actions.act_window"]._for_xml_id("smtp_invoicing.action_smtp_invoicing_mail_servers")
        form = self.env.ref("smtp_invoicing.ir_mail_server_view_form_smtp_invoicing")
        action.update(res_id=self.id, view_mode="form", views=[(form.id, "form")])
        return action

    def _smtp_invoicing_check_convertible(self):
        """Raise UserError when this server cannot become an own mailbox as it is."""
        self.ensure_one()
        if self.smtp_invoicing_mailbox:
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
        candidate = self.new({"name": self.name, "smtp_user": self.smtp_user, "smtp_invoicing_company_id": False})
        user = candidate._smtp_invoicing_licensed_user()
        if not user:
            raise UserError(candidate._smtp_invoicing_license_message())
        return user
