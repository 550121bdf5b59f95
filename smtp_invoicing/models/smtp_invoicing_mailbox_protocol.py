from odoo import api, fields, models

ENCRYPTED_PROTOCOLS = ("starttls", "ssl")


class SmtpInvoicingMailbox(models.Model):
    _inherit = "smtp_invoicing.mailbox"

    # Core's smtp_encryption also offers "none", which an own mailbox refuses at save:
    # the own-mailbox form shows this narrower choice, written through to core's field.
    smtp_invoicing_protocol = fields.Selection(
        selection="_selection_smtp_invoicing_protocol",
        string="Protocol",
        compute="_compute_smtp_invoicing_protocol",
        inverse="_inverse_smtp_invoicing_protocol",
        help="TLS (STARTTLS), usually on port 587, or SSL, usually on port 465. "
        "Own mailboxes never send a password unencrypted.",
    )

    @api.model
    def _selection_smtp_invoicing_protocol(self):
        """Core's encrypted choices, with core's labels (and their translations)."""
        choices = self._fields["smtp_encryption"]._description_selection(self.env)
        return [(value, label) for value, label in choices if value in ENCRYPTED_PROTOCOLS]

    @api.depends("smtp_encryption")
    def _compute_smtp_invoicing_protocol(self):
        for server in self:
            encryption = server.smtp_encryption
            server.smtp_invoicing_protocol = encryption if encryption in ENCRYPTED_PROTOCOLS else False

    def _inverse_smtp_invoicing_protocol(self):
        for server in self:
            if server.smtp_invoicing_protocol:
                server.smtp_encryption = server.smtp_invoicing_protocol

    @api.onchange("smtp_invoicing_protocol")
    def _onchange_smtp_invoicing_protocol(self):
        """Apply the choice to core's field (hidden on the form), with core's port suggestion."""
        if self.smtp_invoicing_protocol and self.smtp_invoicing_protocol != self.smtp_encryption:
            self.smtp_encryption = self.smtp_invoicing_protocol
            return self._onchange_encryption()
        return {}
