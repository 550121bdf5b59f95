import base64
from datetime import timedelta

from odoo import fields, models

# Minutes before filing a copy again, by number of failed attempts; the last value repeats.
RETRY_MINUTES = (5, 15, 60, 240)


class SmtpInvoicingSentCopy(models.Model):
    """A mail accepted by an own mailbox's server, waiting to be filed in the mailbox's Sent folder.

    Queued by ``ir.mail_server.send_email`` (``smtp_invoicing_mailbox_sent_copy.py``) with the
    exact bytes that were sent; filed and deleted by the scheduled action that reads the
    mailbox (one IMAP session per mailbox and run). A copy that cannot be filed waits and
    is tried again; the mail itself is never sent again because of it.
    """

    _name = "smtp_invoicing.sent.copy"
    _description = "Sent folder copy waiting to be filed"
    _order = "id"

    mailbox_id = fields.Many2one("smtp_invoicing.mailbox", required=True, ondelete="cascade", index=True, readonly=True)
    message_id = fields.Char(string="Message-ID", readonly=True)
    raw = fields.Binary(string="Message", attachment=True, required=True, readonly=True)
    attempts = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime(default=fields.Datetime.now, index=True, readonly=True)
    last_error = fields.Text(readonly=True)

    def _smtp_invoicing_raw(self):
        """The bytes of the mail exactly as they were sent."""
        self.ensure_one()
        return base64.b64decode(self.raw)

    def _smtp_invoicing_failed(self, message):
        """This copy could not be filed: try again later, and say why on the mailbox."""
        for copy in self:
            minutes = RETRY_MINUTES[min(copy.attempts, len(RETRY_MINUTES) - 1)]
            copy.write(
                {
                    "attempts": copy.attempts + 1,
                    "next_attempt_at": fields.Datetime.now() + timedelta(minutes=minutes),
                    "last_error": message,
                }
            )
