from odoo import models


class MailComposeMessage(models.TransientModel):
    _inherit = "mail.compose.message"

    def _prepare_mail_values(self, res_ids):
        """Send each record through its company's mailbox for the composer's template.

        Core gives every record the composer's single server, copied from the
        template. When the user kept that server, the per-company choice of
        the template replaces it, record by record (one query per batch).
        """
        results = super()._prepare_mail_values(res_ids)
        template = self.template_id
        if template and self.model and template.model == self.model and self.mail_server_id == template.mail_server_id:
            servers = template._smtp_invoicing_record_mail_servers(list(results))
            for res_id, values in results.items():
                values["mail_server_id"] = servers[res_id].id
        return results

    def _action_send_mail(self, auto_commit=False):
        """Refuse to send through a mailbox that is not verified; count payment reminders."""
        for wizard in self:
            if wizard.model and wizard.template_id and wizard.composition_mode in ("comment", "mass_mail"):
                wizard._smtp_invoicing_check_mailboxes()
        result = super()._action_send_mail(auto_commit=auto_commit)
        reminder = self.env.ref("smtp_invoicing.email_template_payment_reminder", raise_if_not_found=False)
        for wizard in self:
            if reminder and wizard.model == "account.move" and wizard.template_id == reminder:
                moves = self.env["account.move"].browse(wizard._evaluate_res_ids())
                moves._smtp_invoicing_mark_reminded()
        return result

    def _smtp_invoicing_check_mailboxes(self):
        self.ensure_one()
        if self.mail_server_id != self.template_id.mail_server_id:
            servers = self.mail_server_id.sudo()
        else:
            servers = self.template_id._smtp_invoicing_record_mail_servers(self._evaluate_res_ids()).values()
            servers = self.env["ir.mail_server"].sudo().union(*servers)
        servers._smtp_invoicing_check_ready()
