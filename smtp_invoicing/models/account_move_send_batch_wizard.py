from odoo import api, fields, models


class AccountMoveSendBatchWizard(models.TransientModel):
    _inherit = "account.move.send.batch.wizard"

    smtp_invoicing_send_blocked = fields.Boolean(
        string="Mailbox Cannot Send",
        compute="_compute_smtp_invoicing_send_blocked",
        help="A mailbox some of these invoices leave from cannot send now: Send is disabled, the alert says why.",
    )

    @api.depends("alerts")
    def _compute_smtp_invoicing_send_blocked(self):
        for wizard in self:
            wizard.smtp_invoicing_send_blocked = self.env["smtp_invoicing.mailbox"]._smtp_invoicing_send_blocked(
                wizard.alerts
            )
