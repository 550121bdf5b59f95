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
        """Where the mails of these invoices leave from, and a blocking alert when one mailbox cannot send now.

        Called by core's wizards to show their alerts; one "From" line per own mailbox
        (with how many invoices leave from it in a batch). A danger alert disables the
        wizards' *Send* (``smtp_invoicing_send_blocked``) and is raised by core if sent
        anyway. Invoices whose template uses no own mailbox, or the feature switched
        off, add nothing.
        """
        alerts = super()._get_alerts(moves, moves_data)
        move_ids_per_server = defaultdict(list)
        for template, move_ids in self._smtp_invoicing_moves_per_template(moves_data).items():
            for move_id, server in template._smtp_invoicing_record_mail_servers(move_ids).items():
                if server:
                    move_ids_per_server[server].append(move_id)
        alerts.update(
            self.env["smtp_invoicing.mailbox"]._smtp_invoicing_send_window_alerts(
                {server: self.env["account.move"].browse(ids) for server, ids in move_ids_per_server.items()},
                total=len(moves_data),
                count_message=lambda count: (
                    self.env._("1 invoice") if count == 1 else self.env._("%(count)s invoices", count=count)
                ),
            )
        )
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
