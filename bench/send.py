"""Benchmark: the same invoice mails sent by Odoo without the module and by the module.

(a) core: a database WITHOUT smtp_invoicing (a copy of ``<template>_invoices``) and one
    core outgoing server;
(b) module: smtp_invoicing installed on the same data (``<template>_invoices_module``),
    each of the three companies sending through its own mailbox.

Both sides hold the same posted invoices of bench/invoices.py, whose PDFs the real invoice
report generated once, in the template: the same bytes leave on both sides.

For each side, Send & Print by email queues the invoice mails on a fresh copy of its
template, as the invoices' send step does (the real invoice template, the chatter post,
one mail per invoice, ``mail_notify_force_send`` off so that the queue sends them); that
database becomes the starting point of the side's send runs. Then 3 runs per side, in the
order core, module, module, core, core, module, each on a fresh copy, each a separate
process: the mail queue's scheduled action (``process_email_queue``, a commit per mail)
sends them all to loopback STARTTLS + AUTH servers that count connections and messages.
Queries are Odoo's own counter of the sending thread; CPU time is the Odoo process's own (user +
system, all threads: the loopback servers run in another process), which a busy machine spreads
far less than wall time; queue batches are the calls of core's ``mail.mail._send`` (one per SMTP
session), counted in the run.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import benchkit
from benchkit import LOGIN, PASSWORD, Fleet, load_average, machine, table

MAILS = int(os.environ.get("SMTP_INVOICING_BENCH_MAILS", "1000"))
TEMPLATE = os.environ.get("SMTP_INVOICING_BENCH_TEMPLATE", f"{benchkit.DB_NAME}_template")
RUNS = 3
TEMPLATES = {"core": f"{TEMPLATE}_invoices", "module": f"{TEMPLATE}_invoices_module"}
TARGET_RATIO = 1.05


# --------------------------------------------------------------------------- driver


def run_worker(step, side, database, fleet_info):
    """Run one step in a process of its own on ``database``; return what it measured."""
    env = dict(os.environ, SMTP_INVOICING_BENCH_DB=database)
    result = subprocess.run(
        [sys.executable, __file__, step, side, json.dumps(fleet_info)],
        env=env,
        cwd=os.path.dirname(os.path.abspath(__file__)),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"{step} {side} failed")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    load_before = load_average()
    with Fleet(keep_messages=False) as fleet:
        ports = fleet.start(["starttls"] * 4)
        fleet_info = {"mailbox_ports": ports[:3], "core_port": ports[3], "ca_pem": fleet.ca_pem}
        queued = {}
        for side in ("core", "module"):
            database = f"{benchkit.DB_NAME}_send_{side}"
            benchkit.copy_database(TEMPLATES[side], database)
            queued[side] = run_worker("queue", side, database, fleet_info)
        runs = {"core": [], "module": []}
        for number in range(RUNS):
            # core first, then module first, then core first: a drift of the machine's speed
            # during the run does not favour one side
            for side in ("core", "module") if number % 2 == 0 else ("module", "core"):
                benchkit.copy_database(f"{benchkit.DB_NAME}_send_{side}", benchkit.DB_NAME)
                before = fleet.stats()
                result = run_worker("send", side, benchkit.DB_NAME, fleet_info)
                after = fleet.stats()
                servers = range(3) if side == "module" else [3]
                result["connections"] = [after[index][0] - before[index][0] for index in servers]
                result["delivered"] = sum(after[index][1] - before[index][1] for index in servers)
                result["load"] = load_average()
                runs[side].append(result)
                print(
                    f"run {number + 1} {side}: {result['seconds']:.1f} s, CPU {result['cpu_seconds']:.1f} s, "
                    f"load {result['load']}",
                    flush=True,
                )
    report(queued, runs, load_before)


def report(queued, runs, load_before):
    print(
        f"\nsend: {MAILS} invoice mails (real account.move, the real invoice template, the same PDFs on both sides), "
        f"queued by Send & Print, sent by process_email_queue to STARTTLS + AUTH loopback servers"
    )
    print(f"machine: {machine()}; load average before {load_before}, after {load_average()}\n")
    table(
        ["Send & Print (queue), once per side", "mails", "seconds", "ms/mail", "queries/mail", "peak RSS MB"],
        [
            [
                label,
                queued[side]["mails"],
                f"{queued[side]['seconds']:.1f}",
                f"{queued[side]['seconds'] / queued[side]['mails'] * 1000:.1f}",
                f"{queued[side]['queries'] / queued[side]['mails']:.2f}",
                f"{queued[side]['peak_mb']:.0f}",
            ]
            for side, label in (("core", "(a) core, no module"), ("module", "(b) module, 3 mailboxes"))
        ],
    )
    print()
    rows = []
    medians = {}
    for side, label in (("core", "(a) core: 1 core server, no module"), ("module", "(b) module: 3 mailboxes")):
        side_runs = runs[side]
        for result in side_runs:
            assert result["delivered"] == MAILS and result["sent"] == MAILS, (side, result)
        median = statistics.median(r["seconds"] for r in side_runs)
        cpu = statistics.median(r["cpu_seconds"] for r in side_runs)
        queries = statistics.median(r["queries"] / r["sent"] for r in side_runs)
        medians[side] = (median, queries, cpu)
        batches = side_runs[0]["batches"]
        rows.append(
            [
                label,
                " / ".join(f"{r['seconds']:.1f}" for r in side_runs),
                f"{median:.1f}",
                f"{median / MAILS * 1000:.1f}",
                " / ".join(f"{r['cpu_seconds']:.1f}" for r in side_runs),
                f"{cpu / MAILS * 1000:.1f}",
                f"{queries:.2f}",
                " ".join(f"{count}" for count in batches.values()),
                " ".join(str(c) for c in side_runs[0]["connections"]),
                f"{max(r['peak_mb'] for r in side_runs):.0f}",
                " / ".join(r["load"].split()[0] for r in side_runs),
            ]
        )
    table(
        [
            "process_email_queue",
            "runs (s)",
            "median s",
            "ms/mail",
            "CPU runs (s)",
            "CPU ms/mail",
            "queries/mail",
            "batches per server",
            "SMTP connections per server",
            "peak RSS MB",
            "load (1 min) after each",
        ],
        rows,
    )
    (core_seconds, core_queries, core_cpu), (module_seconds, module_queries, module_cpu) = (
        medians["core"],
        medians["module"],
    )
    ratio = module_seconds / core_seconds
    cpu_ratio = module_cpu / core_cpu
    module_runs = runs["module"]
    per_batch = {
        connections / batches
        for r in module_runs
        for connections, batches in zip(r["connections"], r["batches"].values(), strict=True)
    }
    queue_ratio = queued["module"]["seconds"] / queued["core"]["seconds"]
    queue_queries = (queued["module"]["queries"] - queued["core"]["queries"]) / MAILS
    verdict = (
        "met"
        if ratio <= TARGET_RATIO
        and cpu_ratio <= TARGET_RATIO
        and module_queries <= core_queries + 1
        and per_batch == {1.0}
        else "MISSED"
    )
    print(
        f"\nRESULT send: wall (b)/(a) {ratio:.3f} (median {module_seconds:.1f} s vs {core_seconds:.1f} s, target "
        f"{TARGET_RATIO}); CPU of the Odoo process (b)/(a) {cpu_ratio:.3f} ({module_cpu / MAILS * 1000:.1f} vs "
        f"{core_cpu / MAILS * 1000:.1f} ms per mail, target {TARGET_RATIO}); queries per mail "
        f"{module_queries:.2f} vs {core_queries:.2f} (target +1); SMTP connections "
        f"per mailbox per queue batch {', '.join(f'{value:g}' for value in sorted(per_batch))} (target 1); peak RSS "
        f"{max(r['peak_mb'] for r in module_runs):.0f} vs {max(r['peak_mb'] for r in runs['core']):.0f} MB; {verdict}. "
        f"Send & Print: (b)/(a) {queue_ratio:.2f}, {queue_queries:+.2f} queries per mail; "
        f"load average {load_before} before, {load_average()} after"
    )


# --------------------------------------------------------------------------- worker


def setup_core(env, fleet_info):
    """One core outgoing server, as Odoo is configured without the module."""
    env["ir.mail_server"].create(
        {
            "name": "Core server",
            "smtp_host": "127.0.0.1",
            "smtp_port": fleet_info["core_port"],
            "smtp_encryption": "starttls",
            "smtp_authentication": "login",
            "smtp_user": LOGIN,
            "smtp_pass": PASSWORD,
            "sequence": 1,
        }
    )


def setup_module(env, fleet_info):
    """A verified mailbox per company, chosen by the invoice template for that company."""
    env["ir.config_parameter"].sudo().set_param("smtp_invoicing.enabled", "True")
    env["ir.config_parameter"].sudo().set_param("smtp_invoicing.dns_nameservers", "127.0.0.1:9")
    companies = env["res.company"].search([], order="id")
    mailboxes = env["smtp_invoicing.mailbox"].create(
        [
            benchkit.mailbox_values(port, fleet_info["ca_pem"], company, name=f"Mailbox {company.name}")
            for company, port in zip(companies, fleet_info["mailbox_ports"], strict=True)
        ]
    )
    mailboxes.action_verify()
    env.cr.commit()
    env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
    env.cr.commit()  # the results were committed by the cron's own transactions: a new snapshot
    mailboxes.invalidate_recordset()
    assert set(mailboxes.mapped("verification_state")) == {"verified"}, mailboxes.mapped("verification_message")
    template = env.ref("account.email_template_edi_invoice")
    template.smtp_invoicing_mailbox_ids = [
        (0, 0, {"company_id": company.id, "mailbox_id": mailbox.id})
        for company, mailbox in zip(companies, mailboxes, strict=True)
    ]


def queue(side, fleet_info):
    """Configure the side's servers, then Send & Print every invoice by email into the queue."""
    from benchkit import Measure, boot, environment

    registry = boot()
    with environment(registry) as env:
        (setup_module if side == "module" else setup_core)(env, fleet_info)
    with environment(registry) as env:
        companies = env["res.company"].search([], order="id")
        move_ids = {
            company.id: env["account.move"].search([("company_id", "=", company.id)]).ids for company in companies
        }
    with Measure() as measure:
        for company_id, ids in move_ids.items():
            with environment(registry) as env:
                # the moves carry the context too: the chatter post reads it from the record
                env = env(context={"mail_notify_force_send": False, "allowed_company_ids": [company_id]})
                env["account.move.send"]._generate_and_send_invoices(
                    env["account.move"].browse(ids), sending_methods=["email"]
                )
    with environment(registry) as env:
        mails = env["mail.mail"].search_count([("state", "=", "outgoing")])
    return {"seconds": measure.seconds, "queries": measure.queries, "mails": mails, "peak_mb": measure.peak_rss_mb}


def send(side, fleet_info):
    """The mail queue's scheduled action sends the queued mails; queue batches counted at core's _send."""
    from benchkit import Measure, boot, environment

    from odoo.addons.mail.models import mail_mail

    registry = boot()
    batches = {}
    original = mail_mail.MailMail._send

    def counting_send(mails, *args, **kwargs):
        server = kwargs.get("mail_server")
        key = str(server.id if server else False)
        batches[key] = batches.get(key, 0) + 1
        return original(mails, *args, **kwargs)

    mail_mail.MailMail._send = counting_send
    with environment(registry) as env:
        mail_ids = env["mail.mail"].search([("state", "=", "outgoing")]).ids
    with environment(registry) as env, Measure() as measure:
        env["mail.mail"].process_email_queue()
    with environment(registry) as env:
        mails = env["mail.mail"].with_context(active_test=False).browse(mail_ids).exists()
        states = {state: mails.mapped("state").count(state) for state in ("sent", "exception", "outgoing")}
    # auto-deleted mails are gone once sent
    sent = len(mail_ids) - states["exception"] - states["outgoing"]
    return {
        "seconds": measure.seconds,
        "cpu_seconds": measure.cpu_seconds,
        "queries": measure.queries,
        "sent": sent,
        "failed": states["exception"],
        "batches": dict(sorted(batches.items())),
        "peak_mb": measure.peak_rss_mb,
    }


def worker(step, side, fleet_info):
    started = time.perf_counter()
    result = (queue if step == "queue" else send)(side, json.loads(fleet_info))
    result["process_seconds"] = time.perf_counter() - started
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        worker(*sys.argv[1:4])
    else:
        main()
