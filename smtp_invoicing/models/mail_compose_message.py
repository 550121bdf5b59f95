from collections import defaultdict

from odoo import api, fields, models

from .mail_mail import chosen_mailboxes


class MailComposeMessage(models.TransientModel):
    _inherit = "mail.compose.message"

    smtp_invoicing_alerts = fields.Json(
        string="Mailbox Alerts",
        compute="_compute_smtp_invoicing_alerts",
        help="Where the mails leave from when the template chose an own mailbox, and why it cannot send now.",
    )
    smtp_invoicing_send_blocked = fields.Boolean(
        string="Mailbox Cannot Send",
        compute="_compute_smtp_invoicing_alerts",
        help="The mailbox the template chose cannot send now: Send is disabled, the alert says why.",
    )

    @api.depends("template_id", "mail_server_id", "model", "composition_mode", "res_ids")
    def _compute_smtp_invoicing_alerts(self):
        mail_servers = self.env["smtp_invoicing.mailbox"]
        for wizard in self:
            choices = wizard._smtp_invoicing_template_choices()
            res_ids_per_server = defaultdict(list)
            for (_model, res_id), (server_id, _template) in choices.items():
                if server_id:
                    res_ids_per_server[server_id].append(res_id)
            alerts = mail_servers._smtp_invoicing_send_window_alerts(
                # sudo: invoicing users never read mailboxes; only their sender is shown
                {
                    mail_servers.sudo().browse(server_id): self.env[wizard.model].browse(res_ids)
                    for server_id, res_ids in res_ids_per_server.items()
                },
                total=len(choices),
                count_message=lambda count: (
                    self.env._("1 mail") if count == 1 else self.env._("%(count)s mails", count=count)
                ),
            )
            wizard.smtp_invoicing_alerts = alerts or False
            wizard.smtp_invoicing_send_blocked = mail_servers._smtp_invoicing_send_blocked(alerts)

    def _smtp_invoicing_template_choices(self):
        """Return the ``chosen_mailboxes`` mapping of this composer's records, or {}.

        Only when the template chose the mailboxes: a record composer of the template's
        model that kept the template's server. A server typed by the user is not a
        choice of the template: only a Settings administrator's reaches an own mailbox
        (see ``mail.mail.create``).
        """
        self.ensure_one()
        template = self.template_id
        if not (
            self.model
            and template
            and template.model == self.model
            and self.composition_mode in ("comment", "mass_mail")
            and self.mail_server_id == template.mail_server_id
        ):
            return {}
        return template._smtp_invoicing_choices(self._evaluate_res_ids())

    def _action_send_mail(self, auto_commit=False):
        """Send each record through the mailbox its template chose; refuse one that cannot send.

        Called by the composer's Send button and by ``message_post_with_source`` (automatic
        reminders). Each record's mail leaves from the mailbox the template chose for its
        company (``chosen_mailboxes``). The composer disables its Send buttons when one of
        them cannot send now; this refusal is the safety net behind them.
        """
        choices = {}
        for wizard in self:
            wizard_choices = wizard._smtp_invoicing_template_choices()
            server_ids = {server_id for server_id, _template in wizard_choices.values() if server_id}
            self.env["smtp_invoicing.mailbox"].sudo().browse(list(server_ids))._smtp_invoicing_check_ready()
            choices.update(wizard_choices)
        with chosen_mailboxes(choices):
            result = super()._action_send_mail(auto_commit=auto_commit)
        reminder = self.env.ref("smtp_invoicing.email_template_payment_reminder", raise_if_not_found=False)
        for wizard in self:
            if reminder and wizard.model == "account.move" and wizard.template_id == reminder:
                moves = self.env["account.move"].browse(wizard._evaluate_res_ids())
                moves._smtp_invoicing_mark_reminded()
        return result
