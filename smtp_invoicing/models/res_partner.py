from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    smtp_invoicing_no_reminder = fields.Boolean(
        string="No Automatic Payment Reminder",
        help="Automatic payment reminders are never sent to this customer (manual ones still can be).",
    )
