from odoo import models


class AccountMoveSendBatchWizard(models.TransientModel):
    _inherit = "account.move.send.batch.wizard"

    def action_send_and_print(self, force_synchronous=False, allow_fallback_pdf=False):
        """Refuse to queue invoices whose mailbox cannot send: the user is told now, not later."""
        for wizard in self:
            wizard._smtp_invoicing_check_mailboxes(wizard.move_ids)
        return super().action_send_and_print(force_synchronous=force_synchronous, allow_fallback_pdf=allow_fallback_pdf)
