from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class SmtpInvoicingTemplateMailbox(models.Model):
    """Which mailbox a company's records use for one email template."""

    _name = "smtp_invoicing.template.mailbox"
    _description = "Mailbox of an email template for a company"
    _order = "template_id, company_id"
    _check_company_auto = True

    template_id = fields.Many2one("mail.template", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(
        "res.company", required=True, ondelete="cascade", default=lambda self: self.env.company, index=True
    )
    mail_server_id = fields.Many2one(
        "ir.mail_server",
        string="Send from mailbox",
        required=True,
        ondelete="cascade",
        domain="[('smtp_invoicing_mailbox', '=', True), ('verification_state', '=', 'verified'), "
        "('smtp_invoicing_company_id', 'in', [company_id, False])]",
    )
    verification_state = fields.Selection(related="mail_server_id.verification_state", string="Status")

    _sql_constraints = [
        (
            "template_company_unique",
            "UNIQUE(template_id, company_id)",
            "A template has one mailbox per company.",
        ),
    ]

    @api.constrains("mail_server_id", "company_id")
    def _check_mail_server(self):
        for choice in self.sudo():
            server = choice.mail_server_id
            if not server.smtp_invoicing_mailbox or (
                server.smtp_invoicing_company_id and server.smtp_invoicing_company_id != choice.company_id
            ):
                raise ValidationError(
                    _(
                        "“%(server)s” is not an own mailbox of %(company)s: "
                        "choose one of its mailboxes for “%(template)s”.",
                        server=server.name,
                        company=choice.company_id.name,
                        template=choice.template_id.name,
                    )
                )
            if server.verification_state != "verified":
                raise ValidationError(
                    _(
                        "“%(server)s” must be verified before “%(template)s” can send from it.",
                        server=server.name,
                        template=choice.template_id.name,
                    )
                )
