import contextlib
import contextvars
import logging
import smtplib
import sys
from collections import defaultdict
from datetime import timedelta

from odoo import _, api, fields, models, tools

from .smtp_invoicing_mailbox_budget import BUDGET_SESSION_MAILS
from .smtp_invoicing_mailbox_delivery import MailRefused, SendingPaused, SessionRefused

# A mail refused for a temporary reason (4xx, connection dropped, server
# unreachable) is retried after these many minutes, one value per attempt; then
# it stays in exception.
RETRY_MINUTES = (5, 15, 60, 240, 720)
MAX_RETRIES = len(RETRY_MINUTES)
# Mails waiting for their mailbox are looked at again after this many minutes at the latest.
HOLD_MINUTES = 60

# Set by the module's own sending paths (Send & Print, the composer with a
# template, template.send_mail, automatic reminders) for the duration of the call:
# {(model, res_id): (mailbox id (smtp_invoicing.mailbox) or False, template id)}, resolved on the server side
# from the template and the record's company. A context key could be forged by
# any RPC caller; a context variable cannot.
_CHOSEN = contextvars.ContextVar("smtp_invoicing_chosen_mailboxes", default=None)

_logger = logging.getLogger(__name__)


@contextlib.contextmanager
def chosen_mailboxes(choices):
    """Let the mails created inside leave from the mailboxes their template chose (see _CHOSEN)."""
    if not choices:
        yield
        return
    outer = _CHOSEN.get() or {}
    token = _CHOSEN.set({**outer, **choices})
    try:
        yield
    finally:
        _CHOSEN.reset(token)


class MailMail(models.Model):
    """Mails of own mailboxes: only those their template chose, delivered or visibly not.

    Every override here first keeps to the mails of own mailboxes; other mails go
    through core untouched.
    """

    _inherit = "mail.mail"

    smtp_invoicing_retry_count = fields.Integer(string="Delivery Retries", copy=False, readonly=True)
    smtp_invoicing_mailbox_id = fields.Many2one(
        "smtp_invoicing.mailbox",
        string="Allowed Mailbox",
        copy=False,
        readonly=True,
        help="The own mailbox this mail was allowed to leave from, decided when it was created.",
    )
    smtp_invoicing_template_id = fields.Many2one(
        "mail.template",
        string="Document Template",
        copy=False,
        readonly=True,
        index="btree_not_null",
        help="Set on the mails that carry a document to its recipients through an own mailbox: "
        "the document's delivery state follows them.",
    )

    # ------------------------------------------------------------------
    # Which mails may leave from an own mailbox
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        """Give each new mail the mailbox its template chose, and no other.

        A mail created by the module's sending paths gets the mailbox resolved for its
        record (``chosen_mailboxes``). Any other mail that names an own mailbox (a
        ``mail_server_id`` passed by a caller) keeps it only when a Settings
        administrator asked for it; else it goes through Odoo's default routing, and
        the attempt is logged.
        """
        mails = super().create(vals_list)
        chosen = _CHOSEN.get()
        candidates = mails if chosen else mails.filtered("mail_server_id")
        if candidates:
            candidates.sudo()._smtp_invoicing_assign_mailboxes(chosen or {})
        return mails

    def _smtp_invoicing_assign_mailboxes(self, chosen):
        updates = defaultdict(lambda: self.browse())  # values (as a tuple) -> mails, written once per group
        queued = defaultdict(lambda: self.env["account.move"])
        replies = self._smtp_invoicing_alias_replies(chosen)
        Mailbox = self.env["smtp_invoicing.mailbox"]
        named = {mailbox.mail_server_id: mailbox for mailbox in Mailbox._smtp_invoicing_of_servers(self.mail_server_id)}
        for mail in self:
            choice = chosen.get((mail.model, mail.res_id))
            server = named.get(mail.mail_server_id)
            if choice is not None:
                mailbox_id, template_id = choice
                if mailbox_id:
                    mailbox = Mailbox.browse(mailbox_id)
                    values = {"mail_server_id": mailbox.mail_server_id.id, "smtp_invoicing_mailbox_id": mailbox_id}
                    if (
                        not replies.get((mail.model, mail.res_id))
                        and not self.env["mail.template"].browse(template_id).reply_to
                    ):
                        values["reply_to"] = mailbox._smtp_invoicing_sender()
                    if mail._smtp_invoicing_carries_document():
                        values["smtp_invoicing_template_id"] = template_id
                        # kept on the message, which outlives an auto-deleted mail (bounces)
                        values["smtp_invoicing_document_template_id"] = template_id
                        if mail.model == "account.move":
                            queued[template_id] |= self.env["account.move"].browse(mail.res_id)
                    updates[tuple(values.items())] |= mail
                elif server:
                    updates[(("mail_server_id", False),)] |= mail
            elif server:
                if server._smtp_invoicing_is_enabled() and (
                    self.env.user._is_superuser() or self.env.user._is_system()
                ):
                    updates[(("smtp_invoicing_mailbox_id", server.id),)] |= mail
                else:
                    _logger.warning(
                        "Mail %s: mailbox %s is an own mailbox its template did not choose (asked by user %s); "
                        "sent through the default routing instead",
                        mail.id,
                        server.id,
                        self.env.uid,
                    )
                    updates[(("mail_server_id", False),)] |= mail
        for values, mails in updates.items():
            mails.write(dict(values))
        for template_id, moves in queued.items():
            moves._smtp_invoicing_set_delivery("queued", templates=self.env["mail.template"].browse(template_id))

    def _smtp_invoicing_alias_replies(self, chosen):
        """Return {(model, res_id): core's alias Reply-To or False} of the mails leaving from a chosen mailbox.

        Where the company has an alias domain, core's reply-to (the record's alias or the
        catchall) brings replies to the chatter and is kept. Elsewhere core falls back on the
        mail's author, who may be OdooBot or a placeholder address: the mail then gets the
        mailbox's own sender as Reply-To, an inbox a person reads.
        """
        res_ids = defaultdict(set)
        for mail in self:
            if mail.model and mail.res_id and (chosen.get((mail.model, mail.res_id)) or (False,))[0]:
                res_ids[mail.model].add(mail.res_id)
        replies = {}
        for model, ids in res_ids.items():
            records = self.env[model].browse(sorted(ids))
            replies.update({(model, res_id): reply for res_id, reply in records._notify_get_reply_to().items()})
        return replies

    def _smtp_invoicing_carries_document(self):
        """True for the mail to the document's own recipients, not its followers' copies."""
        self.ensure_one()
        addressed = self.mail_message_id.partner_ids
        return not addressed or bool(self.recipient_ids & addressed) or bool(self.email_to)

    # ------------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------------

    def _split_by_mail_configuration(self):
        """Keep own mailboxes to the mails they were allowed for, and hold those they cannot send now.

        Called by ``send()``. A mail whose own mailbox was not allowed at creation, or
        is switched off, or belongs to another company, goes back to Odoo's default
        routing. A mail whose mailbox is not verified right now (pending, failed, key
        lost) stays in the queue, untouched, until the mailbox is verified again.
        """
        # sudo: routing is decided for the queue, whatever user triggers it
        mails = self.sudo()
        own_servers = (
            mails.env["smtp_invoicing.mailbox"]._smtp_invoicing_of_servers(mails.mail_server_id).mail_server_id
        )
        own = mails.filtered(lambda mail: mail.mail_server_id in own_servers)
        held = mails.browse()
        if own:
            rerouted = own.filtered(
                lambda mail: (
                    mail.smtp_invoicing_mailbox_id.mail_server_id != mail.mail_server_id
                    or not mail.smtp_invoicing_mailbox_id._smtp_invoicing_accepts(mail.record_company_id)
                )
            )
            if rerouted:
                rerouted.write({"mail_server_id": False})
            held = (own - rerouted).filtered(
                lambda mail: mail.smtp_invoicing_mailbox_id.verification_state != "verified"
            )
            if held:
                held._smtp_invoicing_hold()
        batches = super(MailMail, self - held)._split_by_mail_configuration()
        if not own:
            return batches
        mailboxes = {mail.mail_server_id.id: mail.smtp_invoicing_mailbox_id for mail in own - held}
        return self._smtp_invoicing_within_limits(batches, mailboxes)

    def _smtp_invoicing_within_limits(self, batches, mailboxes):
        """Core's batches (one SMTP session each), the mailboxes' within their provider's limits.

        Before its session connects, a mailbox's batch takes from the shared budget the mails
        that may leave now and a connection slot (``_smtp_invoicing_take_submission``); the
        others wait in the queue until the time they may leave. Once core has sent the batch
        (the generator is resumed for the next one, or closed), the session counts what the
        server accepted and frees its slot, and the invoices whose mail was accepted are marked
        Delivered, and sent, for the whole session (``account.move._smtp_invoicing_record_deliveries``).
        """
        for mail_server_id, alias_domain_id, smtp_from, core_batch_ids in batches:
            mailbox = mailboxes.get(mail_server_id)
            if not mailbox:
                yield mail_server_id, alias_domain_id, smtp_from, core_batch_ids
                continue
            # a mailbox with a daily limit sends in short sessions (BUDGET_SESSION_MAILS), counted from their end
            size = BUDGET_SESSION_MAILS if mailbox.smtp_invoicing_daily_limit else len(core_batch_ids)
            for start in range(0, len(core_batch_ids), size):
                held_back = yield from self._smtp_invoicing_session_within_limits(
                    mailbox, mail_server_id, alias_domain_id, smtp_from, core_batch_ids[start : start + size]
                )
                rest = core_batch_ids[start + size :]
                if held_back and rest:  # the budget is spent: the rest waits as long, without asking again
                    self.browse(rest).sudo()._smtp_invoicing_wait(mailbox, *held_back)
                if held_back:
                    break

    def _smtp_invoicing_session_within_limits(self, mailbox, mail_server_id, alias_domain_id, smtp_from, batch_ids):
        """One SMTP session of ``mailbox`` for ``batch_ids``, within its budget (``_smtp_invoicing_within_limits``).

        Returns ``(when, why)`` when the budget held some of them back, else None.
        """
        mails = self.browse(batch_ids).sudo()
        submission, allowed, when, why = mailbox._smtp_invoicing_take_submission(
            lambda mails=mails: [mail._smtp_invoicing_recipient_count() for mail in mails], count=len(mails)
        )
        held_back = (when, why) if allowed < len(mails) else None
        if held_back:
            mails[allowed:]._smtp_invoicing_wait(mailbox, when, why)
        if not allowed:
            return held_back
        sending = mails[:allowed]
        batch, documents = self.env["smtp_invoicing.delivery.batch"]._smtp_invoicing_open(sending)
        try:
            yield mail_server_id, alias_domain_id, smtp_from, sending.ids
        finally:
            # accepted: sent, or sent and auto-deleted; one statement
            self.env.flush_all()
            self.env.cr.execute(
                "SELECT COUNT(*) FROM mail_mail WHERE id IN %s AND state != 'sent'", [tuple(sending.ids)]
            )
            mailbox._smtp_invoicing_end_submission(submission, allowed - self.env.cr.fetchone()[0])
            self.env["account.move"]._smtp_invoicing_record_deliveries(batch, documents)
        return held_back

    def _smtp_invoicing_recipient_count(self):
        """Recipients of this mail as the provider counts them (To, Cc and the notified partners)."""
        self.ensure_one()
        addresses = self.recipient_ids.mapped("email") + tools.email_split(self.email_to or "")
        return max(1, len(addresses) + len(tools.email_split(self.email_cc or "")))

    def _smtp_invoicing_wait(self, mailbox, when, why):
        """These mails wait in the queue until ``when`` (their mailbox's limits or pause), untouched
        otherwise: no attempt is counted, nothing is failed, the queue is woken up at that time."""
        when = when or fields.Datetime.now()
        self.write({"state": "outgoing", "scheduled_date": when})
        self._smtp_invoicing_notifications_pending()
        self.env.ref("mail.ir_cron_mail_scheduler_action")._trigger(at=when)
        documents = self.filtered(lambda mail: mail.smtp_invoicing_template_id and mail.model == "account.move")
        if documents:
            lang_mailbox = mailbox.with_context(lang=mailbox._smtp_invoicing_reader_lang())
            failure = lang_mailbox.env._(
                "Waiting: leaves after %(when)s (%(why)s).",
                when=lang_mailbox._smtp_invoicing_format_time(when),
                why=why or "",
            )
            for mail in documents:
                self.env["account.move"].browse(mail.res_id)._smtp_invoicing_set_delivery(
                    "queued", failure=failure, templates=mail.smtp_invoicing_template_id
                )

    def send(self, auto_commit=False, raise_exception=False, post_send_callback=None):
        """One own mailbox whose connection breaks must not stop the queue for the others.

        When a server drops the connection (e.g. during DATA), core's closing ``quit()``
        raises ``SMTPServerDisconnected`` out of ``send()``: the queue run would end
        there, before the next servers' batches. Mails of own mailboxes are sent after
        the others, one mailbox at a time. Called by the mail queue cron and by direct sends.
        """
        if raise_exception:
            try:
                return super().send(
                    auto_commit=auto_commit, raise_exception=raise_exception, post_send_callback=post_send_callback
                )
            except (smtplib.SMTPServerDisconnected, SendingPaused) as error:
                paused = error if isinstance(error, SendingPaused) else error.__context__
                if not isinstance(paused, SendingPaused):
                    raise
                self._smtp_invoicing_paused(paused)
                return True
        by_mailbox = {}
        # sudo: routing is decided for the queue, whatever user triggers it
        mails = self.sudo()
        own_servers = (
            mails.env["smtp_invoicing.mailbox"]._smtp_invoicing_of_servers(mails.mail_server_id).mail_server_id
        )
        for mail in mails:
            server = mail.mail_server_id
            if server in own_servers:
                by_mailbox.setdefault(server, []).append(mail.id)
        if not by_mailbox:
            return super().send(auto_commit=auto_commit, post_send_callback=post_send_callback)
        others = self - self.browse([mail_id for ids in by_mailbox.values() for mail_id in ids])
        if others:
            super(MailMail, others).send(auto_commit=auto_commit, post_send_callback=post_send_callback)
        for server, mail_ids in by_mailbox.items():
            try:
                super(MailMail, self.browse(mail_ids)).send(
                    auto_commit=auto_commit, post_send_callback=post_send_callback
                )
            except (smtplib.SMTPServerDisconnected, SendingPaused) as error:
                # a server that closes on its "slow down" (421) makes core's closing quit() fail too
                paused = error if isinstance(error, SendingPaused) else error.__context__
                if isinstance(paused, SendingPaused):
                    self.browse(mail_ids)._smtp_invoicing_paused(paused)
                else:
                    _logger.info("Mail server %s disconnected while closing; its mails keep their status", server.id)
        return True

    def _smtp_invoicing_paused(self, paused):
        """The provider asked the mailbox to slow down while these mails were being sent: the refused one
        and those not sent yet wait for the end of the pause, uncounted (``SendingPaused``)."""
        mails = self.sudo().exists()
        refused = mails.filtered(lambda mail: mail.message_id == paused.message_id)
        waiting = refused | mails.filtered(lambda mail: mail.state == "outgoing")
        waiting.write({"failure_reason": False, "failure_type": False})
        waiting._smtp_invoicing_wait(paused.mailbox, paused.refusal.until, paused.refusal.why)

    def _postprocess_sent_message(self, success_pids, failure_reason=False, failure_type=None):
        """Own mailboxes: retry what may heal, hold what waits for the mailbox, and show the
        outcome on the documents the mails carried.

        Called by ``send()`` after each attempt, and for a whole batch when the
        connection could not be opened.
        """
        refusal = self._smtp_invoicing_refusal_in_hand()
        mails = self.sudo()
        # a mail sent by an own mailbox has its server and the mailbox as allowed mailbox
        # (_split_by_mail_configuration); the queue commits (and forgets its cache) after each
        # mail: the server of a mailbox, which never changes, is cached for the registry
        Mailbox = mails.env["smtp_invoicing.mailbox"]
        own = mails.filtered(
            lambda mail: (
                mail.smtp_invoicing_mailbox_id
                and Mailbox._smtp_invoicing_server_of(mail.smtp_invoicing_mailbox_id.id) == mail.mail_server_id.id
            )
        )
        if not own:
            return super()._postprocess_sent_message(
                success_pids=success_pids, failure_reason=failure_reason, failure_type=failure_type
            )
        failed = own.filtered(lambda mail: mail.state == "exception")
        held = failed.filtered(lambda mail: mail.smtp_invoicing_mailbox_id.verification_state != "verified")
        # the provider asked to slow down (this reply, or at connection): the mails wait, uncounted
        paused = (failed - held) if refusal and refusal.until else failed.browse()
        temporary = failure_type == "mail_smtp" or bool(refusal and refusal.temporary)
        retry = (failed - held - paused).filtered(
            lambda mail: temporary and mail.smtp_invoicing_retry_count < MAX_RETRIES
        )
        # read before core's postprocess, which deletes the sent mails that auto-delete; a delivery
        # is recorded for the whole session at its end (_smtp_invoicing_session_within_limits), a
        # paused mail waits uncounted: only the other outcomes are shown on the invoice now
        outcomes = []
        for mail in own.filtered(lambda mail: mail.model == "account.move" and mail.smtp_invoicing_template_id):
            if mail in paused or mail.state == "sent":
                continue
            outcome = "held" if mail in held else "retry" if mail in retry else mail.state
            outcomes.append(
                (
                    mail.res_id,
                    mail.smtp_invoicing_template_id,
                    mail.id,
                    outcome,
                    mail.failure_reason,
                    mail.smtp_invoicing_retry_count,
                    mail.smtp_invoicing_mailbox_id,
                )
            )
        result = super()._postprocess_sent_message(
            success_pids=success_pids, failure_reason=failure_reason, failure_type=failure_type
        )
        if held:
            held._smtp_invoicing_hold()
        for mailbox in paused.smtp_invoicing_mailbox_id:
            mine = paused.filtered(lambda mail, mailbox=mailbox: mail.smtp_invoicing_mailbox_id == mailbox)
            mine.write({"failure_reason": False, "failure_type": False})
            mine._smtp_invoicing_wait(mailbox, refusal.until, refusal.why)
        for mail in retry:
            mail._smtp_invoicing_schedule_retry()
        for res_id, template, mail_id, outcome, reason, retries, mailbox in outcomes:
            # a reason is shown on the invoice in the mailbox readers' language, not the queue's
            lang = mailbox._smtp_invoicing_reader_lang()
            self.env["account.move"].with_context(lang=lang).browse(res_id)._smtp_invoicing_record_outcome(
                template, mail_id, outcome, reason, retries
            )
        return result

    def _smtp_invoicing_refusal_in_hand(self):
        """The Refusal of these mails by their own mailbox's server, or None.

        Core calls ``_postprocess_sent_message()`` while it handles the failure: inside its
        ``except`` around the mail in ``_send()``, or around the batch's connection in ``send()``.
        The refusal travels on that exception (``MailRefused`` names its mail by Message-ID,
        ``SessionRefused`` its mailbox), so it is read off the exception being handled, and only
        for the mails it names.
        """
        error = sys.exc_info()[1]
        if isinstance(error, MailRefused) and error.message_id in self.mapped("message_id"):
            return error.refusal
        if isinstance(error, SessionRefused) and error.mailbox_id in self.sudo().smtp_invoicing_mailbox_id.ids:
            return error.refusal
        return None

    def _smtp_invoicing_schedule_retry(self):
        """Back to the queue for a later attempt, and wake the queue up for that time."""
        self.ensure_one()
        when = fields.Datetime.now() + timedelta(minutes=RETRY_MINUTES[self.smtp_invoicing_retry_count])
        self.write(
            {
                "state": "outgoing",
                "smtp_invoicing_retry_count": self.smtp_invoicing_retry_count + 1,
                "scheduled_date": when,
            }
        )
        self._smtp_invoicing_notifications_pending()
        self.env.ref("mail.ir_cron_mail_scheduler_action")._trigger(at=when)

    def _smtp_invoicing_hold(self):
        """Leave these mails in the queue until their mailbox is verified again.

        They are looked at again in an hour at the latest (``HOLD_MINUTES``): waiting mails
        must not fill the queue's batches and keep other servers' mails from leaving. The
        mailbox's verification brings them back at once (``_smtp_invoicing_release_held_mails``).
        """
        later = fields.Datetime.now() + timedelta(minutes=HOLD_MINUTES)
        self.filtered(lambda mail: mail.state != "outgoing" or (mail.scheduled_date or later) < later).write(
            {"state": "outgoing", "scheduled_date": later}
        )
        self._smtp_invoicing_notifications_pending()
        for mail in self.filtered(lambda mail: mail.smtp_invoicing_template_id and mail.model == "account.move"):
            server = mail.smtp_invoicing_mailbox_id
            self.env["account.move"].browse(mail.res_id)._smtp_invoicing_set_delivery(
                "queued",
                failure=_(
                    "Waiting: the mailbox “%(name)s” cannot send right now (%(reason)s). The email stays in the "
                    "queue and leaves as soon as the mailbox is verified again.",
                    name=server.name,
                    reason=server.verification_message or _("not verified"),
                ),
                templates=mail.smtp_invoicing_template_id,
            )

    def _smtp_invoicing_notifications_pending(self):
        """Still being delivered: no red envelope for a mail Odoo keeps trying."""
        notifications = (
            self.env["mail.notification"]
            .sudo()
            .search([("mail_mail_id", "in", self.ids), ("notification_status", "=", "exception")])
        )
        notifications.write({"notification_status": "ready", "failure_type": False, "failure_reason": False})
