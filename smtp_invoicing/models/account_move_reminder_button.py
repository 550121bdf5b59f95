from odoo import api, fields, models


class AccountMove(models.Model):
    _inherit = "account.move"

    smtp_invoicing_can_remind = fields.Boolean(
        string="Can Get a Payment Reminder",
        compute="_compute_smtp_invoicing_can_remind",
        help="Posted, unpaid or partly paid, overdue customer invoice: the Send payment reminder button shows.",
    )

    @api.depends("move_type", "state", "payment_state", "invoice_date_due")
    @api.depends_context("tz")
    def _compute_smtp_invoicing_can_remind(self):
        # the same rule as the refusal of action_smtp_invoicing_send_reminder(): one definition
        for move in self:
            move.smtp_invoicing_can_remind = not move._smtp_invoicing_reminder_refusal()
