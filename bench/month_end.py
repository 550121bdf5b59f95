"""Benchmark: a month-end run through a Google Workspace mailbox, on a simulated clock.

On a fresh copy of ``<template>`` (smtp_invoicing installed), one Workspace mailbox (2,000 mails a day,
Google's published limit) sends 3,000 invoice mails (HTML body and a 12 KB PDF each, as the verify
bench's) to a loopback stand-in that answers as Gmail documents (tests/provider_servers.py:
2,000 accepted per rolling 24 h, then ``550 5.4.5 Daily user sending limit exceeded``):

1. before anything is sent, what the Send dialog announces (``_smtp_invoicing_leave_plan``);
2. day 1: the mail queue's scheduled action runs until nothing more leaves;
3. the simulated clock moves to a minute before the announced time (the product's timestamps
   move back, the stand-in's clock forward): the queue sends nothing; then to the announced time,
   and to each time the queue is triggered for after it, as the scheduled action runs: the rest
   leaves, session by session, as the provider's window frees the day before's sessions;
4. the cost of the budget: 1,000 mails through a mailbox without limits, with the budget's
   bookkeeping and with it bypassed, alternately, in the same process.

Prints the figures beside their targets and ``RESULT month-end: ... met|MISSED``.
"""

import datetime
import logging
import os
import threading
import time
from unittest.mock import patch

import benchkit
from benchkit import LOGIN, PASSWORD, Measure, boot, environment, load_average, machine, table

TEMPLATE = os.environ.get("SMTP_INVOICING_BENCH_TEMPLATE", f"{benchkit.DB_NAME}_template")
MAILS = 3000
DAILY = 2000
COST_MAILS = int(os.environ.get("SMTP_INVOICING_BENCH_MAILS", "1000"))
TARGET_QUERIES = 1.0  # extra queries per mail for the budget
TARGET_TIME = 0.05  # extra time per mail for the budget


class Clock:
    """The simulated clock: the stand-in's, and the product's through its stored timestamps."""

    def __init__(self):
        self.offset = datetime.timedelta()
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            return datetime.datetime.utcnow() + self.offset

    def advance(self, registry, delta):
        """Move the simulated time forward by ``delta``: every timestamp the budget and the queue
        compare with "now" moves back by as much, and the stand-in's clock forward."""
        with environment(registry) as env:
            for table_name, column in (
                ("smtp_invoicing_submission", "taken_at"),
                ("mail_mail", "scheduled_date"),
                ("smtp_invoicing_mailbox", "smtp_invoicing_paused_until"),
                ("smtp_invoicing_mailbox", "smtp_invoicing_paused_since"),
            ):
                env.cr.execute(
                    f"UPDATE {table_name} SET {column} = {column} - %s WHERE {column} IS NOT NULL",
                    [delta],
                )
        with self._lock:
            self.offset += delta


def setup(registry, server, ca_pem, name, preset):
    with environment(registry) as env:
        company = env.ref("base.main_company")
        if not env["res.users"].search_count([("login", "=", LOGIN)]):
            company = benchkit.prepare_company(env)
        env["ir.config_parameter"].sudo().set_param("smtp_invoicing.dns_nameservers", "127.0.0.1:9")
        mailbox = env["smtp_invoicing.mailbox"].create(
            benchkit.mailbox_values(server.port, ca_pem, company, name=name, smtp_invoicing_preset=preset)
        )
        mailbox.action_verify()
        mailbox_id = mailbox.id
    with environment(registry) as env:
        env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
    with environment(registry) as env:
        mailbox = env["smtp_invoicing.mailbox"].browse(mailbox_id)
        assert mailbox.verification_state == "verified", mailbox.verification_message
        return mailbox_id, mailbox.mail_server_id.id, company.id


def queue(registry, count, company_id, server_id, tag):
    with environment(registry) as env:
        server = env["ir.mail_server"].browse(server_id)
        return benchkit.queue_invoices(env, count, env["res.company"].browse(company_id), tag, server).ids


def run_queue(registry):
    """The mail queue's scheduled action, run until a run sends nothing more."""
    while True:
        with environment(registry) as env:
            before = env["mail.mail"].search_count([("state", "=", "sent")])
            env["mail.mail"].process_email_queue()
        with environment(registry) as env:
            if env["mail.mail"].search_count([("state", "=", "sent")]) == before:
                return


def states(registry, mail_ids):
    with environment(registry) as env:
        mails = env["mail.mail"].browse(mail_ids)
        return {
            state: mails.filtered(lambda m, state=state: m.state == state).ids
            for state in ("sent", "outgoing", "exception")
        }


def month_end(registry, pki, clock):
    from provider_servers import GmailStandIn

    server = GmailStandIn(pki, LOGIN, PASSWORD, daily_limit=DAILY, clock=clock)
    with server:
        mailbox_id, server_id, company_id = setup(registry, server, pki.ca_pem, "Workspace billing", "gmail")
        with environment(registry) as env:
            mailbox = env["smtp_invoicing.mailbox"].browse(mailbox_id)
            assert mailbox.smtp_invoicing_daily_limit == DAILY, mailbox.smtp_invoicing_daily_limit
        mail_ids = queue(registry, MAILS, company_id, server_id, "M")
        with environment(registry) as env:
            mailbox = env["smtp_invoicing.mailbox"].browse(mailbox_id)
            announced_text = mailbox._smtp_invoicing_leave_plan(MAILS)
            _now, _later, announced_at, _kind = mailbox._smtp_invoicing_leave_times(MAILS)
        started = time.perf_counter()
        run_queue(registry)
        day1_seconds = time.perf_counter() - started
        day1 = states(registry, mail_ids)
        with environment(registry) as env:
            mails = env["mail.mail"].browse(day1["outgoing"])
            released_at = min(mails.mapped("scheduled_date"))
        accepted_day1 = len(server.accepted)
        # the simulated clock a minute before the time the queue gave the waiting mails: nothing leaves
        clock.advance(registry, released_at - datetime.timedelta(minutes=1) - datetime.datetime.utcnow())
        run_queue(registry)
        early = len(server.accepted) - accepted_day1
        clock.advance(registry, datetime.timedelta(minutes=1, seconds=1))
        run_queue(registry)
        # then as the scheduled action does: run again at each time the queue was triggered for
        # (the next session of day 1 aging out), for at most 10 minutes of simulated time
        day2_started = clock()
        while True:
            with environment(registry) as env:
                waiting = env["mail.mail"].search([("id", "in", mail_ids), ("state", "=", "outgoing")])
                next_at = min(waiting.mapped("scheduled_date")) if waiting else None
            if not next_at or clock() - day2_started > datetime.timedelta(minutes=10):
                break
            clock.advance(registry, max(next_at - datetime.datetime.utcnow(), datetime.timedelta()))
            run_queue(registry)
        day2_spread = (clock() - day2_started).total_seconds()
        day2 = states(registry, mail_ids)
        accepted_day2 = len(server.accepted) - accepted_day1
        message_ids = [accepted.message.get("Message-ID") for accepted in server.accepted]
        return {
            "announced_text": announced_text,
            "announced_at": announced_at,
            "released_at": released_at,
            "day1": accepted_day1,
            "day2": accepted_day2,
            "early": early,
            "refused": len(server.refusals),
            "failed": len(day2["exception"]),
            "waiting": len(day2["outgoing"]),
            "twice": len(message_ids) - len(set(message_ids)),
            "day1_seconds": day1_seconds,
            "day2_spread": day2_spread,
        }


def cost(registry, pki):
    """Queries and seconds per mail of the queue with the budget's bookkeeping, and with it bypassed."""
    from odoo.addons.smtp_invoicing.models.mail_mail import MailMail

    from provider_servers import GmailStandIn

    def untouched(self, batches, mailboxes):
        yield from batches

    server = GmailStandIn(pki, LOGIN, PASSWORD, daily_limit=None)
    runs = {"with the budget": [], "budget bypassed": []}
    with server:
        _mailbox_id, server_id, company_id = setup(registry, server, pki.ca_pem, "Custom billing", "custom")
        for round_number in range(2):
            for label in ("budget bypassed", "with the budget") if round_number else tuple(runs):
                mail_ids = queue(registry, COST_MAILS, company_id, server_id, f"C{round_number}{label[0]}")
                bypass = patch.object(MailMail, "_smtp_invoicing_within_limits", untouched)
                with bypass if label == "budget bypassed" else _nothing(), Measure() as measure:
                    run_queue(registry)
                sent = len(states(registry, mail_ids)["sent"])
                assert sent == COST_MAILS, (label, sent)
                runs[label].append(measure)
    return runs


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def main():
    from smtp_servers import Pki

    load_before = load_average()
    benchkit.copy_database(TEMPLATE, benchkit.DB_NAME)
    registry = boot()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # the stand-in's aiosmtpd chatter
    clock = Clock()
    with Pki() as pki:
        result = month_end(registry, pki, clock)
        runs = cost(registry, pki)

    announced_gap = abs((result["released_at"] - result["announced_at"]).total_seconds())
    print(
        f"\nmonth-end: {MAILS} invoice mails (HTML and a 12 KB PDF) through one Google Workspace mailbox "
        f"({DAILY} a day) to a stand-in answering as Gmail (550 5.4.5 past {DAILY} per rolling 24 h), "
        "simulated clock"
    )
    print(f"machine: {machine()}; load average before {load_before}, after {load_average()}\n")
    print(f"Send dialog before sending: {result['announced_text']}")
    table(
        ["", "measured", "target"],
        [
            ["accepted on day 1", result["day1"], DAILY],
            ["accepted a minute before the announced time", result["early"], 0],
            ["accepted on day 2", result["day2"], MAILS - DAILY],
            ["refused by the provider", result["refused"], 0],
            ["failed", result["failed"], 0],
            ["still waiting", result["waiting"], 0],
            ["sent twice", result["twice"], 0],
            ["announced vs real leave time (s)", f"{announced_gap:.0f}", "<= 60"],
            ["day 1 wall time (s)", f"{result['day1_seconds']:.1f}", "-"],
            ["day 2: simulated time added for the queue's later triggers (s)", f"{result['day2_spread']:.0f}", "-"],
        ],
    )
    best = {label: min(measures, key=lambda m: m.seconds) for label, measures in runs.items()}
    base, budget = best["budget bypassed"], best["with the budget"]
    extra_queries = (budget.queries - base.queries) / COST_MAILS
    time_ratio = budget.seconds / base.seconds
    print()
    table(
        ["queue of " + str(COST_MAILS) + " mails", "runs (s)", "best ms/mail", "queries/mail"],
        [
            [
                label,
                " / ".join(f"{m.seconds:.1f}" for m in measures),
                f"{best[label].seconds / COST_MAILS * 1000:.2f}",
                f"{best[label].queries / COST_MAILS:.2f}",
            ]
            for label, measures in runs.items()
        ],
    )
    met = (
        result["day1"] == DAILY
        and result["early"] == 0
        and result["day2"] == MAILS - DAILY
        and result["refused"] == result["failed"] == result["waiting"] == result["twice"] == 0
        and announced_gap <= 60
        and extra_queries <= TARGET_QUERIES
        and time_ratio <= 1 + TARGET_TIME
    )
    print(
        f"\nRESULT month-end: day 1 {result['day1']}, day 2 {result['day2']} (targets {DAILY}, {MAILS - DAILY}), "
        f"refused {result['refused']}, failed {result['failed']}, sent twice {result['twice']}, announced time "
        f"off by {announced_gap:.0f} s (target 60); budget cost {extra_queries:+.2f} queries/mail (target +1), "
        f"time x{time_ratio:.3f} (target 1.05); load average {load_before} before, {load_average()} after; "
        f"{'met' if met else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
