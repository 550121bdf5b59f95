import dataclasses
import datetime
import logging
import time
from concurrent import futures
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..lib import imap, smtp
from .leases import locking_select

_logger = logging.getLogger(__name__)

DEFAULT_POLL_WORKERS = 8
DEFAULT_POLL_BUDGET = 120
# New messages whose headers one run reads per mailbox; a larger backlog continues at
# once in the next run (triggered), so a first scan of a big inbox is bounded per run.
DEFAULT_SCAN_LIMIT = 5000
DEFAULT_COPY_BATCH = 100


@dataclasses.dataclass
class _Visit:
    """A mailbox taken for one IMAP session; ``until`` is both the lease's expiry and its token."""

    server_id: int
    until: datetime.datetime
    request: dict = None
    copies: list = dataclasses.field(default_factory=list)
    poll_state: tuple = None
    folder: str = None
    probe: str = None  # Message-ID looked for in Sent before the first copy is filed
    check: str = None  # Message-ID whose From is read back from Sent

    @property
    def lookups(self):
        return list(dict.fromkeys(key for key in (self.probe, self.check) if key))


def _open_and_visit(visit, limit):
    """Thread: log in, look up sent mails in Sent, file the Sent copies, poll the INBOX.
    Returns (client, imap.Visit), client still open."""
    client = imap.open_session(**visit.request)
    try:
        outcome = imap.visit(
            client,
            copies=visit.copies,
            poll_state=visit.poll_state,
            limit=limit,
            lookups=visit.lookups,
            probe=visit.probe,
        )
        return client, outcome
    except BaseException:
        imap.logout(client)
        raise


def _file_and_close(client, uids, folder):
    """Thread: move the recorded reports to the chosen folder (if any), then log out."""
    try:
        if uids and folder:
            imap.file_reports(client, uids, folder)
    finally:
        imap.logout(client)


class SmtpInvoicingMailbox(models.Model):
    """Reading own mailboxes: delivery reports in, Sent copies out, sent mails read back from the Sent
    folder (``smtp_invoicing_mailbox_sent_copy.py``, ``smtp_invoicing_mailbox_sender_check.py``), one IMAP
    session per mailbox per run.

    The same pattern as the verification: a short committed lease takes the mailbox, the
    IMAP work runs in a thread with no database connection, the result is recorded in
    another short transaction. Only messages newer than the last UID seen are read,
    headers first (``BODY.PEEK``, never ``\\Seen``); only delivery reports are downloaded.
    """

    _inherit = "smtp_invoicing.mailbox"

    @api.model
    def _smtp_invoicing_poll_domain(self):
        return [
            ("verification_state", "=", "verified"),
            ("smtp_invoicing_imap_host", "!=", False),
            "|",
            "|",
            ("smtp_invoicing_track_bounces", "=", True),
            ("smtp_invoicing_sent_copy", "=", True),
            ("smtp_invoicing_sender_check", "=", "pending"),
        ]

    @api.model
    def _cron_poll_mailboxes(self):
        """Scheduled action: read the new delivery reports and file the waiting Sent copies of every mailbox.

        Bounded: at most ``smtp_invoicing.bounce_scan_limit`` new messages and
        ``smtp_invoicing.sent_copy_batch`` copies per mailbox, no new session once
        ``smtp_invoicing.poll_budget`` seconds are spent (the next run is triggered). One
        failing mailbox is logged with its id and shown on its form; the others go on.
        """
        params = self.env["ir.config_parameter"].sudo()
        workers = max(1, int(params.get_param("smtp_invoicing.poll_workers", DEFAULT_POLL_WORKERS)))
        budget = float(params.get_param("smtp_invoicing.poll_budget", DEFAULT_POLL_BUDGET))
        limit = max(1, int(params.get_param("smtp_invoicing.bounce_scan_limit", DEFAULT_SCAN_LIMIT)))
        waiting = self.sudo().search(self._smtp_invoicing_poll_domain(), order="id").ids
        started = time.monotonic()
        done, again = 0, False
        running = {}
        with futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smtp_invoicing_poll") as pool:
            while True:
                room = workers - len(running)
                if room and waiting and time.monotonic() - started < budget:
                    batch, waiting = waiting[:room], waiting[room:]
                    for visit in self._smtp_invoicing_take_visits(batch):
                        running[pool.submit(_open_and_visit, visit, limit)] = ("visit", visit)
                    continue
                if not running:
                    break
                finished, _pending = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in finished:
                    stage, visit = running.pop(future)
                    if stage == "close":
                        if future.exception():
                            _logger.warning(
                                "Mail server %s: processed reports could not be filed in %r: %s",
                                visit.server_id,
                                visit.folder,
                                future.exception(),
                            )
                        continue
                    done += 1
                    if future.exception():
                        self._smtp_invoicing_record_visit_failure(visit, future.exception())
                        continue
                    client, outcome = future.result()
                    to_file = self._smtp_invoicing_record_visit(visit, outcome)
                    again = again or bool(outcome.poll and outcome.poll.more)
                    running[pool.submit(_file_and_close, client, to_file, visit.folder)] = ("close", visit)
        self.env.invalidate_all()
        if waiting or again:
            self.env.ref("smtp_invoicing.ir_cron_poll_mailboxes")._trigger()
        self.env["ir.cron"]._notify_progress(done=done, remaining=len(waiting))
        return True

    def _smtp_invoicing_poll_lease_seconds(self):
        _timeout, deadline = self._smtp_invoicing_timeouts()
        budget = float(
            self.env["ir.config_parameter"].sudo().get_param("smtp_invoicing.poll_budget", DEFAULT_POLL_BUDGET)
        )
        return budget + 2 * deadline + 60

    @api.model
    def _smtp_invoicing_take_visits(self, server_ids):
        """Take the mailboxes of ``server_ids`` that are free, in one short transaction; return their visits.

        A mailbox with nothing to do (no tracking, no copy due, no sent mail to read back) is not
        visited: no login. Before a custom server's first copy is filed, its Message-ID is looked
        for in the Sent folder (``probe``): whether the server files copies itself is asked once.
        """
        now = fields.Datetime.now()
        visits = []
        batch = max(
            1,
            int(self.env["ir.config_parameter"].sudo().get_param("smtp_invoicing.sent_copy_batch", DEFAULT_COPY_BATCH)),
        )
        with self.env.registry.cursor() as cr:
            env = self.env(cr=cr, su=True)
            locked = locking_select(
                cr,
                """SELECT id FROM smtp_invoicing_mailbox
                    WHERE id IN %s AND (smtp_invoicing_poll_lease_until IS NULL OR smtp_invoicing_poll_lease_until < %s)
                      FOR NO KEY UPDATE SKIP LOCKED""",
                [tuple(server_ids), now],
            )
            servers = env["smtp_invoicing.mailbox"].browse(locked)
            servers = servers.filtered_domain(self._smtp_invoicing_poll_domain())
            if not servers:
                return visits
            until = now + timedelta(seconds=servers[:1]._smtp_invoicing_poll_lease_seconds())
            Copy = env["smtp_invoicing.sent.copy"]
            for server in servers:
                copies = Copy.browse()
                if server.smtp_invoicing_sent_copy:
                    copies = Copy.search(
                        [("mailbox_id", "=", server.id), ("next_attempt_at", "<=", now)], order="id", limit=batch
                    )
                check = server._smtp_invoicing_sender_check_due()
                if not copies and not server.smtp_invoicing_track_bounces and not check:
                    continue
                try:
                    request = server._smtp_invoicing_imap_request()
                except UserError as error:
                    server.smtp_invoicing_imap_error = error.args[0]
                    continue
                except smtp.SmtpCheckError as error:  # an OAuth mailbox's token could not be refreshed
                    server.smtp_invoicing_imap_error = server._smtp_invoicing_reason_message(error)
                    continue
                visit = _Visit(server.id, until, request=request, folder=server.smtp_invoicing_bounce_folder or None)
                visit.copies = [(copy.id, copy._smtp_invoicing_raw(), copy.create_date) for copy in copies]
                visit.check = check
                if server._smtp_invoicing_asks_server_files_sent():
                    # the mail read back answers it too; else the first copy about to be filed
                    visit.probe = check or next((copy.message_id for copy in copies if copy.message_id), None)
                if server.smtp_invoicing_track_bounces:
                    validity = server.smtp_invoicing_imap_uidvalidity
                    visit.poll_state = (
                        int(validity) if validity else None,
                        int(server.smtp_invoicing_imap_last_uid or 0),
                    )
                visits.append(visit)
            if visits:
                cr.execute(
                    "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_poll_lease_until = %s WHERE id IN %s",
                    [until, tuple(visit.server_id for visit in visits)],
                )
                servers.invalidate_recordset(["smtp_invoicing_poll_lease_until"])
        return visits

    def _smtp_invoicing_lease_server(self, cr, visit):
        """The mailbox of ``visit`` locked in ``cr`` if its lease is still the one taken, else None."""
        if not locking_select(
            cr,
            "SELECT id FROM smtp_invoicing_mailbox WHERE id = %s AND smtp_invoicing_poll_lease_until = %s"
            " FOR NO KEY UPDATE",
            [visit.server_id, visit.until],
        ):
            _logger.info("Mail server %s: mailbox reading result dropped, its lease ended", visit.server_id)
            return None
        return self.env(cr=cr, su=True)["smtp_invoicing.mailbox"].browse(visit.server_id)

    @api.model
    def _smtp_invoicing_record_visit(self, visit, outcome):
        """Record what one session found, in a short transaction of its own; return the report UIDs to file.

        Each report is recorded in a savepoint: one that cannot be recorded is logged with
        its mailbox and UID and skipped. The poll state moves on only once this commits,
        so a lost result means the reports are read again (they are recorded once).
        """
        to_file = []
        try:
            with self.env.registry.cursor() as cr:
                server = self._smtp_invoicing_lease_server(cr, visit)
                if server is None:
                    return []
                Bounce = server.env["smtp_invoicing.bounce"]
                values = {"smtp_invoicing_poll_lease_until": False, "smtp_invoicing_imap_error": False}
                if outcome.poll is not None:
                    for uid, raw in outcome.poll.reports:
                        try:
                            with cr.savepoint():
                                if Bounce._smtp_invoicing_record_report(server, raw):
                                    to_file.append(uid)
                        except Exception:  # one report must not stop the others
                            _logger.warning(
                                "Mail server %s: delivery report UID %s could not be recorded",
                                server.id,
                                uid,
                                exc_info=True,
                            )
                    values.update(
                        smtp_invoicing_imap_uidvalidity=str(outcome.poll.uidvalidity or ""),
                        smtp_invoicing_imap_last_uid=str(outcome.poll.last_uid),
                        smtp_invoicing_imap_polled_at=fields.Datetime.now(),
                    )
                if visit.probe and outcome.files_sent is not None:
                    server._smtp_invoicing_record_server_files_sent(outcome.files_sent)
                if visit.check:
                    server._smtp_invoicing_record_sender_check(visit.check, outcome.found)
                copies = server.env["smtp_invoicing.sent.copy"].browse(list(outcome.copies)).exists()
                for copy in copies:
                    error = outcome.copies[copy.id]
                    if error is None:
                        copy.unlink()
                    else:
                        copy._smtp_invoicing_failed(server._smtp_invoicing_reason_message(error))
                server.write(values)
        except Exception:  # one mailbox must not stop the others
            _logger.warning(
                "Mail server %s: the mailbox reading result could not be saved", visit.server_id, exc_info=True
            )
            return []
        return to_file

    @api.model
    def _smtp_invoicing_record_visit_failure(self, visit, error):
        """The session failed as a whole: show why on the mailbox, retry its copies later."""
        classified = imap.classify_error(error)
        _logger.warning(
            "Mail server %s: mailbox could not be read (%s)",
            visit.server_id,
            classified.reason if classified else type(error).__name__,
        )
        try:
            with self.env.registry.cursor() as cr:
                server = self._smtp_invoicing_lease_server(cr, visit)
                if server is None:
                    return
                if classified:
                    message = server._smtp_invoicing_reason_message(classified)
                else:
                    message = _("Unexpected error while reading the mailbox; Odoo tries again at its next run.")
                copies = server.env["smtp_invoicing.sent.copy"].browse([key for key, _raw, _when in visit.copies])
                for copy in copies.exists():
                    copy._smtp_invoicing_failed(message)
                server.write({"smtp_invoicing_poll_lease_until": False, "smtp_invoicing_imap_error": message})
        except Exception:  # one mailbox must not stop the others
            _logger.warning(
                "Mail server %s: the mailbox reading failure could not be saved", visit.server_id, exc_info=True
            )
