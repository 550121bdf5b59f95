import logging
from collections import defaultdict
from datetime import datetime, time, timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression
from odoo.tools import SQL

from .mail_mail import RETRY_MINUTES

_logger = logging.getLogger(__name__)

REMINDER_BATCH_SIZE = 50


class AccountMove(models.Model):
    _inherit = "account.move"

    smtp_invoicing_reminder_count = fields.Integer(string="Reminders Sent", copy=False, readonly=True)
    smtp_invoicing_last_reminder_date = fields.Datetime(string="Last Reminder", copy=False, readonly=True)
    # When the scheduled action last tried, sent or not: a failing invoice
    # waits a whole interval instead of being retried in a loop.
    smtp_invoicing_reminder_attempt_date = fields.Datetime(copy=False, readonly=True)
    smtp_invoicing_days_overdue = fields.Integer(string="Days Overdue", compute="_compute_smtp_invoicing_days_overdue")
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
    smtp_invoicing_mail_failure = fields.Text(
        string="Email Not Delivered",
        copy=False,
        readonly=True,
        help="Why the last email of this document was not delivered (yet); empty once it is delivered.",
    )

    @api.depends("invoice_date_due")
    def _compute_smtp_invoicing_days_overdue(self):
        for move in self:
            due = move.invoice_date_due
            today = fields.Date.context_today(move)
            move.smtp_invoicing_days_overdue = (today - due).days if due and due < today else 0

    # ------------------------------------------------------------------
    # Payment reminders
    # ------------------------------------------------------------------

    def _smtp_invoicing_reminder_refusal(self):
        """Return why this invoice cannot get a payment reminder, or False."""
        self.ensure_one()
        if self.move_type != "out_invoice":
            return _("it is not a customer invoice")
        if self.state != "posted":
            return _("it is not posted")
        if self.payment_state not in ("not_paid", "partial"):
            return _("it is paid")
        if not self.invoice_date_due or self.invoice_date_due >= fields.Date.context_today(self):
            return _("it is not due yet")
        return False

    def _smtp_invoicing_check_remindable(self):
        refused = [(move, move._smtp_invoicing_reminder_refusal()) for move in self]
        refused = [(move, reason) for move, reason in refused if reason]
        if refused:
            raise UserError(
                _(
                    "Payment reminders only go to posted, unpaid, overdue customer invoices. Not sent:\n%(lines)s",
                    lines="\n".join(
                        self.env._("%(name)s: %(reason)s", name=move.display_name, reason=reason)
                        for move, reason in refused
                    ),
                )
            )

    def _smtp_invoicing_reminder_template(self):
        return self.env.ref("smtp_invoicing.email_template_payment_reminder")

    def action_smtp_invoicing_send_reminder(self):
        """Open the composer with the payment reminder of the selected invoices (form button, list action)."""
        if not self:
            raise UserError(_("Select the invoices to remind."))
        self._smtp_invoicing_check_remindable()
        template = self._smtp_invoicing_reminder_template()
        servers = template._smtp_invoicing_record_mail_servers(self.ids).values()
        self.env["ir.mail_server"].sudo().union(*servers)._smtp_invoicing_check_ready()
        return {
            "type": "ir.actions.act_window",
            "name": _("Send payment reminder"),
            "res_model": "mail.compose.message",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {
                "default_model": "account.move",
                "default_res_ids": self.ids,
                "default_template_id": template.id,
                "default_composition_mode": "comment",
                "default_email_layout_xmlid": "mail.mail_notification_layout_with_responsible_signature",
                "default_subtype_xmlid": "mail.mt_comment",
                "force_email": True,
            },
        }

    def _smtp_invoicing_mark_reminded(self):
        now = fields.Datetime.now()
        for move in self.sudo():
            move.write(
                {
                    "smtp_invoicing_reminder_count": move.smtp_invoicing_reminder_count + 1,
                    "smtp_invoicing_last_reminder_date": now,
                    "smtp_invoicing_reminder_attempt_date": now,
                }
            )

    @api.model
    def _smtp_invoicing_auto_reminder_domain(self):
        companies = self.env["res.company"].sudo().search([("smtp_invoicing_auto_reminder", "=", True)])
        today = fields.Date.context_today(self)
        company_domains = []
        for company in companies:
            due_before = today - timedelta(days=max(company.smtp_invoicing_reminder_delay, 1) - 1)
            # a reminder on day D is repeated on day D + interval, whatever the hour
            tried_before = datetime.combine(
                today - timedelta(days=max(company.smtp_invoicing_reminder_interval, 1) - 1), time.min
            )
            company_domains.append(
                [
                    ("company_id", "=", company.id),
                    ("invoice_date_due", "<", due_before),
                    "|",
                    ("smtp_invoicing_reminder_attempt_date", "=", False),
                    ("smtp_invoicing_reminder_attempt_date", "<", tried_before),
                ]
            )
        if not company_domains:
            return expression.FALSE_DOMAIN
        return expression.AND(
            [
                [
                    ("move_type", "=", "out_invoice"),
                    ("state", "=", "posted"),
                    ("payment_state", "in", ("not_paid", "partial")),
                    ("partner_id.smtp_invoicing_no_reminder", "=", False),
                    ("commercial_partner_id.smtp_invoicing_no_reminder", "=", False),
                ],
                expression.OR(company_domains),
            ]
        )

    @api.model
    def _cron_send_payment_reminders(self):
        """Scheduled action: send the payment reminder to invoices overdue for long enough.

        Only for companies that switched automatic reminders on; at most once
        per interval per invoice; never to partners who must not be reminded.
        Bounded batches; an invoice that fails is logged, noted in its chatter
        and skipped until the next interval.
        """
        domain = self._smtp_invoicing_auto_reminder_domain()
        moves = self.search(domain, order="invoice_date_due, id", limit=REMINDER_BATCH_SIZE)
        template = self._smtp_invoicing_reminder_template()
        for move in moves:
            move.smtp_invoicing_reminder_attempt_date = fields.Datetime.now()
            try:
                with self.env.cr.savepoint():
                    move.with_context(lang=move.partner_id.lang).message_post_with_source(
                        template,
                        message_type="comment",
                        subtype_xmlid="mail.mt_comment",
                        email_layout_xmlid="mail.mail_notification_layout_with_responsible_signature",
                    )
            except Exception as error:  # one invoice must not stop the others
                _logger.warning("Automatic payment reminder of invoice %s failed", move.id, exc_info=True)
                move._message_log(
                    body=_(
                        "The automatic payment reminder could not be sent: %(reason)s",
                        reason=error.args[0] if isinstance(error, UserError) else _("unexpected error"),
                    )
                )
        self.env["ir.cron"]._notify_progress(done=len(moves), remaining=self.search_count(domain))
        return True

    # ------------------------------------------------------------------
    # Delivery of the document's own mails
    # ------------------------------------------------------------------

    def _smtp_invoicing_set_delivery(self, state, failure=False, templates=None):
        """Record where the document's last own-mailbox email stands.

        ``is_move_sent`` follows the mails of the sending templates (not the payment
        reminder): true once one of them was accepted by the customer's server, false
        while none ever was.
        """
        # called for every mail the queue sends: the id is cached, where env.ref() checks it exists
        reminder_id = self.env["ir.model.data"]._xmlid_to_res_id(
            "smtp_invoicing.email_template_payment_reminder", raise_if_not_found=False
        )
        sending = bool(templates and set(templates.ids) - {reminder_id})
        now = fields.Datetime.now()
        # Written for every mail the queue sends (bench/send.py, bench/limit.py). None of these
        # fields touches the accounting: no balance check or line synchronisation, a dozen queries
        # per write of a posted invoice. No tracking either: a chatter line for each flip of
        # is_move_sent cost more than the rest of the bookkeeping; the chatter already shows the
        # mail, and the Email Delivery field where it stands.
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
        """The customer's server accepted the mail ``mail_id``: Delivered, and ``is_move_sent`` for a
        sending template. Return whether older undelivered copies of the same email remain.

        The mail queue calls this for every mail it delivers, so it costs one statement: the
        update and the look for older copies together (bench/send.py: one query per mail over
        Odoo without the module). The ORM's bookkeeping is kept: pending values of these fields
        are flushed first, the cache is invalidated and the fields that depend on them are
        marked as modified, as ``write()`` does. Nothing here touches the accounting, and no
        tracking line is written (the chatter already shows the mail).
        """
        self.ensure_one()
        reminder_id = self.env["ir.model.data"]._xmlid_to_res_id(
            "smtp_invoicing.email_template_payment_reminder", raise_if_not_found=False
        )
        sending = template.id != reminder_id
        fnames = ["smtp_invoicing_delivery_state", "smtp_invoicing_mail_failure", "smtp_invoicing_delivered_at"]
        if sending:
            fnames.append("is_move_sent")
        self.flush_recordset(fnames)
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
                       is_move_sent = is_move_sent OR %(sending)s,
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
        if sending:
            self._smtp_invoicing_keep_out_of_tracking()
        return bool(row and row[0])

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
