from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    smtp_invoicing_enabled = fields.Boolean(
        string="Send from my own mailbox",
        config_parameter="smtp_invoicing.enabled",
        help="Send invoices and reminders through the company's own verified mailboxes.",
    )
    smtp_invoicing_auto_reminder = fields.Boolean(related="company_id.smtp_invoicing_auto_reminder", readonly=False)
    smtp_invoicing_reminder_delay = fields.Integer(related="company_id.smtp_invoicing_reminder_delay", readonly=False)
    smtp_invoicing_reminder_interval = fields.Integer(
        related="company_id.smtp_invoicing_reminder_interval", readonly=False
    )

    def action_smtp_invoicing_open_mailboxes(self):
        return self.env["ir.actions.act_window"]._for_xml_id("smtp_invoicing.smtp_invoicing_mailbox_action")

    def action_smtp_invoicing_open_template_mailboxes(self):
        action = self.env["ir.actions.act_window"]._for_xml_id("smtp_invoicing.action_smtp_invoicing_template_mailbox")
        action["context"] = {"default_company_id": self.company_id.id}
        action["domain"] = [("company_id", "=", self.company_id.id)]
        return action

    def action_smtp_invoicing_open_templates(self):
        action = self.env["ir.actions.act_window"]._for_xml_id("mail.action_email_template_tree_all")
        action["domain"] = [("model", "=", "account.move")]
        return action
