from odoo import api, models


class AccountMoveSendWizard(models.TransientModel):
    _inherit = "account.move.send.wizard"

    @api.depends("sending_methods", "extra_edis", "mail_template_id")
    def _compute_alerts(self):
        """Core's alerts, recomputed when the user picks another template (it may use another mailbox)."""
        return super()._compute_alerts()

    def _get_alerts(self, moves, moves_data):
        """The single-invoice wizard sends with its own template: the mailbox alert must know it."""
        if len(self) == 1 and self.mail_template_id:
            for move_data in moves_data.values():
                move_data.setdefault("mail_template", self.mail_template_id)
        return super()._get_alerts(moves, moves_data)
