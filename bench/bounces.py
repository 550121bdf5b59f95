"""Benchmark: the bounce poll of a 10,000-message inbox on a real Dovecot (tests/mail_stack.py).

The module's scheduled action (first scan of the whole inbox, run after run until the
backlog is read, then the idle poll of the unchanged mailbox) against what a reader that
downloads every new message does (core's fetchmail fetches each whole message), on the
same inbox. Counts IMAP commands on the wire, not only seconds.
"""

import logging
import re
import time
from unittest.mock import patch

from benchkit import LOGIN, PASSWORD, Measure, boot, environment, machine, mailbox_values, prepare_company, table

MESSAGES = 10_000


class CommandLog:
    """IMAP commands (one tagged line each) sent by a client after login, and the bytes it received."""

    def __init__(self, client):
        self.sent, self.received = b"", 0
        transport = client._imap
        send, read, readline = transport.send, transport.read, transport.readline

        def recording_send(data):
            self.sent += data
            return send(data)

        def counting_read(size):
            data = read(size)
            self.received += len(data)
            return data

        def counting_readline():
            data = readline()
            self.received += len(data)
            return data

        transport.send, transport.read, transport.readline = recording_send, counting_read, counting_readline

    def commands(self):
        return [line for line in self.sent.split(b"\r\n") if re.match(rb"^[A-Z]+\d+ ", line)]


def ordinary(index):
    return (
        b"From: Customer %d <buyer%d@customer.test>\r\nTo: %s\r\nSubject: Order %d\r\n"
        b"Message-ID: <order-%d@customer.test>\r\nDate: Thu, 01 Jan 2026 10:00:00 +0000\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        % (index, index, LOGIN.encode(), index, index)
        + b"Please deliver order %d.\r\n" % index * 40
    )


def main():
    from mail_stack import MailStack
    from smtp_servers import Pki

    registry = boot()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # the customer MX's aiosmtpd chatter
    from odoo.addons.smtp_invoicing.lib import imap  # importable once Odoo knows its addons path

    with Pki() as pki, MailStack(pki, {LOGIN: PASSWORD}, domain="bench.test") as stack:
        started = time.perf_counter()
        stack.bulk_append(LOGIN, PASSWORD, (ordinary(index) for index in range(MESSAGES)))
        fill_seconds = time.perf_counter() - started
        with environment(registry) as env:
            company = prepare_company(env)
            env["ir.config_parameter"].sudo().set_param("smtp_invoicing.verify_timeout", "10")
            mailbox = env["smtp_invoicing.mailbox"].create(
                mailbox_values(
                    stack.submission_port,
                    stack.ca_pem,
                    company,
                    name="Bench bounces",
                    smtp_invoicing_imap_host=stack.host,
                    smtp_invoicing_imap_port=stack.imaps_port,
                    smtp_invoicing_track_bounces=True,
                )
            )
            mailbox.action_verify()
            mailbox_id = mailbox.id
        with environment(registry) as env:
            env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        with environment(registry) as env:
            mailbox = env["smtp_invoicing.mailbox"].browse(mailbox_id)
            assert mailbox.verification_state == "verified", mailbox.verification_message
            limit = env["ir.config_parameter"].sudo().get_param("smtp_invoicing.bounce_scan_limit") or "5000"

        logs = []
        original = imap.open_session

        def open_session(*args, **kwargs):
            client = original(*args, **kwargs)
            logs.append(CommandLog(client))
            return client

        def run_cron():
            with environment(registry) as env:
                env["smtp_invoicing.mailbox"]._cron_poll_mailboxes()

        def last_uid():
            with environment(registry) as env:
                return int(env["smtp_invoicing.mailbox"].browse(mailbox_id).smtp_invoicing_imap_last_uid or 0)

        flags_before = stack.flags(LOGIN)
        with patch.object(imap, "open_session", open_session):
            runs = 0
            with Measure() as first:
                while last_uid() < MESSAGES:
                    run_cron()
                    runs += 1
            first_logs, logs[:] = list(logs), []
            with Measure() as idle:
                run_cron()
            idle_logs = list(logs)
        assert stack.flags(LOGIN) == flags_before, "the poll changed flags"

        # baseline: download every new message, as a reader without headers-first would
        client = imap.open_session(stack.host, stack.imaps_port, LOGIN, PASSWORD, ca_pem=stack.ca_pem)
        try:
            baseline_log = CommandLog(client)
            with Measure() as baseline:
                client.select_folder("INBOX", readonly=True)
                uids = client.search(["ALL"])
                downloaded = 0
                for start in range(0, len(uids), 500):
                    for data in client.fetch(uids[start : start + 500], ["BODY.PEEK[]"]).values():
                        downloaded += len(data[b"BODY[]"])
        finally:
            imap.logout(client)

    def counts(log_list):
        lines = [line for log in log_list for line in log.commands()]
        fetches = [line for line in lines if b" FETCH " in line]
        full = [line for line in fetches if b"BODY.PEEK[]" in line or b"BODY[]" in line]
        received = sum(log.received for log in log_list)
        return len(lines), len(fetches) - len(full), len(full), received

    first_commands, first_headers, first_full, first_bytes = counts(first_logs)
    idle_commands, idle_headers, idle_full, idle_bytes = counts(idle_logs)
    idle_poll = [line.split()[1] for log in idle_logs for line in log.commands()]
    base_commands, _base_headers, base_full, base_bytes = counts([baseline_log])
    print(
        f"\nbounces: a {MESSAGES:,}-message INBOX on loopback Dovecot (filled in {fill_seconds:.1f} s by one "
        f"MULTIAPPEND), scan limit {limit} per run"
    )
    print(f"machine: {machine()}\n")
    table(
        ["path", "runs", "seconds", "IMAP commands", "header FETCHes", "full downloads", "bytes read", "SQL queries"],
        [
            [
                "module first scan (headers only)",
                runs,
                f"{first.seconds:.2f}",
                first_commands,
                first_headers,
                first_full,
                f"{first_bytes / 1e6:.1f} MB",
                first.queries,
            ],
            [
                "module idle poll",
                1,
                f"{idle.seconds:.3f}",
                idle_commands,
                idle_headers,
                idle_full,
                f"{idle_bytes} B",
                idle.queries,
            ],
            [
                "download every message (no Odoo)",
                1,
                f"{baseline.seconds:.2f}",
                base_commands,
                0,
                base_full,
                f"{base_bytes / 1e6:.1f} MB",
                "-",
            ],
        ],
    )
    print(f"\nidle poll commands after login: {b' '.join(idle_poll).decode()}")
    print(
        f"RESULT bounces: first scan of {MESSAGES:,} messages {first.seconds:.2f} s in {runs} runs, "
        f"{first_commands} IMAP commands, {first_full} full downloads, {first_bytes / 1e6:.1f} MB read; idle poll "
        f"{idle.seconds * 1000:.0f} ms, {idle_commands} commands ({b' '.join(idle_poll).decode()}); downloading "
        f"everything {baseline.seconds:.2f} s, {base_bytes / 1e6:.1f} MB read"
    )


if __name__ == "__main__":
    main()
