from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class ResCompany(models.Model):
    _inherit = "res.company"

    smtp_invoicing_auto_reminder = fields.Boolean(
        string="Automatic Payment Reminders",
        help="Send the payment reminder email to overdue customer invoices every day.",
    )
    smtp_invoicing_reminder_delay = fields.Integer(
        string="Remind After (days overdue)",
        default=7,
        help="First automatic reminder once an invoice is overdue by this many days.",
    )
    smtp_invoicing_reminder_interval = fields.Integer(
        string="Remind Again Every (days)",
        default=7,
        help="Minimum number of days between two automatic reminders of the same invoice.",
    )

    @api.constrains("smtp_invoicing_reminder_delay", "smtp_invoicing_reminder_interval")
    def _check_smtp_invoicing_reminder_days(self):
        for company in self:
            if company.smtp_invoicing_reminder_delay < 1 or company.smtp_invoicing_reminder_interval < 1:
                raise ValidationError(
                    _("The reminder delay and interval of %(company)s must be at least one day.", company=company.name)
                )
