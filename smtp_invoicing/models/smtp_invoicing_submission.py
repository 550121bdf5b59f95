from datetime import timedelta

from odoo import api, fields, models


class SmtpInvoicingSubmission(models.Model):
    """One SMTP session of a mailbox and the mails it may submit: the provider's limits, counted
    in the database for every worker and every Odoo server.

    A session takes its row before it connects (``smtp_invoicing.mailbox._smtp_invoicing_take_submission``),
    in a short transaction of its own under the mailbox's row lock: the mails it may submit
    (``count``) within the mailbox's daily and per-minute budgets, and a connection slot while
    ``open_until`` is ahead. When the session ends, ``count`` becomes what the server accepted,
    counted from the session's end (``taken_at`` moves there: the provider accepted them by
    then), and the slot is given back. A worker killed mid-session leaves its slot to expire at
    ``open_until``, and its count stands: a mail the server may have accepted is counted.
    """

    _name = "smtp_invoicing.submission"
    _description = "Mails submitted by an own mailbox"
    _order = "taken_at desc, id desc"
    _log_access = False

    mailbox_id = fields.Many2one("smtp_invoicing.mailbox", required=True, ondelete="cascade", index=True)
    taken_at = fields.Datetime(required=True, index=True)
    count = fields.Integer(help="Mails of the session: reserved while it is open, accepted once it ended.")
    recipients = fields.Integer(help="Recipients of those mails.")
    open_until = fields.Datetime(help="The session holds a connection slot until then (empty: ended).")

    @api.autovacuum
    def _gc_submissions(self):
        """Budgets look one day back: older sessions are forgotten after two."""
        self.env.cr.execute(
            "DELETE FROM smtp_invoicing_submission WHERE taken_at < %s", [fields.Datetime.now() - timedelta(days=2)]
        )
