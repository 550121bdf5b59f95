import logging
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import email_normalize, format_datetime

from ..lib import providers
from .leases import SLOT_WAIT, locking_select

_logger = logging.getLogger(__name__)

DAY = timedelta(hours=24)
MINUTE = timedelta(minutes=1)
# An SMTP session holds its connection slot at most this long: a worker killed mid-session
# gives its slot back by itself.
SESSION_LEASE = timedelta(minutes=30)
# A mailbox with a daily limit sends at most this many mails per SMTP session: the provider counts
# each mail when it accepts it, the budget counts a session's mails from the session's end, so a
# short session keeps the next day's mails from leaving much later than the provider allows.
BUDGET_SESSION_MAILS = 200
# Pauses longer than this (several in a row) ask a Settings administrator to look.
LONG_PAUSE = timedelta(days=1)
LIMIT_FIELDS = (
    "smtp_invoicing_daily_limit",
    "smtp_invoicing_daily_recipient_limit",
    "smtp_invoicing_minute_limit",
    "smtp_invoicing_max_connections",
)


class SmtpInvoicingMailbox(models.Model):
    """The provider's limits, kept: a daily budget and a per-minute rate (rolling windows), a
    connection cap, and a pause when the provider says "slow down".

    Every worker and every Odoo server counts in the same table (``smtp_invoicing.submission``):
    an SMTP session takes the mails it may submit and its connection slot before it connects,
    in a short transaction under the mailbox's row lock, and gives back what it did not use.
    Mails beyond the budget stay queued with the time they may leave (``scheduled_date``) and
    the queue is triggered for that time.
    """

    _inherit = "smtp_invoicing.mailbox"

    smtp_invoicing_daily_limit = fields.Integer(
        string="Mails per Day",
        compute="_compute_smtp_invoicing_limits",
        store=True,
        readonly=False,
        help="Mails this mailbox sends in any 24 hours at most (the provider's limit; you may lower it). 0: no limit.",
    )
    smtp_invoicing_daily_recipient_limit = fields.Integer(
        string="Recipients per Day",
        compute="_compute_smtp_invoicing_limits",
        store=True,
        readonly=False,
        help="Recipients of those mails in any 24 hours at most. 0: no limit.",
    )
    smtp_invoicing_minute_limit = fields.Integer(
        string="Mails per Minute",
        compute="_compute_smtp_invoicing_limits",
        store=True,
        readonly=False,
        help="Mails this mailbox sends in any minute at most. 0: no limit.",
    )
    smtp_invoicing_max_connections = fields.Integer(
        string="Connections at Once",
        compute="_compute_smtp_invoicing_limits",
        store=True,
        readonly=False,
        help="SMTP connections open at the same time at most, all Odoo workers together. 0: no limit.",
    )
    smtp_invoicing_paused_until = fields.Datetime(
        string="Sending Paused Until",
        readonly=True,
        copy=False,
        help="The provider asked to slow down: no mail leaves this mailbox before then.",
    )
    smtp_invoicing_paused_since = fields.Datetime(string="Paused Since", readonly=True, copy=False)
    smtp_invoicing_pause_message = fields.Char(string="Pause", readonly=True, copy=False)
    smtp_invoicing_pause_reason = fields.Char(string="Pause Reason", readonly=True, copy=False)
    smtp_invoicing_budget_status = fields.Char(string="Sent Today", compute="_compute_smtp_invoicing_budget_status")
    smtp_invoicing_sender_notice = fields.Char(string="Sender Notice", compute="_compute_smtp_invoicing_sender_notice")

    # ------------------------------------------------------------------
    # Limits: the provider's, lowered at will
    # ------------------------------------------------------------------

    def _smtp_invoicing_profile(self):
        self.ensure_one()
        return providers.profile_of(
            self.smtp_invoicing_preset, sender_email=self.sender_email, smtp_user=self.sudo().smtp_user
        )

    @api.depends("smtp_invoicing_preset", "sender_email", "smtp_user")
    def _compute_smtp_invoicing_limits(self):
        """The provider's published limits for this account: a new provider or account starts
        from them; Custom starts without limits until the server says otherwise."""
        for mailbox in self:
            profile = mailbox._smtp_invoicing_profile()
            mailbox.smtp_invoicing_daily_limit = profile.daily_messages or 0
            mailbox.smtp_invoicing_daily_recipient_limit = profile.daily_recipients or 0
            mailbox.smtp_invoicing_minute_limit = profile.per_minute or 0
            mailbox.smtp_invoicing_max_connections = profile.connections or 0

    @api.constrains(*LIMIT_FIELDS)
    def _check_smtp_invoicing_limits(self):
        labels = {name: self._fields[name].get_description(self.env)["string"] for name in LIMIT_FIELDS}
        for mailbox in self:
            profile = mailbox._smtp_invoicing_profile()
            published = dict(
                zip(
                    LIMIT_FIELDS,
                    (profile.daily_messages, profile.daily_recipients, profile.per_minute, profile.connections),
                    strict=True,
                )
            )
            for name in LIMIT_FIELDS:
                value = mailbox[name]
                if value < 0:
                    raise ValidationError(
                        _("“%(field)s” of “%(name)s” cannot be negative.", field=labels[name], name=mailbox.name)
                    )
                limit = published[name]
                if limit and not 0 < value <= limit:
                    raise ValidationError(
                        _(
                            "%(provider)s allows at most %(limit)s for “%(field)s” of “%(name)s”: you may lower "
                            "it, not raise it (past it the provider refuses mails or blocks the account).",
                            provider=profile.label,
                            limit=limit,
                            field=labels[name],
                            name=mailbox.name,
                        )
                    )

    @api.depends("smtp_invoicing_preset", "sender_email", "smtp_user")
    def _compute_smtp_invoicing_sender_notice(self):
        for mailbox in self:
            mailbox.smtp_invoicing_sender_notice = mailbox._smtp_invoicing_sender_warning()

    def _compute_smtp_invoicing_budget_status(self):
        now = fields.Datetime.now()
        used = self._smtp_invoicing_used(now)
        for mailbox in self:
            day, _recipients, _minute, _open = used.get(mailbox.id, (0, 0, 0, 0))
            if mailbox.smtp_invoicing_daily_limit:
                mailbox.smtp_invoicing_budget_status = _(
                    "%(used)s of %(limit)s in the last 24 hours", used=day, limit=mailbox.smtp_invoicing_daily_limit
                )
            else:
                mailbox.smtp_invoicing_budget_status = _("%(used)s in the last 24 hours", used=day)

    def _smtp_invoicing_used(self, now, cr=None):
        """{mailbox id: (mails in 24 h, recipients in 24 h, mails in the last minute, open sessions)}."""
        if not self.ids:
            return {}
        cr = cr or self.env.cr
        cr.execute(
            """SELECT mailbox_id,
                      COALESCE(SUM(count), 0), COALESCE(SUM(recipients), 0),
                      COALESCE(SUM(count) FILTER (WHERE taken_at > %(minute)s), 0),
                      COUNT(*) FILTER (WHERE open_until > %(now)s)
                 FROM smtp_invoicing_submission
                WHERE mailbox_id IN %(ids)s AND taken_at > %(day)s
             GROUP BY mailbox_id""",
            {"ids": tuple(self.ids), "now": now, "day": now - DAY, "minute": now - MINUTE},
        )
        return {row[0]: row[1:] for row in cr.fetchall()}

    # ------------------------------------------------------------------
    # Sessions: take the budget before connecting, give back what was not used
    # ------------------------------------------------------------------

    def _smtp_invoicing_take_submission(self, recipients, count=None):
        """Take a session for ``count`` mails: ``recipients`` is their recipient counts, in sending order,
        or a callable giving them, called only when the mailbox counts recipients (then ``count`` is given).

        Returns ``(submission id or None, how many of the mails may leave now, when the others
        may, why)``. In a short transaction of its own under the mailbox's row lock, so that two
        workers never both take the last mail of the budget or the last connection slot.
        """
        self.ensure_one()
        with self.env.registry.cursor() as cr:
            # the lock and what the budget needs, in one statement (run for every batch of the queue)
            rows = locking_select(
                cr,
                """SELECT id, smtp_invoicing_paused_until, smtp_invoicing_pause_reason, smtp_invoicing_daily_limit,
                          smtp_invoicing_daily_recipient_limit, smtp_invoicing_minute_limit,
                          smtp_invoicing_max_connections
                     FROM smtp_invoicing_mailbox WHERE id = %s FOR NO KEY UPDATE""",
                [self.id],
                whole_rows=True,
            )
            if not rows:
                return None, 0, None, None
            _id, paused_until, pause_reason, daily, daily_recipients_limit, per_minute, connections = rows[0]
            mailbox = self.with_env(self.env(cr=cr, su=True))
            now = fields.Datetime.now()
            if paused_until:
                if paused_until > now:
                    return None, 0, paused_until, pause_reason
                # the pause is over: this session is the one probe; a new refusal pauses again
                cr.execute(
                    """UPDATE smtp_invoicing_mailbox SET smtp_invoicing_paused_until = NULL,
                              smtp_invoicing_pause_message = NULL, smtp_invoicing_pause_reason = NULL
                        WHERE id = %s""",
                    [mailbox.id],
                )
            counts = (recipients() if callable(recipients) else recipients) if daily_recipients_limit else None
            wanted = count if count is not None else len(recipients)
            day, day_recipients, minute, sessions = mailbox._smtp_invoicing_used(now, cr).get(mailbox.id, (0, 0, 0, 0))
            if connections and sessions >= connections:
                return None, 0, now + SLOT_WAIT, mailbox._smtp_invoicing_limit_reason("connection_limit")
            allowed, limit_kind = wanted, None
            for kind, limit, used in (("daily_limit", daily, day), ("rate_limit", per_minute, minute)):
                if limit and limit - used < allowed:
                    allowed, limit_kind = max(limit - used, 0), kind
            if counts is not None:
                room, fitting = daily_recipients_limit - day_recipients, 0
                for count in counts[:allowed]:
                    if count > room:
                        break
                    room -= count
                    fitting += 1
                if fitting < allowed:
                    allowed, limit_kind = fitting, "daily_limit"
            when = mailbox._smtp_invoicing_budget_frees(now, limit_kind, cr) if limit_kind else None
            why = mailbox._smtp_invoicing_limit_reason(limit_kind) if limit_kind else None
            if not allowed:
                return None, 0, when, why
            cr.execute(
                """INSERT INTO smtp_invoicing_submission (mailbox_id, taken_at, count, recipients, open_until)
                   VALUES (%s, %s, %s, %s, %s) RETURNING id""",
                [
                    mailbox.id,
                    now,
                    allowed,
                    sum(counts[:allowed]) if counts is not None else allowed,
                    now + SESSION_LEASE,
                ],
            )
            return cr.fetchone()[0], allowed, when, why

    def _smtp_invoicing_budget_frees(self, now, kind, cr):
        """When the window of ``kind`` lets a mail leave again: its oldest session ages out."""
        window = DAY if kind == "daily_limit" else MINUTE
        cr.execute(
            "SELECT MIN(taken_at) FROM smtp_invoicing_submission WHERE mailbox_id = %s AND taken_at > %s AND count > 0",
            [self.id, now - window],
        )
        oldest = cr.fetchone()[0]
        return (oldest + window) if oldest else now + window

    @api.model
    def _smtp_invoicing_end_submission(self, submission_id, accepted):
        """The session ended: it counts the mails the server ``accepted``, from now on; its slot is free
        again. When mails left, a later pause starts a new count of how long it lasts. One statement.

        The provider counts each mail when it accepts it, between the session's start and its end:
        counted from the end, the rolling window never frees a mail before the provider's does (from
        the start, the next day's mails would leave as fast as they can while the provider frees the
        day before's at the pace they were sent, and it would refuse them).
        """
        with self.env.registry.cursor() as cr:
            cr.execute(
                """WITH ended AS (
                        UPDATE smtp_invoicing_submission
                           SET recipients = CASE WHEN count > 0 THEN recipients * %(accepted)s / count ELSE 0 END,
                               count = %(accepted)s, open_until = NULL,
                               taken_at = CASE WHEN %(accepted)s > 0 THEN %(now)s ELSE taken_at END
                         WHERE id = %(id)s
                     RETURNING mailbox_id)
                   UPDATE smtp_invoicing_mailbox SET smtp_invoicing_paused_since = NULL
                     FROM ended
                    WHERE smtp_invoicing_mailbox.id = ended.mailbox_id AND %(accepted)s > 0
                      AND smtp_invoicing_paused_since IS NOT NULL
                      AND (smtp_invoicing_paused_until IS NULL OR smtp_invoicing_paused_until <= %(now)s)""",
                {"accepted": accepted, "id": submission_id, "now": fields.Datetime.now()},
            )

    def _smtp_invoicing_limit_reason(self, kind):
        """Why mails wait, in the words of the mailbox's provider."""
        self.ensure_one()
        provider = self._smtp_invoicing_profile().label
        return {
            "daily_limit": _("%(provider)s daily limit reached", provider=provider),
            "rate_limit": _("%(provider)s per-minute limit reached", provider=provider),
            "connection_limit": _("%(provider)s connection limit reached", provider=provider),
            "login_rate": _("%(provider)s refuses logins for a while", provider=provider),
            "try_later": _("%(provider)s asked to try again later", provider=provider),
        }.get(kind, _("%(provider)s asked to slow down", provider=provider))

    # ------------------------------------------------------------------
    # Pauses: the provider said "slow down"
    # ------------------------------------------------------------------

    def _smtp_invoicing_pause(self, slow_down, detail):
        """Stop sending from this mailbox until the provider's window allows again; return that time.

        Saved at once in a transaction of its own, so that every worker stops. A daily limit
        lasts until the oldest mail of the last 24 hours ages out (the provider counts the same
        window), or a whole day when Odoo sent none of them.
        """
        self.ensure_one()
        now = fields.Datetime.now()
        with self.env.registry.cursor() as cr:
            locking_select(cr, "SELECT id FROM smtp_invoicing_mailbox WHERE id = %s FOR NO KEY UPDATE", [self.id])
            cr.execute("SELECT smtp_invoicing_paused_since FROM smtp_invoicing_mailbox WHERE id = %s", [self.id])
            since = cr.fetchone()[0] or now
            if slow_down.kind == "daily_limit":
                until = self._smtp_invoicing_budget_frees(now, "daily_limit", cr)
            else:
                until = now + timedelta(seconds=slow_down.seconds)
            until = max(until, now + MINUTE)
            why = self._smtp_invoicing_limit_reason(slow_down.kind)
            message = _(
                "%(reason)s: sending paused until %(until)s, the mails wait in the queue. (%(detail)s)",
                reason=why,
                until=self._smtp_invoicing_format_time(until),
                detail=detail,
            )
            cr.execute(
                """UPDATE smtp_invoicing_mailbox
                      SET smtp_invoicing_paused_until = %s, smtp_invoicing_paused_since = %s,
                          smtp_invoicing_pause_message = %s, smtp_invoicing_pause_reason = %s
                    WHERE id = %s""",
                [until, since, message, why, self.id],
            )
        self.invalidate_recordset(
            [
                "smtp_invoicing_paused_until",
                "smtp_invoicing_paused_since",
                "smtp_invoicing_pause_message",
                "smtp_invoicing_pause_reason",
            ]
        )
        _logger.info("Mailbox %s: sending paused until %s (%s)", self.id, until, slow_down.kind)
        if until - since > LONG_PAUSE:
            self.sudo()._smtp_invoicing_ask_about_pause(message)
        self.env.ref("mail.ir_cron_mail_scheduler_action")._trigger(at=until)
        return until, message, why

    def _smtp_invoicing_ask_about_pause(self, message):
        """A pause that lasts past a day: one to-do for a Settings administrator (the budget may be
        shared with other programs, or the account limited by the provider)."""
        self.ensure_one()
        activity_type = self._smtp_invoicing_activity_type()
        summary = _("Mailbox paused for more than a day")
        if self.activity_ids.filtered(lambda a: a.activity_type_id == activity_type and a.summary == summary):
            return
        admin = self._smtp_invoicing_fixing_admin()
        if admin:
            self.activity_schedule(
                activity_type_id=activity_type.id,
                summary=summary,
                note=_(
                    "%(message)s The provider keeps refusing mails from this mailbox: check its sending limits, "
                    "or whether another program sends from the same account.",
                    message=message,
                ),
                user_id=admin.id,
            )

    def _smtp_invoicing_format_time(self, value):
        """``value`` (UTC) in the time zone of the mailbox's readers, as they read it."""
        self.ensure_one()
        server = self.sudo()
        tz = next(
            (user.tz for user in (server.smtp_invoicing_requested_by_id, server.create_uid) if user.tz),
            (server.smtp_invoicing_company_id or self.env.company).partner_id.tz or "UTC",
        )
        return format_datetime(self.env, value, tz=tz, dt_format="short")

    # ------------------------------------------------------------------
    # What the send windows announce
    # ------------------------------------------------------------------

    def _smtp_invoicing_leave_times(self, count):
        """How ``count`` mails of this mailbox would leave: ``(now, later, when, kind)``, ``later`` of
        them from ``when`` on, held back by ``kind`` ("paused", "daily_limit", or None: all leave now).

        The daily limit is a rolling window: the mails held back leave as the oldest mails of the
        last 24 hours age out, the ones sent now included; past one day's budget, day after day.
        """
        self.ensure_one()
        mailbox = self.sudo()
        now = fields.Datetime.now()
        if mailbox.smtp_invoicing_paused_until and mailbox.smtp_invoicing_paused_until > now:
            return 0, count, mailbox.smtp_invoicing_paused_until, "paused"
        limit = mailbox.smtp_invoicing_daily_limit
        if not limit:
            return count, 0, None, None
        self.env.cr.execute(
            """SELECT taken_at, count FROM smtp_invoicing_submission
                WHERE mailbox_id = %s AND taken_at > %s AND count > 0 ORDER BY taken_at""",
            [mailbox.id, now - DAY],
        )
        sessions = self.env.cr.fetchall()
        now_count = max(0, min(count, limit - sum(sent for _taken, sent in sessions)))
        later = count - now_count
        if not later:
            return count, 0, None, None
        # past one day's budget, the time a whole day's budget is free again
        wait = providers.rolling_wait([*sessions, (now, now_count)], limit, now, need=min(later, limit))
        return now_count, later, now + timedelta(seconds=wait), "daily_limit"

    def _smtp_invoicing_leave_plan(self, count):
        """When ``count`` mails of this mailbox leave, told before *Send* when its limits hold some
        back ("1,800 now, 1,200 after Dec 4, 9:12 AM — Gmail daily limit"); False when all leave now."""
        self.ensure_one()
        mailbox = self.sudo()
        now_count, later, when, kind = mailbox._smtp_invoicing_leave_times(count)
        if not kind:
            return False
        if kind == "paused":
            return _(
                "%(count)s after %(when)s — %(why)s",
                count=count,
                when=mailbox._smtp_invoicing_format_time(when),
                why=mailbox.smtp_invoicing_pause_reason or "",
            )
        limit = mailbox.smtp_invoicing_daily_limit
        reason = mailbox._smtp_invoicing_limit_reason("daily_limit")
        if later > limit:  # more than a day's budget: the rest leaves day after day
            return _(
                "%(now)s now, the next %(limit)s after %(when)s, then up to %(limit)s a day — %(why)s",
                now=now_count,
                limit=limit,
                when=mailbox._smtp_invoicing_format_time(when),
                why=reason,
            )
        return _(
            "%(now)s now, %(later)s after %(when)s — %(why)s",
            now=now_count,
            later=later,
            when=mailbox._smtp_invoicing_format_time(when),
            why=reason,
        )

    def _smtp_invoicing_sender_warning(self):
        """A provider that rewrites From (Gmail) sends as the signed-in account unless the sender
        is one of its verified aliases: told before the first send, with the way to fix it."""
        self.ensure_one()
        mailbox = self.sudo()
        sender = email_normalize(mailbox.sender_email or "")
        account = email_normalize(mailbox.smtp_user or "") or mailbox.smtp_user
        if not mailbox._smtp_invoicing_profile().rewrites_from or not sender or sender == account:
            return False
        return self.env._(
            "%(provider)s sends these mails as %(user)s unless %(sender)s is one of its verified “Send mail as” "
            "addresses: in Gmail, open Settings › Accounts › Send mail as, add %(sender)s and confirm it (or use "
            "%(user)s as sender email).",
            provider=mailbox._smtp_invoicing_profile().label,
            user=account,
            sender=sender,
        )
