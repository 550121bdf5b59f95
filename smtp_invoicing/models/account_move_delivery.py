import logging
from collections import defaultdict

import psycopg2

from odoo import _, api, fields, models
from odoo.tools import SQL

from .mail_mail import RETRY_MINUTES

_logger = logging.getLogger(__name__)


class AccountMove(models.Model):
    """Where the document's own-mailbox email stands: queued, delivered (the customer's server
    said 250) or not delivered, and ``is_move_sent`` following the deliveries."""

    _inherit = "account.move"

    smtp_invoicing_delivery_state = fields.Selection(
        [("none", "Not Emailed"), ("queued", "Queued"), ("sent", "Delivered"), ("failed", "Not Delivered")],
        string="Email Delivery",
        copy=False,
        readonly=True,
        index=True,
        help="Where the last email of this document sent from an own mailbox stands: queued, accepted by the "
        "customer's server (Delivered), or not delivered. Documents sent through Odoo's other servers stay "
        "empty.",
    )
    smtp_invoicing_delivered_at = fields.Datetime(
        string="Delivered On",
        copy=False,
        readonly=True,
        help="When the customer's server last accepted an email of this document from an own mailbox.",
    )
    smtp_invoicing_sent_pending = fields.Boolean(
        string="To Be Marked Sent",
        copy=False,
        readonly=True,
        index=True,
        help="The customer's server accepted the document's email: the end of the mail queue's batch marks it "
        "sent. Kept in the database, so that a batch cut short is finished by the next one.",
    )
    smtp_invoicing_mail_failure = fields.Text(
        string="Email Not Delivered",
        copy=False,
        readonly=True,
        help="Why the last email of this document was not delivered (yet); empty once it is delivered.",
    )

    def _smtp_invoicing_is_sending(self, templates):
        """True when ``templates`` send the document itself (any template but the payment reminder)."""
        # called for every mail the queue sends: the id is cached, where env.ref() checks it exists
        reminder_id = self.env["ir.model.data"]._xmlid_to_res_id(
            "smtp_invoicing.email_template_payment_reminder", raise_if_not_found=False
        )
        return bool(templates and set(templates.ids) - {reminder_id})

    def _smtp_invoicing_set_delivery(self, state, failure=False, templates=None):
        """Record where the document's last own-mailbox email stands.

        ``is_move_sent`` follows the mails of the sending templates (not the payment
        reminder): true once one of them was accepted by the customer's server, false
        while none ever was.
        """
        sending = self._smtp_invoicing_is_sending(templates)
        now = fields.Datetime.now()
        # Written for every invoice Send & Print queues and every mail retried or failed
        # (bench/send.py, bench/limit.py). None of these fields touches the accounting: no
        # balance check or line synchronisation, a dozen queries per write of a posted invoice.
        # No tracking either: a chatter line for each flip of is_move_sent cost more than the
        # rest of the bookkeeping; the chatter already shows the mail, and the Email Delivery
        # field where it stands.
        moves = self.sudo().with_context(
            check_move_validity=False,
            skip_account_move_synchronization=True,
            skip_invoice_sync=True,
            tracking_disable=True,
        )
        groups = defaultdict(moves.browse)  # changed values (as a tuple) -> moves, one write each
        for move in moves:
            values = {"smtp_invoicing_delivery_state": state, "smtp_invoicing_mail_failure": failure or False}
            if state == "sent":
                values["smtp_invoicing_delivered_at"] = now
            if sending:
                values["is_move_sent"] = state == "sent" or bool(move.smtp_invoicing_delivered_at)
            changed = tuple((name, value) for name, value in values.items() if move[name] != value)
            if changed:
                groups[changed] |= move
        for changed, group in groups.items():
            group.write(dict(changed))
        if sending:
            moves._smtp_invoicing_keep_out_of_tracking()

    def _smtp_invoicing_keep_out_of_tracking(self):
        """The bookkeeping's flips of ``is_move_sent`` never become a tracking line.

        Its own writes prepare no tracking (``tracking_disable``), but another write of the
        same transaction may have prepared the tracking of these invoices (core's Send & Print
        does): at commit, ``_track_finalize`` would compare ``is_move_sent`` with the value it
        had then and post "Sent: yes → no" for every invoice queued (bench/send.py: a message
        and a tracking value per invoice). The prepared initial value is brought up to date,
        the other fields' tracking is left as it was.
        """
        initial_values = self.env.cr.precommit.data.get(f"mail.tracking.{self._name}")
        if not initial_values:
            return
        for move in self:
            values = initial_values.get(move.id)
            if values and "is_move_sent" in values:
                values["is_move_sent"] = move.is_move_sent

    def _smtp_invoicing_mark_delivered(self, template, mail_id):
        """The customer's server accepted the mail ``mail_id``: Delivered, and, for a sending template,
        to be marked sent at the end of the queue batch (``_smtp_invoicing_mark_sent``). Return
        whether older undelivered copies of the same email remain.

        The mail queue calls this for every mail it delivers, so it costs one statement on the
        module's own columns: the update and the look for older copies together (bench/send.py:
        one query per mail over Odoo without the module). The ORM's bookkeeping is kept: pending
        values of these fields are flushed first, the cache is invalidated and the fields that
        depend on them are marked as modified, as ``write()`` does.
        """
        self.ensure_one()
        sending = self._smtp_invoicing_is_sending(template)
        fnames = ["smtp_invoicing_delivery_state", "smtp_invoicing_mail_failure", "smtp_invoicing_delivered_at"]
        if sending:
            fnames.append("smtp_invoicing_sent_pending")
        # is_move_sent is read (never written) by the statement
        self.flush_recordset([*fnames, "is_move_sent"])
        # what the look for older copies reads, as search() would flush it
        self.env["mail.mail"].flush_model(["mail_message_id", "smtp_invoicing_template_id", "state"])
        self.env["mail.message"].flush_model(["model", "res_id"])
        self.modified(fnames, before=True)
        self.env.cr.execute(
            SQL(
                """
                UPDATE account_move
                   SET smtp_invoicing_delivery_state = 'sent',
                       smtp_invoicing_mail_failure = NULL,
                       smtp_invoicing_delivered_at = %(now)s,
                       smtp_invoicing_sent_pending = (%(sending)s AND NOT COALESCE(is_move_sent, FALSE))
                                                     OR COALESCE(smtp_invoicing_sent_pending, FALSE),
                       write_uid = %(uid)s,
                       write_date = %(write_date)s
                 WHERE id = %(move)s
             RETURNING EXISTS (
                        SELECT 1
                          FROM mail_mail older
                          JOIN mail_message message ON message.id = older.mail_message_id
                         WHERE message.model = 'account.move'
                           AND message.res_id = %(move)s
                           AND older.smtp_invoicing_template_id = %(template)s
                           AND older.state IN ('exception', 'outgoing')
                           AND older.id < %(mail)s
                       )
                """,
                now=fields.Datetime.now(),
                sending=sending,
                uid=self.env.uid,
                write_date=self.env.cr.now(),
                move=self.id,
                template=template.id,
                mail=mail_id,
            )
        )
        row = self.env.cr.fetchone()
        self.invalidate_recordset([*fnames, "write_uid", "write_date"])
        self.modified(fnames)
        return bool(row and row[0])

    @api.model
    def _smtp_invoicing_mark_sent(self):
        """``is_move_sent`` for the documents whose sending email the customer's server accepted
        (``smtp_invoicing_sent_pending``).

        Written through the ORM, once per queue batch (``mail.mail._smtp_invoicing_within_limits``),
        so that other modules' ``write()`` see it; the documents of a batch cut short (a worker
        killed before the batch's end) are found by the next one. Documents another session is
        marking (or delivering) right now are left to it, never waited for. Nothing here touches
        the accounting, and no tracking line is written (the chatter already shows the mail).
        """
        try:
            with self.env.cr.savepoint():
                self.env.cr.execute(
                    "SELECT id FROM account_move WHERE smtp_invoicing_sent_pending"
                    " ORDER BY id FOR NO KEY UPDATE SKIP LOCKED",
                    log_exceptions=False,
                )
                # sudo: the queue's bookkeeping, whatever user triggers it
                moves = self.env["account.move"].sudo().browse([row[0] for row in self.env.cr.fetchall()])
                if moves:
                    moves.with_context(
                        check_move_validity=False,
                        skip_account_move_synchronization=True,
                        skip_invoice_sync=True,
                        tracking_disable=True,
                    ).write({"is_move_sent": True, "smtp_invoicing_sent_pending": False})
        except psycopg2.errors.SerializationFailure:
            # another session marked some of them since this transaction began: the next batch does the rest
            _logger.info("Invoices to mark sent were changed by another session; left to the next queue batch")

    def _smtp_invoicing_record_outcome(self, template, mail_id, outcome, reason, retries):
        """Show on the document what became of its mail ``mail_id`` (called by the mail queue)."""
        self.ensure_one()
        if outcome == "sent":
            if self._smtp_invoicing_mark_delivered(template, mail_id):
                self._smtp_invoicing_cancel_older_copies(template, mail_id)
        elif outcome == "retry":
            self._smtp_invoicing_set_delivery(
                "queued",
                failure=_(
                    "Not delivered yet: %(reason)s Next attempt in %(minutes)s minutes.",
                    reason=reason or "",
                    minutes=RETRY_MINUTES[min(retries, len(RETRY_MINUTES) - 1)],
                ),
                templates=template,
            )
        elif outcome == "exception":
            self._smtp_invoicing_set_delivery(
                "failed", failure=reason or _("The email could not be delivered."), templates=template
            )

    def _smtp_invoicing_cancel_older_copies(self, template, mail_id):
        """The document was delivered: its older undelivered copies must never leave as duplicates."""
        self.ensure_one()
        older = (
            self.env["mail.mail"]
            .sudo()
            .search(
                [
                    ("model", "=", self._name),
                    ("res_id", "=", self.id),
                    ("smtp_invoicing_template_id", "=", template.id),
                    ("state", "in", ("exception", "outgoing")),
                    ("id", "<", mail_id),
                ]
            )
        )
        if not older:
            return
        older.cancel()
        self.env["mail.notification"].sudo().search(
            [("mail_mail_id", "in", older.ids), ("notification_status", "not in", ("sent", "canceled"))]
        ).write({"notification_status": "canceled"})
        self._message_log(
            body=_(
                "%(count)s earlier copy(ies) of this email that had not been delivered were cancelled: "
                "the document was delivered on a later attempt.",
                count=len(older),
            )
        )
