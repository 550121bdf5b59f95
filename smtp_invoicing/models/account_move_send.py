from collections import defaultdict

from odoo import api, models


class AccountMoveSend(models.AbstractModel):
    _inherit = "account.move.send"

    @api.model
    def _smtp_invoicing_mail_servers(self, moves_data):
        """Return {move: ir.mail_server} for the moves sent by email: one query per template."""
        moves_per_template = defaultdict(list)
        for move, move_data in moves_data.items():
            template = move_data.get("mail_template")
            if template and "email" in (move_data.get("sending_methods") or ()):
                moves_per_template[template].append(move)
        servers = {}
        for template, moves in moves_per_template.items():
            template_servers = template._smtp_invoicing_record_mail_servers([move.id for move in moves])
            servers.update({move: template_servers[move.id] for move in moves})
        return servers

    @api.model
    def _smtp_invoicing_check_mailboxes(self, moves, from_cron=False, **custom_settings):
        """Raise before any document is generated when a chosen mailbox cannot send."""
        moves_data = {
            move: self._get_default_sending_settings(move, from_cron=from_cron, **custom_settings) for move in moves
        }
        servers = self._smtp_invoicing_mail_servers(moves_data).values()
        self.env["ir.mail_server"].sudo().union(*servers)._smtp_invoicing_check_ready()

    @api.model
    def _generate_and_send_invoices(
        self, moves, from_cron=False, allow_raising=True, allow_fallback_pdf=False, **custom_settings
    ):
        """Tell the user, before sending, that a chosen mailbox is not verified (Send & Print)."""
        if not from_cron and allow_raising:
            self._smtp_invoicing_check_mailboxes(moves, **custom_settings)
        return super()._generate_and_send_invoices(
            moves,
            from_cron=from_cron,
            allow_raising=allow_raising,
            allow_fallback_pdf=allow_fallback_pdf,
            **custom_settings,
        )

    @api.model
    def _send_mails(self, moves_data):
        """Resolve the mailbox of every move at once, by template and company."""
        for move, server in self._smtp_invoicing_mail_servers(moves_data).items():
            moves_data[move]["smtp_invoicing_mail_server"] = server
        return super()._send_mails(moves_data)

    @api.model
    def _get_mail_params(self, move, move_data):
        params = super()._get_mail_params(move, move_data)
        if params and "smtp_invoicing_mail_server" in move_data:
            params["smtp_invoicing_mail_server_id"] = move_data["smtp_invoicing_mail_server"].id
        return params

    @api.model
    def _send_mail(self, move, mail_template, **kwargs):
        """Core posts with the template's server; the move's company mailbox replaces it."""
        if "smtp_invoicing_mail_server_id" in kwargs:
            move = move.with_context(smtp_invoicing_mail_server_id=kwargs.pop("smtp_invoicing_mail_server_id"))
        return super()._send_mail(move, mail_template, **kwargs)
