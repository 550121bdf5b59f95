import dataclasses
import datetime
import logging
import time
from concurrent import futures
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import email_normalize

from ..lib import smtp
from .leases import SLOT_WAIT, locking_select
from .smtp_invoicing_mailbox_password import MissingSecret

_logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 20
DEFAULT_DEADLINE = 45
DEFAULT_REVERIFY_HOURS = 24
# Threads only wait on the network: none holds a database connection. A silent host holds
# its thread for the whole timeout: 2,000 mailboxes of which 500 are silent take about
# 500 / workers timeouts. Each thread costs a 2 MB stack (smtp.CHECK_STACK_SIZE) and two
# file descriptors.
DEFAULT_WORKERS = 256
DEFAULT_BUDGET = 120
# Minutes before re-checking a mailbox whose last check failed for a temporary
# reason, by number of consecutive such failures; the last value repeats.
CHECK_BACKOFF_MINUTES = (10, 30, 60, 120, 240)
# Failures the mailbox's owner fixes on its connect page (a new password or sign-in), with
# MissingSecret; every other failure (server, certificate, sender, licence, app settings)
# is a Settings administrator's.
OWNER_REASONS = frozenset({"auth_failed", "app_password_required"})


@dataclasses.dataclass
class _Lease:
    """A mailbox taken for one verification: ``until`` is both its expiry and its token."""

    server_id: int
    until: datetime.datetime
    request: dict | None = None
    slot: int | None = None  # the smtp_invoicing.submission holding a connection slot of a capped mailbox


class SmtpInvoicingMailbox(models.Model):
    """Verification of own mailboxes: a status that means what it says, and heals itself.

    *Verified*: Odoo connected over verified TLS, logged in, and the server accepted the
    sender for MAIL FROM and RCPT TO. *Failed*: a person must act (password, certificate,
    sender, licence, key), or the first check could not reach the server (then it is
    re-checked automatically). A re-check of a verified mailbox that cannot reach the
    server keeps it verified, with a warning, and tries again sooner.

    No row lock is held across the network: a check takes its mailbox with a short
    committed lease, talks to the server with no database connection, and records the
    result in another short transaction.
    """

    _inherit = "smtp_invoicing.mailbox"

    verification_state = fields.Selection(
        [("draft", "Draft"), ("pending", "Pending"), ("verified", "Verified"), ("failed", "Failed")],
        string="Status",
        default="draft",
        # not required: core's neutralize.sql inserts a server with plain SQL
        readonly=True,
        copy=False,
        index=True,
    )
    verification_message = fields.Text(readonly=True, copy=False)
    smtp_invoicing_verified_at = fields.Datetime(string="Last Verification", readonly=True, copy=False)
    smtp_invoicing_next_check_at = fields.Datetime(
        string="Next Check",
        readonly=True,
        copy=False,
        index=True,
        help="When the scheduled action checks this mailbox again.",
    )
    smtp_invoicing_check_warning = fields.Text(
        string="Check Warning",
        readonly=True,
        copy=False,
        help="Why the last re-check could not reach the server; the mailbox keeps sending meanwhile.",
    )
    smtp_invoicing_check_failures = fields.Integer(readonly=True, copy=False)
    smtp_invoicing_lease_until = fields.Datetime(readonly=True, copy=False)
    smtp_invoicing_requested_by_id = fields.Many2one(
        "res.users",
        string="Verification Requested By",
        readonly=True,
        copy=False,
        help="Who asked for the last verification: told of its result as soon as it is known.",
    )

    def action_verify(self):
        """Queue the verification of the selected mailboxes (button and list action).

        A mailbox without secret is refused here: its check could only fail.
        """
        mailboxes = self
        for server in mailboxes:
            if not server.smtp_invoicing_connected:
                raise UserError(server._smtp_invoicing_no_secret_message())
        mailboxes.write(
            {
                "verification_state": "pending",
                "verification_message": _("Verification requested; the result shows here in a few seconds."),
                "smtp_invoicing_requested_by_id": self.env.uid,
                "smtp_invoicing_next_check_at": fields.Datetime.now(),
                "smtp_invoicing_check_warning": False,
                "smtp_invoicing_check_failures": 0,
            }
        )
        for server in mailboxes:
            server._message_log(body=_("Verification requested."))
        self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")._trigger()
        return True

    def _smtp_invoicing_no_secret_message(self):
        """Why a mailbox without secret cannot be verified, and who gives it one."""
        self.ensure_one()
        return _(
            "“%(name)s” has no password yet: type it in the form (or let its owner type it on the mailbox's "
            "connect page), then verify again.",
            name=self.name,
        )

    def _smtp_invoicing_reset_verification(self):
        """Settings changed: back to Draft; a check under way will not record its stale result."""
        self.write(
            {
                "verification_state": "draft",
                "verification_message": False,
                "smtp_invoicing_next_check_at": False,
                "smtp_invoicing_check_warning": False,
                "smtp_invoicing_check_failures": 0,
                "smtp_invoicing_lease_until": False,
            }
        )
        for server in self:
            server._message_log(body=_("Settings changed: the mailbox must be verified again."))

    @api.model
    def _smtp_invoicing_verification_domain(self):
        """Mailboxes due for a check: requested, re-verification time reached, or a retry due."""
        return [
            ("verification_state", "in", ("pending", "verified", "failed")),
            ("smtp_invoicing_next_check_at", "<=", fields.Datetime.now()),
        ]

    @api.model
    def _cron_verify_mail_servers(self):
        """Scheduled action: check the mailboxes that are due, many at once.

        Threads do the network work only (``smtp.verify``); this thread takes leases
        and records results, each in a short transaction of its own, so the run holds
        at most two database connections whatever the number of checks in flight.
        Once the time budget is spent no new check starts; the next run is triggered.
        """
        params = self.env["ir.config_parameter"].sudo()
        workers = max(1, int(params.get_param("smtp_invoicing.verify_workers", DEFAULT_WORKERS)))
        budget = float(params.get_param("smtp_invoicing.verify_budget", DEFAULT_BUDGET))
        waiting = self.sudo().search(self._smtp_invoicing_verification_domain(), order="verification_state, id").ids
        started = time.monotonic()
        done = 0
        running = {}
        with smtp.check_pool(workers) as pool:
            while True:
                room = workers - len(running)
                if room and waiting and time.monotonic() - started < budget:
                    batch, waiting = waiting[:room], waiting[room:]
                    for lease in self._smtp_invoicing_take_leases(batch):
                        if lease.request is None:
                            done += 1
                        else:
                            running[pool.submit(self._smtp_invoicing_network_check, lease.request)] = lease
                    continue
                if not running:
                    break
                finished, _pending = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                self._smtp_invoicing_record_leases([(running.pop(future), future.exception()) for future in finished])
                done += len(finished)
        self.env.invalidate_all()
        if waiting:
            _logger.info("Mail server verification: time budget spent, %s left for the next run", len(waiting))
            self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")._trigger()
        self.env["ir.cron"]._notify_progress(done=done, remaining=len(waiting))
        return True

    @api.model
    def _smtp_invoicing_network_check(self, request):
        """The network part of a check, run in a verification thread: no ORM, no cursor.

        ``request`` is what ``_smtp_invoicing_verify_request`` returned; raises the
        classified failure. Overridden to check more than SMTP (incoming mail).
        """
        smtp.verify(**request)

    def _smtp_invoicing_lease_seconds(self):
        timeout, deadline = self._smtp_invoicing_timeouts()
        return 2 * deadline + 60

    @api.model
    def _smtp_invoicing_take_leases(self, server_ids):
        """Take the mailboxes of ``server_ids`` that are still due and free, in one short transaction.

        ``FOR NO KEY UPDATE SKIP LOCKED`` skips rows another worker is taking right now
        and does not block the key-share locks of mails referencing the mailbox; the
        committed lease keeps other workers away for the rest of the check. Returns
        the leases; a mailbox that cannot be checked (licence, password) has its
        failure recorded at once and no request (``_smtp_invoicing_prepare_lease``).
        """
        now = fields.Datetime.now()
        leases = []
        with self.env.registry.cursor() as cr:
            env = self.env(cr=cr, su=True)
            locked = locking_select(
                cr,
                """SELECT id FROM smtp_invoicing_mailbox
                    WHERE id IN %s AND (smtp_invoicing_lease_until IS NULL OR smtp_invoicing_lease_until < %s)
                      FOR NO KEY UPDATE SKIP LOCKED""",
                [tuple(server_ids), now],
            )
            servers = env["smtp_invoicing.mailbox"].browse(locked)
            # a worker that started earlier may have checked some of them since this run listed them
            servers = servers.filtered_domain(self._smtp_invoicing_verification_domain())
            if not servers:
                return leases
            until = now + timedelta(seconds=servers[:1]._smtp_invoicing_lease_seconds())
            cr.execute(
                "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_lease_until = %s WHERE id IN %s",
                [until, tuple(servers.ids)],
            )
            servers.invalidate_recordset(["smtp_invoicing_lease_until"])
            slots = self._smtp_invoicing_take_check_slots(cr, servers, now, until)
            leases = [_Lease(server.id, until, slot=slots.get(server.id)) for server in servers if server.id in slots]
        # outside the row locks: building a request may refresh an OAuth token over the network
        for lease in leases:
            self._smtp_invoicing_prepare_lease(lease)
        return leases

    @api.model
    def _smtp_invoicing_take_check_slots(self, cr, servers, now, until):
        """A check is an SMTP connection too: a mailbox whose provider caps its connections (Microsoft 365)
        takes a slot for it (``smtp_invoicing.submission``, no mail), or is checked a little later when
        its sessions hold them all. Returns {mailbox id: slot id or None} of the mailboxes to check now."""
        capped = servers.filtered("smtp_invoicing_max_connections")
        slots = dict.fromkeys((servers - capped).ids)
        if not capped:
            return slots
        used = capped._smtp_invoicing_used(now, cr)
        full = capped.filtered(
            lambda server: used.get(server.id, (0, 0, 0, 0))[3] >= server.smtp_invoicing_max_connections
        )
        if full:
            later = now + SLOT_WAIT
            cr.execute(
                """UPDATE smtp_invoicing_mailbox
                      SET smtp_invoicing_next_check_at = %s, smtp_invoicing_lease_until = NULL
                    WHERE id IN %s""",
                [later, tuple(full.ids)],
            )
            full.invalidate_recordset(["smtp_invoicing_next_check_at", "smtp_invoicing_lease_until"])
            self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")._trigger(at=later)
        for server in capped - full:
            cr.execute(
                """INSERT INTO smtp_invoicing_submission (mailbox_id, taken_at, count, recipients, open_until)
                   VALUES (%s, %s, 0, 0, %s) RETURNING id""",
                [server.id, now, until],
            )
            slots[server.id] = cr.fetchone()[0]
        return slots

    @api.model
    def _smtp_invoicing_prepare_lease(self, lease):
        """Set ``lease.request`` in a short transaction of its own (a refreshed token is saved);
        a mailbox that cannot be checked (licence, secret, token refused) has its failure recorded."""
        try:
            with self.env.registry.cursor() as cr:
                server = self.env(cr=cr, su=True)["smtp_invoicing.mailbox"].browse(lease.server_id)
                lease.request = server._smtp_invoicing_verify_request()
        except (UserError, smtp.SmtpCheckError) as error:
            self._smtp_invoicing_record_leases([(lease, error)])

    @api.model
    def _smtp_invoicing_record_leases(self, outcomes):
        """Record the outcomes ``[(lease, error or None)]`` of finished checks in one short transaction.

        Nothing is recorded for a lease that is no longer the one its check took (settings
        changed meanwhile, or the lease expired and another worker took the mailbox). One
        mailbox whose result cannot be saved is logged by id; the others are kept.

        The batch is recorded at once (one lock query, one read, one flush): per mailbox,
        queries and savepoints made the cron thread the bottleneck of thousands of checks.
        Only when the batch fails is it recorded again mailbox by mailbox.
        """
        if not outcomes:
            return
        try:
            with self.env.registry.cursor() as cr:
                env = self.env(cr=cr, su=True)
                slots = [lease.slot for lease, _error in outcomes if lease.slot]
                if slots:  # the checks' connections are closed: their slots are free again
                    cr.execute("UPDATE smtp_invoicing_submission SET open_until = NULL WHERE id IN %s", [tuple(slots)])
                current = set(
                    locking_select(
                        cr,
                        "SELECT id FROM smtp_invoicing_mailbox WHERE (id, smtp_invoicing_lease_until) IN %s"
                        " FOR NO KEY UPDATE",
                        [tuple((lease.server_id, lease.until) for lease, _error in outcomes)],
                    )
                )
                for lease, _error in outcomes:
                    if lease.server_id not in current:
                        _logger.info("Mail server %s: verification result dropped, its lease ended", lease.server_id)
                outcomes = [(lease, error) for lease, error in outcomes if lease.server_id in current]
                # iterated, not browsed one by one: the mailboxes are read together
                servers = env["smtp_invoicing.mailbox"].browse([lease.server_id for lease, _error in outcomes])
                notes = {}  # {mailbox id: [chatter notes]}: one _message_log_batch per round
                try:
                    with cr.savepoint():
                        # a requested check (Verify) has its result: who asked is told, once saved
                        requested = servers.filtered(lambda server: server.verification_state == "pending")
                        for server, (_lease, error) in zip(servers, outcomes, strict=True):
                            server._smtp_invoicing_record_verification(error, notes=notes)
                        while any(notes.values()):
                            bodies = {server_id: lines.pop(0) for server_id, lines in notes.items() if lines}
                            servers.browse(list(bodies))._message_log_batch(bodies)
                        env.flush_all()
                except Exception:
                    env.invalidate_all()
                else:
                    requested._smtp_invoicing_tell_requester()
                    return
                for server, (_lease, error) in zip(servers, outcomes, strict=True):
                    try:
                        with cr.savepoint():
                            requested = server.verification_state == "pending"
                            server._smtp_invoicing_record_verification(error)
                            env.flush_all()
                    except Exception:  # one mailbox must not stop the others
                        _logger.exception("Mail server %s: the verification result could not be saved", server.id)
                        env.invalidate_all()
                    else:
                        if requested:
                            server._smtp_invoicing_tell_requester()
        except Exception:  # the database itself is gone: the leases expire, the next run checks again
            _logger.exception(
                "Verification results could not be saved: %s", [lease.server_id for lease, _e in outcomes]
            )

    def _smtp_invoicing_tell_requester(self):
        """Tell who requested the verification of these mailboxes its result, in their language:
        a notification, and their open form of the mailbox reloads (static/src/mailbox_form.js).

        Sent on the bus in the transaction that records the result: delivered once it is
        committed, never for a result that was not saved.
        """
        bus = self.env["bus.bus"].sudo()
        for server in self:
            user = server.smtp_invoicing_requested_by_id
            if not user.active or user.share:
                continue
            env = server.with_context(lang=user.lang).env
            state = dict(server._fields["verification_state"]._description_selection(env))[server.verification_state]
            if server.verification_state == "verified":
                message, kind = env._("%(name)s: %(state)s", name=server.name, state=state), "success"
            else:
                message = env._(
                    "%(name)s: %(state)s — %(reason)s",
                    name=server.name,
                    state=state,
                    reason=server.verification_message or "",
                )
                kind = "danger"
            bus._sendone(user.partner_id, "simple_notification", {"message": message, "type": kind, "sticky": False})
            bus._sendone(user.partner_id, "smtp_invoicing.mailbox_checked", {"id": server.id})

    def _smtp_invoicing_credentials(self):
        """Return the login of this mailbox for ``smtp.open_session``/``smtp.verify``: user and password.

        Raises UserError when the mailbox has no usable secret.
        """
        self.ensure_one()
        password = self._smtp_invoicing_password()
        if not password:
            raise MissingSecret(_("Enter the password of the mailbox, then verify again."))
        return {"user": self.sudo().smtp_user, "password": password}

    def _smtp_invoicing_verify_request(self):
        """Return the keyword arguments of ``smtp.verify`` for this mailbox.

        Raises UserError when the mailbox cannot be verified (licence, password). Called
        before the network work: verification threads never touch the ORM.
        """
        self.ensure_one()
        server = self.sudo()
        if not server._smtp_invoicing_licensed_user():
            raise UserError(server._smtp_invoicing_license_message())
        timeout, deadline = server._smtp_invoicing_timeouts()
        return {
            "host": server.smtp_host,
            "port": server.smtp_port,
            "protocol": server.smtp_encryption,
            **server._smtp_invoicing_credentials(),
            "sender_email": email_normalize(server.sender_email),
            "ca_pem": server.smtp_invoicing_ca_cert or None,
            "timeout": timeout,
            "deadline": deadline,
        }

    def _smtp_invoicing_reader_lang(self):
        """The language the mailbox's status, notes and reasons are written in by background work.

        The scheduled actions run in their user's language (English): the status is written
        for whoever asked for the last verification, else whoever created the mailbox, else
        its company.
        """
        self.ensure_one()
        server = self.sudo()
        for user in (server.smtp_invoicing_requested_by_id, server.create_uid):
            if user.active and not user.share and user.lang:
                return user.lang
        company = server.smtp_invoicing_company_id or self.env.company
        return company.partner_id.lang or self.env.lang

    def _smtp_invoicing_record_verification(self, error=None, notes=None):
        """Record the outcome of a check that raised ``error`` (None: it succeeded).

        Called with the mailbox's lease held, in the transaction that ends the check. ``notes``:
        the chatter notes are left there for the caller to log in one batch (``_smtp_invoicing_note``).
        """
        self.ensure_one()
        # written in the language of those who read the mailbox, not the scheduled action's
        server = self.sudo().with_context(lang=self._smtp_invoicing_reader_lang())
        if error is None:
            server._smtp_invoicing_mark_verified(notes=notes)
        elif isinstance(error, smtp.SmtpCheckError) and smtp.is_temporary(error.reason):
            server._smtp_invoicing_mark_unreachable(server._smtp_invoicing_reason_message(error), notes=notes)
        else:
            if isinstance(error, smtp.SmtpCheckError):
                message = server._smtp_invoicing_reason_message(error)
            elif isinstance(error, UserError):
                message = error.args[0]
            else:
                _logger.error("Unexpected error while verifying mail server %s", server.id, exc_info=error)
                message = _(
                    "Unexpected error during the verification. Try again; "
                    "if it persists, contact your Odoo administrator."
                )
            server._smtp_invoicing_mark_failed(message, error, notes=notes)
        server.smtp_invoicing_lease_until = False

    def _smtp_invoicing_mark_verified(self, notes=None):
        """The settings work: Verified, re-checked after the re-verification interval; held mails leave."""
        self.ensure_one()
        now = fields.Datetime.now()
        hours = int(
            self.env["ir.config_parameter"].sudo().get_param("smtp_invoicing.reverify_hours", DEFAULT_REVERIFY_HOURS)
        )
        was_ready = self.verification_state == "verified"
        self._smtp_invoicing_set_state(
            "verified",
            _("Verified: Odoo connected securely, logged in and may send as %(email)s.", email=self.sender_email),
            smtp_invoicing_verified_at=now,
            smtp_invoicing_next_check_at=now + timedelta(hours=hours),
            smtp_invoicing_check_warning=False,
            smtp_invoicing_check_failures=0,
            notes=notes,
        )
        if not was_ready:
            self._smtp_invoicing_release_held_mails()

    def _smtp_invoicing_mark_unreachable(self, reason, notes=None):
        """A check could not reach the server for a reason that may heal by itself.

        A verified mailbox stays verified and usable, with a warning; a mailbox never
        verified is Failed until a check succeeds. Either way the next check comes
        sooner (CHECK_BACKOFF_MINUTES) and is triggered for that time.
        """
        self.ensure_one()
        failures = self.smtp_invoicing_check_failures + 1
        minutes = CHECK_BACKOFF_MINUTES[min(failures, len(CHECK_BACKOFF_MINUTES)) - 1]
        next_check = fields.Datetime.now() + timedelta(minutes=minutes)
        values = {"smtp_invoicing_check_failures": failures, "smtp_invoicing_next_check_at": next_check}
        if self.verification_state == "verified":
            warning = _(
                "The last check could not reach the server: %(reason)s The mailbox keeps sending; "
                "Odoo checks it again automatically in %(minutes)s minutes.",
                reason=reason,
                minutes=minutes,
            )
            if not self.smtp_invoicing_check_warning:
                self._smtp_invoicing_note(warning, notes)
            self.write({**values, "smtp_invoicing_check_warning": warning})
        else:
            self._smtp_invoicing_set_state(
                "failed",
                _(
                    "%(reason)s Odoo checks it again automatically in %(minutes)s minutes.",
                    reason=reason,
                    minutes=minutes,
                ),
                notes=notes,
                **values,
            )
        self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")._trigger(at=next_check)

    def _smtp_invoicing_mark_failed(self, message, error=None, notes=None):
        """A person must act: Failed, no automatic re-check, the person who can fix ``error``
        asked to (``_smtp_invoicing_ask_to_fix``)."""
        self.ensure_one()
        self._smtp_invoicing_set_state(
            "failed",
            message,
            smtp_invoicing_next_check_at=False,
            smtp_invoicing_check_warning=False,
            smtp_invoicing_check_failures=0,
            notes=notes,
        )
        self._smtp_invoicing_ask_to_fix(message, owner=self._smtp_invoicing_owner_fixes(error))

    def _smtp_invoicing_owner_reasons(self):
        return OWNER_REASONS

    def _smtp_invoicing_owner_fixes(self, error):
        """True when the mailbox's owner can fix the failure ``error`` on its connect page:
        the secret is missing or refused, and the mailbox has an owner."""
        self.ensure_one()
        if not self.smtp_invoicing_owner_id:
            return False
        if isinstance(error, MissingSecret):
            return True
        return isinstance(error, smtp.SmtpCheckError) and error.reason in self._smtp_invoicing_owner_reasons()

    def _smtp_invoicing_timeouts(self):
        params = self.env["ir.config_parameter"].sudo()
        timeout = float(params.get_param("smtp_invoicing.verify_timeout", DEFAULT_TIMEOUT))
        deadline = float(params.get_param("smtp_invoicing.verify_deadline", DEFAULT_DEADLINE))
        return timeout, max(deadline, timeout)

    def _smtp_invoicing_set_state(self, state, message, notes=None, **values):
        self.ensure_one()
        changed = self.verification_state != state or self.verification_message != message
        self.write({"verification_state": state, "verification_message": message, **values})
        if changed:
            if state == "verified":
                note = message  # it names the status itself: "Verified: Odoo connected securely…"
            else:
                label = dict(self._fields["verification_state"]._description_selection(self.env))[state]
                note = _("Status: %(state)s. %(message)s", state=label, message=message)
            self._smtp_invoicing_note(note, notes)
        _logger.info("Mail server %s verification: %s", self.id, state)

    def _smtp_invoicing_note(self, body, notes=None):
        """Log ``body`` in the chatter, or add it to ``notes`` ({mailbox id: [bodies]}) when the caller
        records a batch of results and logs their notes together."""
        self.ensure_one()
        if notes is None:
            self._message_log(body=body)
        else:
            notes.setdefault(self.id, []).append(body)

    def _smtp_invoicing_reason_message(self, error):
        """Translate a classified failure (``smtp.SmtpCheckError``) into words an accountant understands.

        The reasons SMTP shares with IMAP come from :meth:`_smtp_invoicing_shared_reason_messages`;
        the texts are translated in the user's language.
        """
        params = {
            "host": self.smtp_host,
            "port": self.smtp_port,
            "email": self.sender_email,
            "user": self.sudo().smtp_user,
            "detail": error.detail,
        }
        messages = {
            **self._smtp_invoicing_shared_reason_messages(params),
            "dns": _(
                "The server name “%(host)s” does not exist. Check its spelling (Gmail: smtp.gmail.com).", **params
            ),
            "refused": _(
                "The server %(host)s refused the connection on port %(port)s. Check the port: usually 587 with TLS "
                "or 465 with SSL.",
                **params,
            ),
            "timeout": _(
                "The server %(host)s did not answer in time on port %(port)s. Check the host and port; a firewall "
                "may block outgoing mail.",
                **params,
            ),
            "wrong_protocol": _(
                "The server does not use the chosen protocol on port %(port)s. Use TLS (STARTTLS) with port 587, "
                "or SSL with port 465.",
                **params,
            ),
            "expects_ssl": _(
                "Port %(port)s of %(host)s expects SSL/TLS from the first byte (implicit TLS), not STARTTLS: "
                "choose SSL/TLS as Connection Encryption, or use port 587 with TLS (STARTTLS).",
                **params,
            ),
            "expects_starttls": _(
                "Port %(port)s of %(host)s expects STARTTLS, not SSL/TLS from the first byte: choose TLS "
                "(STARTTLS) as Connection Encryption, or use port 465 with SSL/TLS.",
                **params,
            ),
            "no_starttls": _(
                "The server %(host)s does not offer an encrypted connection (STARTTLS) on port %(port)s. Odoo never "
                "sends a password unencrypted: use SSL on port 465, or ask your provider.",
                **params,
            ),
            "no_auth": _(
                "The server %(host)s does not accept a login on port %(port)s. Check the port with your provider.",
                **params,
            ),
            "auth_failed": _(
                "The user name or password was refused. Check them; for Gmail, use an App Password, not your usual "
                "password (Google Account › Security › App passwords).",
                **params,
            ),
            "app_password_required": _(
                "Gmail requires an App Password for this account: 1. In your Google Account, open Security and turn "
                "on 2-Step Verification. 2. In Security › App passwords, create an App Password. 3. Paste the "
                "16-character App Password here instead of your usual password, save and verify again.",
                **params,
            ),
            "basic_auth_disabled": _(
                "Microsoft 365 refused the login: basic authentication (Authenticated SMTP) is disabled for this "
                "mailbox or organisation. Ask your Microsoft 365 administrator to enable Authenticated SMTP for "
                "%(user)s.",
                **params,
            ),
            "sender_refused": _(
                "The server refused to send as %(email)s: the sender email must belong to the mailbox %(user)s "
                "(or be an alias it may use).",
                **params,
            ),
            "send_as_denied": _(
                "Microsoft 365 refused to send as %(email)s (SendAsDenied): give %(user)s the “Send As” permission "
                "on this address, or use the mailbox's own address as sender email.",
                **params,
            ),
            "temporary": _(
                "The server answered with a temporary error; try again in a few minutes. (%(detail)s)", **params
            ),
        }
        return messages.get(error.reason) or messages["protocol_error"]

    def _smtp_invoicing_shared_reason_messages(self, params):
        """Messages of the reasons an SMTP and an IMAP connection share (``lib/tls.py``), one table for both.

        ``params``: ``host`` (the server of the failed connection), ``detail``. Each protocol
        adds its own reasons and its own advice (ports, host names) over these.
        """
        return {
            "untrusted_certificate": _(
                "The security certificate of %(host)s is not trusted (self-signed, expired or from an unknown "
                "authority), so Odoo did not send your password. For a self-hosted server, add its CA certificate "
                "in the Advanced tab.",
                **params,
            ),
            "hostname_mismatch": _(
                "The security certificate of the server was issued for another name than “%(host)s”, so Odoo did "
                "not send your password. Use the exact host name given by your provider.",
                **params,
            ),
            "network": _("The connection to %(host)s was interrupted. Try again in a few minutes.", **params),
            "dns_unavailable": _(
                "The name of the server %(host)s could not be looked up right now: DNS is not answering.", **params
            ),
            "protocol_error": _("The server %(host)s answered unexpectedly: %(detail)s", **params),
        }
