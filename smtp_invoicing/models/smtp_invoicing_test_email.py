from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import email_normalize, formataddr

from ..lib import validation


class SmtpInvoicingTestEmail(models.TransientModel):
    """Send a real, clearly labelled email from an own mailbox through the full sending path.

    Some refusals only come after DATA (Microsoft 365 SendAsDenied): a verification
    cannot see them, a test email does. Its outcome is logged on the mailbox.
    """

    _name = "smtp_invoicing.test.email"
    _description = "Test email from an own mailbox"

    mailbox_id = fields.Many2one("smtp_invoicing.mailbox", required=True, ondelete="cascade")
    email_to = fields.Char(string="Send To", required=True, help="The mailbox's own address by default.")

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        server = self.env["smtp_invoicing.mailbox"].browse(values.get("mailbox_id"))
        if server and "email_to" in fields_list and not values.get("email_to"):
            values["email_to"] = server.sender_email
        return values

    def action_send(self):
        """Send the test email now and tell the administrator what the server said."""
        self.ensure_one()
        server = self.mailbox_id.sudo()
        email_to = email_normalize(self.email_to or "")
        if not email_to or validation.has_control_chars(self.email_to):
            raise UserError(_("“%(email)s” is not a valid email address.", email=self.email_to or ""))
        server._smtp_invoicing_check_ready()
        mail = (
            self.env["mail.mail"]
            .sudo()
            .create(
                {
                    "mail_server_id": server.mail_server_id.id,
                    "email_from": formataddr((validation.one_line(server.sender_name), server.sender_email)),
                    "email_to": email_to,
                    "subject": _("Test email from Odoo: %(mailbox)s", mailbox=server.name),
                    "body_html": Markup("<p>%s</p>")
                    % _(
                        "This is a test email sent by Odoo from the mailbox “%(mailbox)s” to check that it can "
                        "deliver invoices. No action is needed.",
                        mailbox=server.name,
                    ),
                    "auto_delete": False,
                }
            )
        )
        mail.send(raise_exception=False)
        if mail.state == "sent":
            message = _("Test email to %(email)s accepted by the server.", email=email_to)
            kind = "success"
        else:
            message = _(
                "Test email to %(email)s not delivered: %(reason)s",
                email=email_to,
                reason=mail.failure_reason or server.verification_message or "",
            )
            kind = "warning"
        server._message_log(body=message)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": kind,
                "message": message,
                "sticky": kind != "success",
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
