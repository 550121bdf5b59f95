"""Benchmark: verify 200 SMTP settings, 50 of them silent, with a 5 s timeout.

The module's scheduled action (parallel, run as the cron runs it) against Odoo core's
"Test Connection" (``test_smtp_connection``) called for each setting one after the
other, on core servers with the same settings and the same timeout.
"""

import time
from unittest.mock import patch

from benchkit import LOGIN, PASSWORD, Fleet, boot, environment, machine, mailbox_values, prepare_company, table

SETTINGS = 200
SILENT = 50
TIMEOUT = 5
LIVE_SERVERS = 10
SILENT_LISTENERS = 10
BASELINE_LIMIT = 600  # seconds: above this estimate the baseline runs on a subset


def main():
    from odoo.exceptions import UserError

    from odoo.addons.base.models import ir_mail_server as core_mail_server

    registry = boot()
    with Fleet() as fleet:
        live_ports = fleet.start(["starttls"] * LIVE_SERVERS)
        silent_ports = fleet.start(["silent"] * SILENT_LISTENERS)
        with environment(registry) as env:
            company = prepare_company(env)
            params = env["ir.config_parameter"].sudo()
            params.set_param("smtp_invoicing.verify_timeout", str(TIMEOUT))
            vals_list = []
            for index in range(SETTINGS):
                # every fourth setting points at a listener that accepts TCP and never answers
                if index % (SETTINGS // SILENT) == SETTINGS // SILENT - 1:
                    port = silent_ports[index % SILENT_LISTENERS]
                else:
                    port = live_ports[index % LIVE_SERVERS]
                vals_list.append(mailbox_values(port, fleet.ca_pem, company, name=f"Setting {index}"))
            mailboxes = env["ir.mail_server"].create(vals_list)
            # core's own servers for the baseline: the module's connect() leaves them to core
            core_servers = env["ir.mail_server"].create(
                [
                    {
                        "name": f"Core {index}",
                        "smtp_host": vals["smtp_host"],
                        "smtp_port": vals["smtp_port"],
                        "smtp_encryption": "starttls",
                        "smtp_authentication": "login",
                        "smtp_user": LOGIN,
                        "smtp_pass": PASSWORD,
                        "from_filter": LOGIN,
                        "sequence": 100 + index,
                    }
                    for index, vals in enumerate(vals_list)
                ]
            )
            mailboxes.action_verify()
            workers = params.get_param("smtp_invoicing.verify_workers") or "16 (default)"
            mailbox_ids, core_ids = mailboxes.ids, core_servers.ids

        # the module: the scheduled action, started as an administrator's "Run Manually" does
        with environment(registry) as env:
            cron = env.ref("smtp_invoicing.ir_cron_verify_mail_servers")
            start = time.perf_counter()
            cron.method_direct_trigger()
            env.cr.commit()
            module_seconds = time.perf_counter() - start
        with environment(registry) as env:
            mailboxes = env["ir.mail_server"].browse(mailbox_ids)
            states = {
                state: mailboxes.mapped("verification_state").count(state)
                for state in ("verified", "failed", "pending")
            }
            timeouts = len(mailboxes.filtered(lambda m: "did not answer in time" in (m.verification_message or "")))
        module_connections = sum(connections for connections, _messages in fleet.stats())

        # the baseline: core's test_smtp_connection, one setting after the other
        estimate = SILENT * TIMEOUT + (SETTINGS - SILENT) * 0.1
        subset = 1 if estimate <= BASELINE_LIMIT else max(1, round(estimate / BASELINE_LIMIT * 2))
        baseline_ids = core_ids[::subset]
        outcomes = {"ok": 0, "failed": 0}
        with environment(registry) as env, patch.object(core_mail_server, "SMTP_TIMEOUT", TIMEOUT):
            start = time.perf_counter()
            for server in env["ir.mail_server"].browse(baseline_ids):
                try:
                    server.test_smtp_connection()
                    outcomes["ok"] += 1
                except UserError:
                    outcomes["failed"] += 1
            baseline_measured = time.perf_counter() - start
            env.cr.rollback()
        baseline_seconds = baseline_measured * len(core_ids) / len(baseline_ids)
        baseline_note = "all 200 run" if subset == 1 else f"1 in {subset} run, extrapolated"

    print(
        f"\nverify: {SETTINGS} SMTP settings on loopback, {SILENT} silent (accept TCP, never answer), "
        f"timeout {TIMEOUT} s per setting"
    )
    print(f"machine: {machine()}\n")
    table(
        ["path", "settings", "ok", "failed", "pending", "seconds", "per setting"],
        [
            [
                f"module cron (workers {workers})",
                SETTINGS,
                states["verified"],
                states["failed"],
                states["pending"],
                f"{module_seconds:.1f}",
                f"{module_seconds / SETTINGS * 1000:.0f} ms",
            ],
            [
                f"core test_smtp_connection, sequential ({baseline_note})",
                len(baseline_ids),
                outcomes["ok"],
                outcomes["failed"],
                "-",
                f"{baseline_seconds:.1f}",
                f"{baseline_seconds / SETTINGS * 1000:.0f} ms",
            ],
        ],
    )
    print(f"\nmodule: {timeouts} timeouts reported, {module_connections} TCP connections accepted by the servers")
    speedup = baseline_seconds / module_seconds
    print(
        f"RESULT verify: module {module_seconds:.1f} s, baseline {baseline_seconds:.1f} s ({baseline_note}), "
        f"{speedup:.1f}x faster; {states['verified']} verified, {states['failed']} failed, "
        f"{states['pending']} pending"
    )


if __name__ == "__main__":
    main()
