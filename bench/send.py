"""Benchmark: 1,000 invoice-like mails through 3 own mailboxes vs through one core server.

Both sides run in the same database and the same process, sent as the mail queue's
scheduled action sends them (``process_email_queue``, a commit per mail). Rounds run in
the order core, module, module, core so that a drift of the machine hits both sides.
"""

import os
import statistics

from benchkit import (
    LOGIN,
    PASSWORD,
    Fleet,
    boot,
    environment,
    machine,
    mailbox_values,
    prepare_company,
    queue_invoices,
    send_queue,
    table,
)

MAILS = int(os.environ.get("SMTP_INVOICING_BENCH_MAILS", "1000"))
MAILBOXES = 3
WARMUP = 30
SMALL = 100


def setup(registry, fleet):
    ports = fleet.start(["starttls"] * (MAILBOXES + 1))
    with environment(registry) as env:
        company = prepare_company(env)
        mailboxes = env["ir.mail_server"].create(
            [
                mailbox_values(port, fleet.ca_pem, company, name=f"Mailbox {index + 1}")
                for index, port in enumerate(ports[:MAILBOXES])
            ]
        )
        mailboxes.action_verify()
        env.cr.commit()  # verification results are committed by their own transactions
        env["ir.mail_server"]._cron_verify_mail_servers()
        env.cr.commit()
        mailboxes.invalidate_recordset()
        assert set(mailboxes.mapped("verification_state")) == {"verified"}, mailboxes.mapped("verification_message")
        # the default core server: what Odoo uses when no mailbox was chosen
        env["ir.mail_server"].create(
            {
                "name": "Core server",
                "smtp_host": "127.0.0.1",
                "smtp_port": ports[MAILBOXES],
                "smtp_encryption": "starttls",
                "smtp_authentication": "login",
                "smtp_user": LOGIN,
                "smtp_pass": PASSWORD,
                "sequence": 1,
            }
        )
        return company.id, mailboxes.ids


def run(registry, fleet, side, count, tag, company_id, mailbox_ids):
    with environment(registry) as env:
        company = env["res.company"].browse(company_id)
        if side == "module":
            mailboxes = env["ir.mail_server"].browse(mailbox_ids)
            mails = env["mail.mail"]
            for index, mailbox in enumerate(mailboxes):
                share = count // MAILBOXES + (1 if index < count % MAILBOXES else 0)
                mails |= queue_invoices(env, share, company, f"{tag}{index}", mail_server=mailbox)
        else:
            mails = queue_invoices(env, count, company, tag)
        mail_ids = mails.ids
    before = fleet.stats()
    measure, batches, failed = send_queue(registry, mail_ids)
    after = fleet.stats()
    servers = range(MAILBOXES) if side == "module" else [MAILBOXES]
    connections = [after[index][0] - before[index][0] for index in servers]
    delivered = sum(after[index][1] - before[index][1] for index in servers)
    assert failed == 0 and delivered == count, (side, failed, delivered)
    return {
        "seconds": measure.seconds,
        "queries": measure.queries / count,
        "total_queries": measure.queries,
        "batches": batches,
        "connections": connections,
        "peak_mb": measure.peak_rss_mb,
        "growth_mb": measure.peak_growth_mb,
    }


def main():
    registry = boot()
    with Fleet() as fleet:
        company_id, mailbox_ids = setup(registry, fleet)
        small = {}
        for side in ("core", "module"):
            run(registry, fleet, side, WARMUP, f"W{side[0]}", company_id, mailbox_ids)
            # a smaller run: subtracted from the large ones, it gives the queries of one more mail
            small[side] = run(registry, fleet, side, SMALL, f"S{side[0]}", company_id, mailbox_ids)
        results = {"core": [], "module": []}
        for number, side in enumerate(("core", "module", "module", "core")):
            results[side].append(run(registry, fleet, side, MAILS, f"R{number}", company_id, mailbox_ids))

    print(
        f"\nsend: {MAILS} invoice-like mails (HTML body, 12 KB PDF), process_email_queue, STARTTLS + AUTH "
        f"loopback servers; 2 rounds per side, order core, module, module, core"
    )
    print(f"machine: {machine()}\n")
    rows = []
    summary = {}
    for side, label in (("core", "core: 1 default server, no mailbox"), ("module", f"module: {MAILBOXES} mailboxes")):
        runs = results[side]
        seconds = statistics.mean(r["seconds"] for r in runs)
        queries = statistics.mean(r["queries"] for r in runs)
        marginal = (statistics.mean(r["total_queries"] for r in runs) - small[side]["total_queries"]) / (MAILS - SMALL)
        summary[side] = (seconds, marginal, runs)
        rows.append(
            [
                label,
                " / ".join(f"{r['seconds']:.1f}" for r in runs),
                f"{seconds:.1f}",
                f"{seconds / MAILS * 1000:.1f}",
                f"{queries:.3f}",
                f"{marginal:.3f}",
                max(r["batches"] for r in runs),
                " ".join(str(c) for c in runs[0]["connections"]) + " per run",
                f"{max(r['peak_mb'] for r in runs):.0f} (+{max(r['growth_mb'] for r in runs):.0f})",
            ]
        )
    table(
        [
            "path",
            "runs (s)",
            "mean s",
            "ms/mail",
            "queries/mail",
            "per extra mail",
            "batches",
            "connections/server",
            "peak RSS MB (+growth)",
        ],
        rows,
    )
    print(
        "\nqueries/mail: all queries of the run divided by the mails; per extra mail: (queries of a "
        f"{MAILS}-mail run - queries of a {SMALL}-mail run) / {MAILS - SMALL}, i.e. without per-batch costs"
    )
    core_seconds, core_queries, _runs = summary["core"]
    module_seconds, module_queries, module_runs = summary["module"]
    max_connections = max(c for r in module_runs for c in r["connections"])
    print(
        f"\nRESULT send: wall ratio module/core {module_seconds / core_seconds:.2f} "
        f"({module_seconds:.1f} s vs {core_seconds:.1f} s), queries per extra mail {module_queries:.3f} vs "
        f"{core_queries:.3f}, SMTP connections per mailbox per run {max_connections} "
        f"(queue batches per mailbox: 1)"
    )


if __name__ == "__main__":
    main()
