from odoo import api, fields, models


class AccountMoveSendWizard(models.TransientModel):
    _inherit = "account.move.send.wizard"

    smtp_invoicing_send_blocked = fields.Boolean(
        string="Mailbox Cannot Send",
        compute="_compute_smtp_invoicing_send_blocked",
        help="The mailbox these mails leave from cannot send now: Send is disabled, the alert says why.",
    )

    @api.depends("sending_methods", "extra_edis", "mail_template_id")
    def _compute_alerts(self):
        """Core's alerts, recomputed when the user picks another template (it may use another mailbox)."""
        return super()._compute_alerts()

    @api.depends("alerts")
    def _compute_smtp_invoicing_send_blocked(self):
        for wizard in self:
            wizard.smtp_invoicing_send_blocked = self.env["smtp_invoicing.mailbox"]._smtp_invoicing_send_blocked(
                wizard.alerts
            )

    def _get_alerts(self, moves, moves_data):
        """The single-invoice wizard sends with its own template: the mailbox alert must know it."""
        if len(self) == 1 and self.mail_template_id:
            for move_data in moves_data.values():
                move_data.setdefault("mail_template", self.mail_template_id)
        return super()._get_alerts(moves, moves_data)
