import json
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

    def _mail_track(self, tracked_fields, initial_values):
        """An invoice queued on an own mailbox: its ``is_move_sent`` follows the mail's delivery, not
        the queuing, and the bookkeeping's flip is no change to show in the chatter.

        Core's Send & Print writes ``is_move_sent`` (true) with the PDF, which prepares its
        tracking; the bookkeeping sets it back until the customer's server accepts the mail
        (``_smtp_invoicing_set_delivery``, its own writes prepare no tracking). At commit,
        mail.thread calls this for each record whose tracked fields were written: without it,
        an invoice whose PDF existed would get "Sent: yes → no" (bench/send.py: a message and a
        tracking value per invoice). The other fields are tracked as usual.
        """
        if self.smtp_invoicing_delivery_state == "queued" and "is_move_sent" in initial_values:
            initial_values = {name: value for name, value in initial_values.items() if name != "is_move_sent"}
        return super()._mail_track(tracked_fields, initial_values)

    @api.model
    def _smtp_invoicing_record_deliveries(self, batch_id=None, documents=()):
        """The end of a mail queue session: Delivered, for the invoices whose mail the customer's server
        accepted, and ``is_move_sent`` for those a sending template carried.

        ``documents`` are the session's invoice mails, kept in ``batch_id`` while it sent them
        (``smtp_invoicing.delivery.batch``); a mail was accepted when core marked it sent or
        deleted it once sent. One statement records them, deletes the session's row and takes
        the rows of sessions a killed worker left behind (their lease is past), whose mails are
        recorded alike; where a session sent several mails of one invoice, the last one says
        where it stands. The statement also returns the invoices to mark sent (these and those
        a session cut short flagged, ``smtp_invoicing_sent_pending``), locked unless another
        session holds them: never waited for, the next session's end marks them. They are
        written through the ORM, once, so that other modules' ``write()`` see it; no tracking
        line (the chatter already shows the mail), nothing touches the accounting. Older
        undelivered copies of a delivered email are cancelled. The pending values of what the
        statement reads are flushed by the queue before (``mail.mail``).
        """
        moves = self.env["account.move"].sudo()  # the queue's bookkeeping, whatever user triggers it
        # the rows of dead sessions and its own are deleted when it can; its own mails are recorded anyway
        attempts = ((batch_id, True), (batch_id, False), (None, False)) if batch_id else ((None, True),)
        for own, recover in attempts:
            try:
                with self.env.cr.savepoint():
                    rows = self._smtp_invoicing_mark_delivered(own, documents, recover)
                    to_mark = moves.browse(move for kind, move, _template, _mail in rows if kind == "sent")
                    if to_mark:
                        to_mark.with_context(
                            check_move_validity=False,
                            skip_account_move_synchronization=True,
                            skip_invoice_sync=True,
                            tracking_disable=True,
                        ).write({"is_move_sent": True, "smtp_invoicing_sent_pending": False})
                break
            except psycopg2.errors.SerializationFailure:
                # a row changed by another session since this transaction began: the sessions' rows stay
                # and are recorded later (another worker recovering this one's, or a later session's end)
                _logger.info("Invoice deliveries of a mail queue session were changed by another session")
        else:
            return
        for _kind, move, template, mail in (row for row in rows if row[0] == "older"):
            moves.browse(move)._smtp_invoicing_cancel_older_copies(self.env["mail.template"].browse(template), mail)

    @api.model
    def _smtp_invoicing_mark_delivered(self, batch_id, documents, recover):
        """The statement of ``_smtp_invoicing_record_deliveries``; returns its rows: ("sent", invoice) to
        mark sent, ("older", invoice, template, mail) for the delivered mails with older undelivered
        copies. The ORM's bookkeeping is kept: the cache of the fields it writes is invalidated and
        the fields that depend on them are marked as modified, as ``write()`` does."""
        fnames = [
            "smtp_invoicing_delivery_state",
            "smtp_invoicing_mail_failure",
            "smtp_invoicing_delivered_at",
            "smtp_invoicing_sent_pending",
        ]
        self.env.cr.execute(
            SQL(
                """
                WITH forgotten AS (
                    DELETE FROM smtp_invoicing_delivery_batch
                     WHERE id IN (SELECT id FROM smtp_invoicing_delivery_batch
                                   WHERE id = %(own)s OR (%(recover)s AND lease_until < %(now)s)
                                   ORDER BY id
                                     FOR UPDATE SKIP LOCKED)
                 RETURNING documents
                ), documents AS (
                    SELECT document.*
                      FROM jsonb_to_recordset(%(documents)s::jsonb)
                           AS document(mail integer, move integer, template integer, sending boolean)
                     UNION
                    SELECT document.*
                      FROM forgotten
                     CROSS JOIN jsonb_to_recordset(forgotten.documents)
                           AS document(mail integer, move integer, template integer, sending boolean)
                ), mails AS (
                    SELECT documents.*, (mail_mail.id IS NULL OR mail_mail.state = 'sent') AS accepted
                      FROM documents
                      LEFT JOIN mail_mail ON mail_mail.id = documents.mail
                ), moves AS (
                    SELECT move,
                           (array_agg(accepted ORDER BY mail DESC))[1] AS last_accepted,
                           bool_or(accepted AND sending) AS sending_accepted
                      FROM mails
                  GROUP BY move
                    HAVING bool_or(accepted)
                ), delivered AS (
                    UPDATE account_move
                       SET smtp_invoicing_delivery_state = CASE WHEN moves.last_accepted THEN 'sent'
                                                                ELSE smtp_invoicing_delivery_state END,
                           smtp_invoicing_mail_failure = CASE WHEN moves.last_accepted THEN NULL
                                                              ELSE smtp_invoicing_mail_failure END,
                           smtp_invoicing_delivered_at = %(now)s,
                           smtp_invoicing_sent_pending = COALESCE(smtp_invoicing_sent_pending, FALSE)
                                OR (moves.sending_accepted AND NOT COALESCE(is_move_sent, FALSE)),
                           write_uid = %(uid)s,
                           write_date = %(write_date)s
                      FROM moves
                     WHERE account_move.id = moves.move
                 RETURNING account_move.id, account_move.smtp_invoicing_sent_pending
                ), pending AS (
                    SELECT id FROM account_move
                     WHERE smtp_invoicing_sent_pending AND id NOT IN (SELECT move FROM moves)
                     ORDER BY id
                       FOR NO KEY UPDATE SKIP LOCKED
                )
                SELECT 'delivered', id, NULL::integer, NULL::integer
                  FROM delivered
                 WHERE NOT smtp_invoicing_sent_pending
                 UNION ALL
                SELECT 'sent', id, NULL, NULL FROM delivered WHERE smtp_invoicing_sent_pending
                 UNION ALL
                SELECT 'sent', id, NULL, NULL FROM pending
                 UNION ALL
                SELECT 'older', mails.move, mails.template, mails.mail
                  FROM mails
                 WHERE mails.accepted AND EXISTS (
                        SELECT 1
                          FROM mail_mail older
                          JOIN mail_message message ON message.id = older.mail_message_id
                         WHERE message.model = 'account.move'
                           AND message.res_id = mails.move
                           AND older.smtp_invoicing_template_id = mails.template
                           AND older.state IN ('exception', 'outgoing')
                           AND older.id < mails.mail
                       )
                """,
                own=batch_id,
                recover=recover,
                now=fields.Datetime.now(),
                documents=json.dumps(list(documents)),
                uid=self.env.uid,
                write_date=self.env.cr.now(),
            ),
            log_exceptions=False,
        )
        rows = self.env.cr.fetchall()
        delivered = self.browse({move for kind, move, _template, _mail in rows if kind != "older"})
        self.invalidate_model([*fnames, "write_uid", "write_date"])
        delivered.modified(fnames)
        return rows

    def _smtp_invoicing_record_outcome(self, template, mail_id, outcome, reason, retries):
        """Show on the document that its mail ``mail_id`` was not delivered (yet) (called by the mail
        queue after each attempt; a delivery is recorded at the session's end,
        ``_smtp_invoicing_record_deliveries``)."""
        self.ensure_one()
        if outcome == "retry":
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
