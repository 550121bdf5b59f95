from odoo import _, api, models
from odoo.exceptions import ValidationError


class MailTemplate(models.Model):
    _inherit = "mail.template"

    @api.constrains("mail_server_id")
    def _check_smtp_invoicing_mail_server(self):
        for template in self:
            server = template.sudo().mail_server_id
            if server.smtp_invoicing_mailbox and server.verification_state != "verified":
                raise ValidationError(
                    _(
                        "The template “%(template)s” can only use a verified mailbox, and “%(server)s” is %(state)s. "
                        "Verify it first in Invoicing › Configuration › Own Mailboxes.",
                        template=template.name,
                        server=server.name,
                        state=dict(server._fields["verification_state"]._description_selection(self.env))[
                            server.verification_state
                        ],
                    )
                )
