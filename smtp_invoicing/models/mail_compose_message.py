from odoo import models

from .mail_mail import chosen_mailboxes


class MailComposeMessage(models.TransientModel):
    _inherit = "mail.compose.message"

    def _action_send_mail(self, auto_commit=False):
        """Send each record through the mailbox its template chose; refuse one that cannot send.

        Called by the composer's Send button and by ``message_post_with_source`` (automatic
        reminders). When the user kept the template's server, each record's mail leaves
        from the mailbox the template chose for its company (``chosen_mailboxes``). A
        server typed by the user is not a choice of the template: only a Settings
        administrator's reaches an own mailbox (see ``mail.mail.create``).
        """
        choices = {}
        for wizard in self:
            template = wizard.template_id
            if (
                wizard.model
                and template
                and template.model == wizard.model
                and wizard.composition_mode
                in (
                    "comment",
                    "mass_mail",
                )
            ):
                if wizard.mail_server_id == template.mail_server_id:
                    res_ids = wizard._evaluate_res_ids()
                    wizard_choices = template._smtp_invoicing_choices(res_ids)
                    server_ids = {server_id for server_id, _template in wizard_choices.values() if server_id}
                    servers = self.env["ir.mail_server"].sudo().browse(list(server_ids))
                    servers._smtp_invoicing_check_ready()
                    choices.update(wizard_choices)
        with chosen_mailboxes(choices):
            result = super()._action_send_mail(auto_commit=auto_commit)
        reminder = self.env.ref("smtp_invoicing.email_template_payment_reminder", raise_if_not_found=False)
        for wizard in self:
            if reminder and wizard.model == "account.move" and wizard.template_id == reminder:
                moves = self.env["account.move"].browse(wizard._evaluate_res_ids())
                moves._smtp_invoicing_mark_reminded()
        return result
