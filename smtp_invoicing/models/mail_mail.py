import logging
import smtplib
from datetime import timedelta

from odoo import fields, models

from .ir_mail_server_delivery import TEMPORARY_REFUSAL

# A mail refused for a temporary reason (4xx, server unreachable) is retried
# this many times, a little later each time, before it stays in exception.
MAX_RETRIES = 5
RETRY_MINUTES = 5

_logger = logging.getLogger(__name__)


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
                lambda mail: (
                    mail.mail_server_id in mailboxes
                    and not mail.mail_server_id._smtp_invoicing_accepts(mail.record_company_id)
                )
            )
            if refused:
                refused.write({"mail_server_id": False})
        return super()._split_by_mail_configuration()

    def send(self, auto_commit=False, raise_exception=False, post_send_callback=None):
        """One own mailbox whose connection breaks must not stop the queue for the others.

        When a server resets the connection (e.g. during DATA), core marks that mail
        failed, then its closing ``quit()`` raises ``SMTPServerDisconnected`` out of
        ``send()``: the queue run ends there, every run, before the next servers'
        batches. Mails of own mailboxes are sent after the others, one mailbox at a
        time. Called by the mail queue cron and by direct sends.
        """
        if raise_exception:
            return super().send(
                auto_commit=auto_commit, raise_exception=raise_exception, post_send_callback=post_send_callback
            )
        by_mailbox = {}
        for mail in self:
            # sudo: routing is decided for the queue, whatever user triggers it
            server = mail.sudo().mail_server_id
            if server.smtp_invoicing_mailbox:
                by_mailbox.setdefault(server, []).append(mail.id)
        others = self - self.browse([mail_id for ids in by_mailbox.values() for mail_id in ids])
        super(MailMail, others).send(auto_commit=auto_commit, post_send_callback=post_send_callback)
        for server, mail_ids in by_mailbox.items():
            try:
                super(MailMail, self.browse(mail_ids)).send(
                    auto_commit=auto_commit, post_send_callback=post_send_callback
                )
            except smtplib.SMTPServerDisconnected:
                _logger.warning(
                    "Mail server %s disconnected while sending; its failed mails keep their status", server.id
                )
        return True

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
                lambda mail: (
                    mail.state == "exception"
                    and mail.mail_server_id.smtp_invoicing_mailbox
                    and mail.mail_server_id.verification_state == "verified"
                    and mail.smtp_invoicing_retry_count < MAX_RETRIES
                )
            )
        moves = mails._smtp_invoicing_moves()
        result = super()._postprocess_sent_message(
            success_pids=success_pids, failure_reason=failure_reason, failure_type=failure_type
        )
        for mail in retry.exists():
            mail.write(
                {
                    "state": "outgoing",
                    "smtp_invoicing_retry_count": mail.smtp_invoicing_retry_count + 1,
                    "scheduled_date": fields.Datetime.now()
                    + timedelta(minutes=RETRY_MINUTES * (mail.smtp_invoicing_retry_count + 1)),
                }
            )
        if moves:
            moves._smtp_invoicing_update_delivery()
        return result

    def _smtp_invoicing_moves(self):
        move_ids = {mail.res_id for mail in self if mail.model == "account.move" and mail.res_id}
        return self.env["account.move"].sudo().browse(move_ids)
