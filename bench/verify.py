"""Benchmark: verify 200 mailboxes (50 silent) and 2,000 mailboxes (500 silent), 5 s timeout.

For each case, in one run:
- the module's scheduled action at its default settings, run as the cron runs it;
- the same scheduled action with one worker (the algorithm without the parallelism);
- Odoo core's "Test Connection" (``test_smtp_connection``) called for each setting one
  after the other, on core servers with the same settings and the same timeout.
The last two run on a stated sample with the proportion of silent hosts of the case
(SAMPLE_SILENT silent and 3 times as many answering), and their figure for the whole
case is extrapolated, and printed as such.

Printed beside each run: peak RSS and virtual size (the process runs under Odoo's
``limit_memory_hard``, as odoo-bin does), the peak thread count, the database connections
the run really used (Odoo's pool wrapped, and ``pg_stat_activity`` sampled) and where
the cron thread spent its time (taking leases, recording results, waiting).
"""

import os
import time
from unittest.mock import patch

from benchkit import (
    LOGIN,
    PASSWORD,
    Fleet,
    Footprint,
    Measure,
    boot,
    environment,
    load_average,
    machine,
    mailbox_values,
    prepare_company,
    table,
)

CASES = ((200, 50), (2000, 500))
TIMEOUT = 5
LIVE_SERVERS = 30
SILENT_LISTENERS = 20
SAMPLE_SILENT = int(os.environ.get("SMTP_INVOICING_BENCH_SAMPLE_SILENT", "6"))
TARGETS = {200: 8.0, 2000: 30.0}
MAX_CONNECTIONS = 4


class CronProfile:
    """Where the cron thread's time goes: leases, recording, and the checks' own wall time."""

    def __init__(self, registry):
        from odoo.addons.smtp_invoicing.lib import smtp

        self._smtp = smtp
        self._model = registry["smtp_invoicing.mailbox"]
        self.take_seconds = self.record_seconds = self.check_seconds = 0.0
        self.recorded = 0

    def __enter__(self):
        take, record, verify = (
            self._model._smtp_invoicing_take_leases,
            self._model._smtp_invoicing_record_leases,
            self._smtp.verify,
        )
        profile = self

        def timed_take(model, server_ids):
            start = time.perf_counter()
            try:
                return take(model, server_ids)
            finally:
                profile.take_seconds += time.perf_counter() - start

        def timed_record(model, outcomes):
            start = time.perf_counter()
            try:
                return record(model, outcomes)
            finally:
                profile.record_seconds += time.perf_counter() - start
                profile.recorded += len(outcomes)

        def timed_verify(*args, **kwargs):
            start = time.perf_counter()
            try:
                return verify(*args, **kwargs)
            finally:
                profile.check_seconds += time.perf_counter() - start  # float += under the GIL: close enough

        self._patches = [
            patch.object(self._model, "_smtp_invoicing_take_leases", timed_take),
            patch.object(self._model, "_smtp_invoicing_record_leases", timed_record),
            patch.object(self._smtp, "verify", timed_verify),
        ]
        for active in self._patches:
            active.start()
        return self

    def __exit__(self, *exc_info):
        for active in reversed(self._patches):
            active.stop()


def create_case(registry, fleet, company_id, settings, silent, live_ports, silent_ports):
    """Create ``settings`` mailboxes, every (settings // silent)-th one pointing at a silent listener."""
    step = settings // silent
    with environment(registry) as env:
        company = env["res.company"].browse(company_id)
        vals_list, silent_flags = [], []
        for index in range(settings):
            is_silent = index % step == step - 1
            ports = silent_ports if is_silent and silent_ports else live_ports
            port = ports[index % len(ports)]
            vals_list.append(mailbox_values(port, fleet.ca_pem, company, name=f"Case {settings} setting {index}"))
            silent_flags.append(is_silent)
        mailboxes = env["smtp_invoicing.mailbox"].create(vals_list)
        silent_ids = [m.id for m, flag in zip(mailboxes, silent_flags, strict=True) if flag]
        live_ids = [m.id for m, flag in zip(mailboxes, silent_flags, strict=True) if not flag]
        sample_ids = silent_ids[:SAMPLE_SILENT] + live_ids[: SAMPLE_SILENT * (settings - silent) // silent]
        sample = env["smtp_invoicing.mailbox"].browse(sample_ids)
        # core's own servers for the baseline, same settings: the module's connect() leaves them to core
        core_ids = (
            env["ir.mail_server"]
            .create(
                [
                    {
                        "name": f"Core {server.name}",
                        "smtp_host": server.smtp_host,
                        "smtp_port": server.smtp_port,
                        "smtp_encryption": "starttls",
                        "smtp_authentication": "login",
                        "smtp_user": LOGIN,
                        "smtp_pass": PASSWORD,
                        "from_filter": LOGIN,
                        "sequence": 100 + index,
                    }
                    for index, server in enumerate(sample)
                ]
            )
            .ids
        )
        return mailboxes.ids, sample_ids, core_ids


def run_module(registry, fleet, mailbox_ids, workers):
    """Request the verification of ``mailbox_ids``, then run the scheduled action as "Run Manually" does."""
    with environment(registry) as env:
        params = env["ir.config_parameter"].sudo()
        params.set_param("smtp_invoicing.verify_workers", str(workers) if workers else False)
        env["smtp_invoicing.mailbox"].browse(mailbox_ids).action_verify()
    connections_before = sum(connections for connections, _messages in fleet.stats())
    with Footprint() as footprint, CronProfile(registry) as profile, Measure() as measure:
        with environment(registry) as env:
            env.ref("smtp_invoicing.ir_cron_verify_mail_servers").method_direct_trigger()
    accepted = sum(connections for connections, _messages in fleet.stats()) - connections_before
    with environment(registry) as env:
        mailboxes = env["smtp_invoicing.mailbox"].browse(mailbox_ids)
        states = {
            state: mailboxes.mapped("verification_state").count(state) for state in ("verified", "failed", "pending")
        }
        timeouts = len(mailboxes.filtered(lambda m: "did not answer in time" in (m.verification_message or "")))
    return {
        "seconds": measure.seconds,
        "queries": measure.queries,
        "peak_mb": measure.peak_rss_mb,
        "growth_mb": measure.peak_growth_mb,
        "states": states,
        "timeouts": timeouts,
        "accepted": accepted,
        "footprint": footprint,
        "profile": profile,
    }


def run_core(registry, core_ids):
    """Core's Test Connection on each server, one after the other, with the same timeout."""
    from odoo.exceptions import UserError

    from odoo.addons.base.models import ir_mail_server as core_mail_server

    outcomes = {"ok": 0, "failed": 0}
    with (
        Footprint() as footprint,
        Measure() as measure,
        environment(registry) as env,
        patch.object(core_mail_server, "SMTP_TIMEOUT", TIMEOUT),
    ):
        for server in env["ir.mail_server"].browse(core_ids):
            try:
                server.test_smtp_connection()
                outcomes["ok"] += 1
            except UserError:
                outcomes["failed"] += 1
        env.cr.rollback()
    return {
        "seconds": measure.seconds,
        "outcomes": outcomes,
        "peak_mb": measure.peak_rss_mb,
        "footprint": footprint,
    }


def main():
    registry = boot()
    from odoo.addons.smtp_invoicing.models.smtp_invoicing_mailbox_verification import DEFAULT_WORKERS

    load_before = load_average()
    with Fleet() as fleet:
        live_ports = fleet.start(["starttls"] * LIVE_SERVERS)
        silent_ports = fleet.start(["silent"] * SILENT_LISTENERS)
        with environment(registry) as env:
            company = prepare_company(env)
            env["ir.config_parameter"].sudo().set_param("smtp_invoicing.verify_timeout", str(TIMEOUT))
            company_id = company.id
        results = []
        for settings, silent in CASES:
            start = time.perf_counter()
            mailbox_ids, sample_ids, core_ids = create_case(
                registry, fleet, company_id, settings, silent, live_ports, silent_ports
            )
            setup_seconds = time.perf_counter() - start
            module = run_module(registry, fleet, mailbox_ids, workers=None)
            one = run_module(registry, fleet, sample_ids, workers=1)
            core = run_core(registry, core_ids)
            results.append((settings, silent, setup_seconds, module, one, core, len(sample_ids)))

    print(
        f"\nverify: mailboxes on loopback (STARTTLS + AUTH + MAIL FROM/RCPT TO), some silent (accept TCP, "
        f"never answer), timeout {TIMEOUT} s; {LIVE_SERVERS} answering servers and {SILENT_LISTENERS} silent "
        f"listeners in a separate process"
    )
    print(f"machine: {machine()}; load average before {load_before}, after {load_average()}")
    print(f"memory limits of an Odoo server: {memory_limits()}\n")
    rows = []
    notes = []
    verdicts = []
    for settings, silent, setup_seconds, module, one, core, sample in results:
        scale = settings / sample
        sample_note = f"sample {sample} ({SAMPLE_SILENT} silent), x{scale:.1f} extrapolated"
        rows.append(
            [
                f"{settings}/{silent}",
                f"module, default workers ({DEFAULT_WORKERS})",
                f"{module['seconds']:.1f}",
                "all run",
                _states(module["states"]),
                f"{module['peak_mb']:.0f} (+{module['growth_mb']:.0f})",
                f"{module['footprint'].peak_vms_mb:.0f}",
                module["footprint"].peak_threads,
                module["footprint"].summary(),
            ]
        )
        rows.append(
            [
                f"{settings}/{silent}",
                "module, 1 worker",
                f"{one['seconds'] * scale:.1f}",
                f"{one['seconds']:.1f} s for the {sample_note}",
                _states(one["states"]),
                f"{one['peak_mb']:.0f}",
                f"{one['footprint'].peak_vms_mb:.0f}",
                one["footprint"].peak_threads,
                one["footprint"].summary(),
            ]
        )
        rows.append(
            [
                f"{settings}/{silent}",
                "core test_smtp_connection, sequential",
                f"{core['seconds'] * scale:.1f}",
                f"{core['seconds']:.1f} s for the {sample_note}",
                f"{core['outcomes']['ok']} ok, {core['outcomes']['failed']} failed",
                f"{core['peak_mb']:.0f}",
                f"{core['footprint'].peak_vms_mb:.0f}",
                core["footprint"].peak_threads,
                core["footprint"].summary(),
            ]
        )
        profile = module["profile"]
        notes.append(
            f"{settings}/{silent} module default: setup {setup_seconds:.0f} s (not measured); cron thread "
            f"{profile.take_seconds:.1f} s taking leases, {profile.record_seconds:.1f} s recording "
            f"{profile.recorded} results, the rest waiting; checks {profile.check_seconds:.0f} s of thread "
            f"time in all; {module['timeouts']} timeouts reported; {module['accepted']} TCP connections "
            f"accepted by the servers; {module['queries']} queries ({module['queries'] / settings:.1f} per mailbox)"
        )
        connections = max(module["footprint"].pool_peak, module["footprint"].sampled_peak)
        within = module["seconds"] <= TARGETS[settings] and connections <= MAX_CONNECTIONS
        verdicts.append(
            f"{settings}/{silent} {module['seconds']:.1f} s (target {TARGETS[settings]:g}), "
            f"{connections} connections (target {MAX_CONNECTIONS}), peak RSS {module['peak_mb']:.0f} MB, "
            f"VMS {module['footprint'].peak_vms_mb:.0f} MB, {module['footprint'].peak_threads} threads, "
            f"{'met' if within else 'MISSED'}; 1 worker {one['seconds'] * scale:.0f} s, "
            f"core {core['seconds'] * scale:.0f} s (extrapolated)"
        )
    table(
        ["case", "path", "seconds", "measured", "outcome", "peak RSS MB", "peak VMS MB", "threads", "DB connections"],
        rows,
    )
    print()
    for note in notes:
        print(note)
    print(f"\nRESULT verify: {'; '.join(verdicts)}; load average {load_before} before, {load_average()} after")


def memory_limits():
    from odoo.tools import config

    return (
        f"limit_memory_soft {config['limit_memory_soft'] / 1024**2:.0f} MB (a worker past it is recycled), "
        f"limit_memory_hard {config['limit_memory_hard'] / 1024**2:.0f} MB (address space, set here too)"
    )


def _states(states):
    return f"{states['verified']} verified, {states['failed']} failed, {states['pending']} pending"


if __name__ == "__main__":
    main()
