from datetime import timedelta

from odoo import fields, models

from .ir_mail_server_delivery import TEMPORARY_REFUSAL

# A mail refused for a temporary reason (4xx, server unreachable) is retried
# this many times, a little later each time, before it stays in exception.
MAX_RETRIES = 5
RETRY_MINUTES = 5


class MailMail(models.Model):
    _inherit = "mail.mail"

    smtp_invoicing_retry_count = fields.Integer(string="Delivery Retries", copy=False, readonly=True)

    def _split_by_mail_configuration(self):
        """Keep own mailboxes to the mails they were chosen for.

        Core sends a mail through whatever server its template forced. A mail
        of another company's record, or sent while the feature is switched
        off, goes back to Odoo's default routing instead of leaving from a
        mailbox that was not chosen for it.
        """
        # sudo: routing is decided for the queue, whatever user triggers it
        mails = self.sudo()
        mailboxes = mails.mail_server_id.filtered("smtp_invoicing_mailbox")
        if mailboxes:
            refused = mails.filtered(
                lambda mail: mail.mail_server_id in mailboxes
                and not mail.mail_server_id._smtp_invoicing_accepts(mail.record_company_id)
            )
            if refused:
                refused.write({"mail_server_id": False})
        return super()._split_by_mail_configuration()

    def _postprocess_sent_message(self, success_pids, failure_reason=False, failure_type=None):
        """Retry temporary failures of own mailboxes; show delivery failures on invoices.

        Called by ``send()`` after each attempt. A connection failure of an own
        mailbox that is still verified was temporary (the mailbox would be
        marked failed otherwise), and so is a 4xx refusal of the mail itself:
        the mail goes back to the queue, later.
        """
        mails = self.sudo()
        retry = mails.browse()
        temporary = failure_type == "mail_smtp" or (failure_type and TEMPORARY_REFUSAL.get())
        TEMPORARY_REFUSAL.set(False)
        if temporary:
            retry = mails.filtered(
                lambda mail: mail.state == "exception"
                and mail.mail_server_id.smtp_invoicing_mailbox
                and mail.mail_server_id.verification_state == "verified"
                and mail.smtp_invoicing_retry_count < MAX_RETRIES
            )
        moves = mails._smtp_invoicing_moves()
        result = super()._postprocess_sent_message(
            success_pids=success_pids, failure_reason=failure_reason, failure_type=failure_type
        )
        for mail in retry.exists():
            mail.write({
                "state": "outgoing",
                "smtp_invoicing_retry_count": mail.smtp_invoicing_retry_count + 1,
                "scheduled_date": fields.Datetime.now()
                + timedelta(minutes=RETRY_MINUTES * (mail.smtp_invoicing_retry_count + 1)),
            })
        if moves:
            moves._smtp_invoicing_update_delivery()
        return result

    def _smtp_invoicing_moves(self):
        move_ids = {mail.res_id for mail in self if mail.model == "account.move" and mail.res_id}
        return self.env["account.move"].sudo().browse(move_ids)
