from collections import defaultdict

from odoo import api, models

from .mail_mail import chosen_mailboxes


class AccountMoveSend(models.AbstractModel):
    _inherit = "account.move.send"

    @api.model
    def _smtp_invoicing_moves_per_template(self, moves_data):
        """Return {mail.template: [move ids]} of the moves sent by email."""
        moves_per_template = defaultdict(list)
        for move, move_data in moves_data.items():
            if "email" not in (move_data.get("sending_methods") or ()):
                continue
            template = move_data.get("mail_template") or self._get_default_mail_template_id(move)
            if template:
                moves_per_template[template].append(move.id)
        return moves_per_template

    @api.model
    def _get_alerts(self, moves, moves_data):
        """A blocking alert when the mailbox chosen for these invoices cannot send now.

        Core's wizards show it before sending and raise it on *Send* (danger level),
        so nothing is generated or sent. Switched off, no mailbox is chosen: no alert.
        """
        alerts = super()._get_alerts(moves, moves_data)
        servers = self.env["ir.mail_server"].sudo()
        for template, move_ids in self._smtp_invoicing_moves_per_template(moves_data).items():
            servers |= servers.union(*template._smtp_invoicing_record_mail_servers(move_ids).values())
        message = servers._smtp_invoicing_not_ready_message()
        if message:
            alerts["smtp_invoicing_mailbox_not_ready"] = {"level": "danger", "message": message}
        return alerts

    @api.model
    def _send_mails(self, moves_data):
        """Each invoice's mail leaves from the mailbox its template chose for the invoice's company.

        Resolved once per template for the whole batch; core's ``_send_mail`` posts as usual.
        """
        choices = {}
        for template, move_ids in self._smtp_invoicing_moves_per_template(moves_data).items():
            choices.update(template._smtp_invoicing_choices(move_ids))
        with chosen_mailboxes(choices):
            return super()._send_mails(moves_data)
