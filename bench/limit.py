"""Benchmark: where the time of an invoice mail goes, Odoo with the module against plain smtplib.

On a fresh copy of ``<template>_invoices_module`` (the invoices of bench/invoices.py, their
PDFs already generated, smtp_invoicing installed), one own mailbox shared by the three
companies sends every invoice:

1. Send & Print by email queues the mails (the real invoice template), under cProfile;
2. the mail queue's scheduled action sends the first half unprofiled (the per-mail time),
   then the second half under cProfile (where it goes);
3. plain ``smtplib`` sends the very bytes the server received, over one STARTTLS + AUTH
   connection to the same loopback server.

Each profile is split by where the time is spent (the functions' own time, grouped by
package: SQL, SMTP I/O, MIME, rendering, ORM...), and the module's own share is computed on
the call graph: the time of smtp_invoicing's functions minus what they hand back to core
(their ``super()`` call: a core callee of the same name, or of the name of a module function
that called them, which hands its ``super()`` down as a callable) and minus other
smtp_invoicing functions (counted on their own). Queries a module function issues count as
the module's, and so does the tracking of ``is_move_sent`` that core finalises at commit (the
module's delivery bookkeeping is the only writer of a tracked field while mails are sent).
"""

import cProfile
import os
import pstats
import smtplib
import ssl
import time

import benchkit
from benchkit import LOGIN, PASSWORD, Fleet, Measure, boot, environment, load_average, machine, table

MAILS = int(os.environ.get("SMTP_INVOICING_BENCH_MAILS", "1000"))
TEMPLATE = os.environ.get("SMTP_INVOICING_BENCH_TEMPLATE", f"{benchkit.DB_NAME}_template")
TARGET_SHARE = 0.05
# the addon's folder: the venv lives under /opt/smtp_invoicing too
MODULE_PATH = os.path.join(benchkit.ROOT, "smtp_invoicing") + os.sep

# Where a function's own time goes, by the path of its file (first match) or builtin name.
CATEGORIES = (
    ("SQL (psycopg2, Odoo's cursor)", ("psycopg2", "/odoo/sql_db.py")),
    ("SMTP I/O (smtplib, ssl, socket)", ("/smtplib.py", "/ssl.py", "/socket.py", "_ssl.", "'_socket.", "select")),
    ("MIME (email package)", ("/email/",)),
    (
        "rendering (QWeb, mail render, HTML tools)",
        ("ir_qweb", "qweb", "mail_render_mixin", "/odoo/tools/mail.py", "lxml", "markupsafe", "<template>", "babel"),
    ),
    ("smtp_invoicing (own code)", (MODULE_PATH,)),
    ("mail and account addons", ("/odoo/addons/mail/", "/odoo/addons/account/")),
    ("ORM and rest of Odoo", ("/odoo/",)),
)
OTHER = "other Python and builtins"


def category(function):
    filename, _line, name = function
    where = filename if filename != "~" else name
    for label, needles in CATEGORIES:
        if any(needle in where for needle in needles):
            return label
    return OTHER


def breakdown(stats):
    """{category: seconds} of the functions' own time, and the total."""
    spent = {}
    for function, (_cc, _nc, own, _cumulative, _callers) in stats.stats.items():
        label = category(function)
        spent[label] = spent.get(label, 0.0) + own
    return spent, sum(spent.values())


def module_share(stats):
    """Seconds spent in smtp_invoicing's own code (queries included), and the top functions."""
    callees = {}
    for function, (_cc, _nc, _own, _cumulative, callers) in stats.stats.items():
        for caller, edge in callers.items():
            callees.setdefault(caller, []).append((function, edge[3]))
    module = [function for function in stats.stats if MODULE_PATH in function[0]]
    own, passed_down = {}, {}
    for function in module:
        # super() is handed back, whether called here or passed down as a callable by an override
        # (ir.mail_server.send_email gives core's send_email to _smtp_invoicing_send_email): a core
        # callee named as this function or as one of the module functions that led here
        overrides = {caller[2] for caller in module_callers(stats, function)} - {function[2]}
        handed_back = 0.0
        for callee, seconds in callees.get(function, ()):
            if MODULE_PATH in callee[0] or callee[2] == function[2]:
                handed_back += seconds
            elif callee[2] in overrides:
                handed_back += seconds
                passed_down[(callee[2], function[2])] = passed_down.get((callee[2], function[2]), 0.0) + seconds
        own[function] = max(stats.stats[function][3] - handed_back, 0.0)
    # Core writes no tracked field while it sends: the tracking finalised at commit is that of
    # is_move_sent, which the module's delivery bookkeeping sets (False when queued, True when
    # delivered). The call graph puts it under core's commit, so it is added here.
    deferred = sum(
        stats.stats[function][3]
        for function in stats.stats
        if function[2] == "_track_finalize" and function[0].endswith("mail_thread.py")
    )
    top = sorted(own.items(), key=lambda item: -item[1])[:6]
    return sum(own.values()), deferred, top, passed_down


def module_callers(stats, function):
    """The smtp_invoicing functions that call ``function``, directly or through other module functions."""
    found, todo = set(), [function]
    while todo:
        for caller in stats.stats[todo.pop()][4]:
            if MODULE_PATH in caller[0] and caller not in found:
                found.add(caller)
                todo.append(caller)
    return found


def profiled(function):
    profile = cProfile.Profile()
    profile.enable()
    try:
        result = function()
    finally:
        profile.disable()
    return result, pstats.Stats(profile)


def setup(registry, fleet, port):
    with environment(registry) as env:
        params = env["ir.config_parameter"].sudo()
        params.set_param("smtp_invoicing.enabled", "True")
        params.set_param("smtp_invoicing.dns_nameservers", "127.0.0.1:9")  # never asks DNS beyond loopback
        # no company: shared by the three companies of the invoices
        mailbox = env["smtp_invoicing.mailbox"].create(
            benchkit.mailbox_values(port, fleet.ca_pem, env["res.company"], name="Shared mailbox")
        )
        mailbox.smtp_invoicing_company_id = False
        mailbox.action_verify()
        env.cr.commit()
        env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        env.cr.commit()  # the results were committed by the cron's own transactions: a new snapshot
        mailbox.invalidate_recordset()
        assert mailbox.verification_state == "verified", mailbox.verification_message
        env.ref("account.email_template_edi_invoice").mail_server_id = mailbox.mail_server_id
        companies = env["res.company"].search([], order="id")
        return {company.id: env["account.move"].search([("company_id", "=", company.id)]).ids for company in companies}


def send_and_print(registry, move_ids):
    for company_id, ids in move_ids.items():
        with environment(registry) as env:
            # the moves carry the context too: the chatter post reads it from the record
            env = env(context={"mail_notify_force_send": False, "allowed_company_ids": [company_id]})
            env["account.move.send"]._generate_and_send_invoices(
                env["account.move"].browse(ids), sending_methods=["email"]
            )


def process_queue(registry, mail_ids):
    with environment(registry) as env:
        env["mail.mail"].process_email_queue(ids=mail_ids)


def main():
    load_before = load_average()
    benchkit.copy_database(f"{TEMPLATE}_invoices_module", benchkit.DB_NAME)
    registry = boot()
    with Fleet() as fleet:
        (port,) = fleet.start(["starttls"])
        move_ids = setup(registry, fleet, port)

        with Measure() as queue_measure:
            _result, queue_stats = profiled(lambda: send_and_print(registry, move_ids))
        with environment(registry) as env:
            mail_ids = env["mail.mail"].search([("state", "=", "outgoing")], order="id").ids
        assert len(mail_ids) == MAILS, len(mail_ids)
        half = MAILS // 2
        first, second = mail_ids[:half], mail_ids[half:]
        connections_before = fleet.stats()[0][0]
        with Measure() as plain_send:
            process_queue(registry, first)
        with Measure() as profiled_send:
            _result, send_stats = profiled(lambda: process_queue(registry, second))
        odoo_connections = fleet.stats()[0][0] - connections_before
        messages = fleet.messages(0)
        assert len(messages) == MAILS, len(messages)

        context = ssl.create_default_context(cadata=fleet.ca_pem)
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as connection:
            connection.starttls(context=context)
            connection.login(LOGIN, PASSWORD)
            for mail_from, rcpt_tos, content in messages:
                connection.sendmail(mail_from, rcpt_tos, content)
        plain_seconds = time.perf_counter() - start
        size = sum(len(content) for _f, _t, content in messages) / len(messages) / 1024

    print(
        f"\nlimit: {MAILS} invoice mails (real invoices and template, {size:.0f} KB each on the wire) through one "
        f"own mailbox to a STARTTLS + AUTH loopback server, and the same bytes with plain smtplib"
    )
    print(f"machine: {machine()}; load average before {load_before}, after {load_average()}\n")
    odoo_ms = plain_send.seconds / half * 1000
    plain_ms = plain_seconds / MAILS * 1000
    table(
        ["path", "mails", "seconds", "ms/mail", "queries/mail", "SMTP connections"],
        [
            [
                "Send & Print by email (queue), profiled",
                MAILS,
                f"{queue_measure.seconds:.1f}",
                f"{queue_measure.seconds / MAILS * 1000:.1f}",
                f"{queue_measure.queries / MAILS:.1f}",
                "-",
            ],
            [
                "mail queue, not profiled",
                half,
                f"{plain_send.seconds:.1f}",
                f"{odoo_ms:.1f}",
                f"{plain_send.queries / half:.1f}",
                f"{odoo_connections} (both halves)",
            ],
            [
                "mail queue, profiled",
                MAILS - half,
                f"{profiled_send.seconds:.1f}",
                f"{profiled_send.seconds / (MAILS - half) * 1000:.1f}",
                f"{profiled_send.queries / (MAILS - half):.1f}",
                "",
            ],
            ["plain smtplib, the same bytes", MAILS, f"{plain_seconds:.1f}", f"{plain_ms:.1f}", "-", 1],
        ],
    )
    shares = {}
    for phase, stats, mails in (("Send & Print", queue_stats, MAILS), ("mail queue", send_stats, MAILS - half)):
        spent, total = breakdown(stats)
        own_seconds, deferred, top, passed_down = module_share(stats)
        module_seconds = own_seconds + deferred
        shares[phase] = (module_seconds, total)
        print(f"\n{phase}: {total / mails * 1000:.1f} ms per mail under cProfile, by own time of the functions")
        table(
            ["where", "ms/mail", "share"],
            [
                [label, f"{seconds / mails * 1000:.2f}", f"{seconds / total:.1%}"]
                for label, seconds in sorted(spent.items(), key=lambda item: -item[1])
            ],
        )
        print(
            f"smtp_invoicing's own share: {module_seconds / mails * 1000:.2f} ms/mail, {module_seconds / total:.1%} "
            f"= its functions (call graph, their queries included, super() calls excluded) "
            f"{own_seconds / mails * 1000:.2f} + the tracking of is_move_sent at commit {deferred / mails * 1000:.2f}"
        )
        for (filename, line, name), seconds in top:
            print(f"  {seconds / mails * 1000:6.3f} ms/mail  {name}  {os.path.basename(filename)}:{line}")
        for (name, holder), seconds in sorted(passed_down.items()):
            print(
                f"  core's {name}, handed down as super() to {holder}: {seconds / mails * 1000:.3f} ms/mail, excluded"
            )
    module_total = sum(seconds for seconds, _total in shares.values())
    whole = sum(total for _seconds, total in shares.values())
    send_module, send_total = shares["mail queue"]
    verdict = "met" if module_total / whole <= TARGET_SHARE else "MISSED"
    print(
        f"\nRESULT limit: the Odoo mail queue sends at {plain_ms / odoo_ms:.0%} of plain smtplib's speed "
        f"({odoo_ms:.1f} vs {plain_ms:.1f} ms/mail, {odoo_ms - plain_ms:.1f} ms/mail of Odoo work); Send & Print "
        f"costs {queue_measure.seconds / MAILS * 1000:.1f} ms/mail (profiled); the module's own share "
        f"{module_total / whole:.1%} of the per-mail time (queue {send_module / send_total:.1%}, Send & Print "
        f"{shares['Send & Print'][0] / shares['Send & Print'][1]:.1%}; target {TARGET_SHARE:.0%}), {verdict}; "
        f"load average {load_before} before, {load_average()} after"
    )


if __name__ == "__main__":
    main()
