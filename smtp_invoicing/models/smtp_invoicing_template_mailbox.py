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
    mailbox_id = fields.Many2one(
        "smtp_invoicing.mailbox",
        string="Send from mailbox",
        required=True,
        ondelete="cascade",
        domain="[('verification_state', '=', 'verified'), ('smtp_invoicing_company_id', 'in', [company_id, False])]",
    )
    verification_state = fields.Selection(related="mailbox_id.verification_state", string="Status")

    _sql_constraints = [
        (
            "template_company_unique",
            "UNIQUE(template_id, company_id)",
            "A template has one mailbox per company.",
        ),
    ]

    @api.constrains("mailbox_id", "company_id")
    def _check_mailbox(self):
        for choice in self.sudo():
            server = choice.mailbox_id
            if server.smtp_invoicing_company_id and server.smtp_invoicing_company_id != choice.company_id:
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
