from odoo import fields, models


class MailMessage(models.Model):
    _inherit = "mail.message"

    # Set with the mail that carries a document through an own mailbox (mail_mail.py); kept
    # on the message because the template may delete its mail.mail once sent, and the
    # delivery report that comes back later must still find the document.
    smtp_invoicing_document_template_id = fields.Many2one(
        "mail.template",
        string="Template of the Document Email",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
        groups="base.group_user",
    )
