"""Shared pieces of the benchmarks: Odoo booted in-process outside test mode, loopback
SMTP servers in a separate process, measurements and output.

Run through ``scripts/bench.sh verify|send|limit``, which prepares the database.
"""

import contextlib
import multiprocessing
import os
import sys
import threading
import time

ODOO_SRC = os.environ.get("ODOO_SRC", "/opt/odoo/18.0")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
for _path in (ODOO_SRC, TESTS):
    if _path not in sys.path:
        sys.path.insert(0, _path)

DB_NAME = os.environ.get("SMTP_INVOICING_BENCH_DB", "smtp_invoicing_bench")
DATA_DIR = os.environ.get("SMTP_INVOICING_BENCH_DATA_DIR", "/var/tmp/smtp_invoicing_bench")
LOGIN = "billing@bench.test"
PASSWORD = "bench-app-pass-7Qx"


# --------------------------------------------------------------------------- Odoo


def boot():
    """Load the registry of the bench database, as a server would: not in test mode, and
    under the server's memory limit."""
    import odoo

    odoo.tools.config.parse_config(
        setup_logging=True,
        args=[
            "--database",
            DB_NAME,
            "--addons-path",
            f"{ODOO_SRC}/odoo/addons,{ROOT}",
            "--db_host",
            "127.0.0.1",
            "--db_user",
            os.environ.get("PGUSER", "root"),
            "--data-dir",
            DATA_DIR,
            "--log-level",
            os.environ.get("SMTP_INVOICING_LOG_LEVEL", "warn"),
            "--without-demo",
            "all",
            "--workers",
            "0",
            "--max-cron-threads",
            "0",
        ],
    )
    odoo.service.server.load_server_wide_modules()
    # the address-space limit every odoo-bin server sets (limit_memory_hard, 2.5 GB by default)
    odoo.service.server.set_limit_memory_hard()
    registry = odoo.modules.registry.Registry(DB_NAME)
    assert not odoo.modules.module.current_test
    return registry


def copy_database(template, name):
    """``name`` becomes a fresh copy of ``template`` and its filestore (copy_template_db of bootstrap.sh)."""
    import subprocess

    subprocess.run(
        ["bash", "-c", 'source scripts/bootstrap.sh && copy_template_db "$@"', "copy", template, name, DATA_DIR],
        cwd=ROOT,
        check=True,
    )


@contextlib.contextmanager
def environment(registry):
    """A superuser environment on a new cursor, committed at the end."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        yield api.Environment(cr, SUPERUSER_ID, {})


def prepare_company(env):
    """Switch the feature on and create the licensed user owning the bench mailboxes."""
    env["ir.config_parameter"].sudo().set_param("smtp_invoicing.enabled", "True")
    company = env.ref("base.main_company")
    env["res.users"].with_context(no_reset_password=True).create(
        {
            "name": "Billing Desk",
            "login": LOGIN,
            "email": LOGIN,
            "company_id": company.id,
            "company_ids": [(6, 0, company.ids)],
            "groups_id": [(6, 0, env.ref("base.group_user").ids)],
        }
    )
    return company


def mailbox_values(port, ca_pem, company, **values):
    vals = {
        "name": f"Mailbox {port}",
        "sender_name": "ACME Billing",
        "sender_email": LOGIN,
        "smtp_user": LOGIN,
        "smtp_pass": PASSWORD,
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_encryption": "starttls",
        "smtp_authentication": "login",
        "smtp_invoicing_ca_cert": ca_pem,
        "smtp_invoicing_company_id": company.id,
    }
    vals.update(values)
    return vals


# --------------------------------------------------------------------------- loopback servers


def _serve(conn, keep_messages):
    """Child process: run loopback servers and answer the parent's requests."""
    import logging
    import socket
    import warnings

    import smtp_servers
    from smtp_servers import Pki, ReceivedMessage, SilentListener, SmtpServer

    async def handle_data(self, server, session, envelope):
        # keep the bytes (if asked), skip the test fixture's MIME parsing: the sink must not be the bottleneck
        received = None
        if keep_messages:
            received = ReceivedMessage(
                envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content, None
            )
        with self._owner._lock:
            self._owner.messages.append(received)
        return "250 2.0.0 OK queued"

    smtp_servers._Handler.handle_DATA = handle_data
    warnings.simplefilter("ignore", DeprecationWarning)  # aiosmtpd's Session.login_data, once per AUTH
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # refused or timed-out clients
    pki = Pki()
    servers = []
    backlog = socket.SOMAXCONN
    try:
        while True:
            command, argument = conn.recv()
            if command == "start":
                started = []
                for kind in argument:
                    if kind == "silent":
                        server = SilentListener().__enter__()
                        # the fixture's backlog of 16 drops SYNs of a burst of hundreds of checks:
                        # a dropped SYN costs the client a 1 s retransmission, not the server's silence
                        server._listener.listen(backlog)
                    else:
                        server = SmtpServer(mode=kind, cert=pki.leaf(), users={LOGIN: PASSWORD}).__enter__()
                    servers.append(server)
                    started.append(server.port)
                conn.send({"ports": started, "ca_pem": pki.ca_pem})
            elif command == "stats":
                conn.send(
                    [
                        (len(server._sockets), 0)
                        if isinstance(server, SilentListener)
                        else (server.connections, len(server.messages))
                        for server in servers
                    ]
                )
            elif command == "messages":
                conn.send([(m.mail_from, m.rcpt_tos, m.content) for m in servers[argument].messages])
            elif command == "stop":
                break
    finally:
        for server in servers:
            server.__exit__(None, None, None)
        pki.cleanup()
        conn.send(None)


class Fleet:
    """Loopback SMTP servers and silent listeners served by a separate process.

    Keeps the servers' CPU time out of the measured Odoo process (2-core machines).
    ``keep_messages=False`` counts the messages without keeping their bytes.
    """

    def __init__(self, keep_messages=True):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, keep_messages), daemon=True)
        self._process.start()
        self.ports = []
        self.ca_pem = None

    def start(self, kinds):
        """Start servers of ``kinds`` ("starttls", "ssl", "silent"); return their ports."""
        self._conn.send(("start", list(kinds)))
        answer = self._conn.recv()
        self.ca_pem = answer["ca_pem"]
        self.ports.extend(answer["ports"])
        return answer["ports"]

    def stats(self):
        """[(connections, messages)] per server, in start order."""
        self._conn.send(("stats", None))
        return self._conn.recv()

    def messages(self, index):
        self._conn.send(("messages", index))
        return self._conn.recv()

    def close(self):
        self._conn.send(("stop", None))
        self._conn.recv()
        self._process.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# --------------------------------------------------------------------------- measuring


class Measure:
    """Wall time, CPU time of the process (all its threads, user + system), SQL queries of this
    thread (all cursors) and peak RSS of a block."""

    def __enter__(self):
        thread = threading.current_thread()
        thread.query_count = getattr(thread, "query_count", 0)
        thread.query_time = getattr(thread, "query_time", 0.0)  # Odoo updates both counters
        self._queries = thread.query_count
        self.rss_before = _status_kb("VmRSS")
        _reset_peak_rss()
        self._start = time.perf_counter()
        self._cpu_start = time.process_time()
        return self

    def __exit__(self, *exc_info):
        self.seconds = time.perf_counter() - self._start
        self.cpu_seconds = time.process_time() - self._cpu_start
        self.queries = threading.current_thread().query_count - self._queries
        self.peak_rss_mb = _status_kb("VmHWM") / 1024
        self.peak_growth_mb = (_status_kb("VmHWM") - self.rss_before) / 1024


class Footprint:
    """Database connections, threads and virtual memory a block really used.

    Connections are counted two ways:
    - Odoo's connection pool, wrapped: the most connections borrowed at once and the
      distinct PostgreSQL backends handed out;
    - ``pg_stat_activity``, sampled every ``interval`` seconds by a side thread from the
      ``postgres`` database: the most backends of the bench database at once.
    The pool's idle connections to the bench database are closed first, so that the
    sampled peak only counts what the block opened. The same side thread samples the
    thread count and the virtual size (what Odoo's ``limit_memory_*`` limits measure).
    """

    def __init__(self, interval=0.01):
        self.interval = interval

    def __enter__(self):
        import psycopg2

        from odoo import sql_db

        sql_db.close_db(DB_NAME)
        self._lock = threading.Lock()
        self._borrowed = 0
        self.pool_peak = 0
        self.pool_backends = set()
        self.sampled_peak = 0
        self.sampled_backends = set()
        self.peak_threads = threading.active_count()
        self.peak_vms_mb = _status_kb("VmSize") / 1024
        pool_class = sql_db.ConnectionPool
        self._originals = (pool_class.borrow, pool_class.give_back)
        borrow, give_back = self._originals
        measure = self

        def counting_borrow(pool, connection_info):
            connection = borrow(pool, connection_info)
            if connection_info.get("dbname") == DB_NAME or connection_info.get("database") == DB_NAME:
                with measure._lock:
                    measure._borrowed += 1
                    measure.pool_peak = max(measure.pool_peak, measure._borrowed)
                    measure.pool_backends.add(connection.get_backend_pid())
                connection._bench_counted = True
            return connection

        def counting_give_back(pool, connection, keep_in_pool=True):
            if getattr(connection, "_bench_counted", False):
                connection._bench_counted = False
                with measure._lock:
                    measure._borrowed -= 1
            return give_back(pool, connection, keep_in_pool=keep_in_pool)

        pool_class.borrow, pool_class.give_back = counting_borrow, counting_give_back
        self._stop = threading.Event()
        self._sampler_connection = psycopg2.connect(
            dbname="postgres", host="127.0.0.1", user=os.environ.get("PGUSER", "root")
        )
        self._sampler_connection.autocommit = True
        self._sampler = threading.Thread(target=self._sample, name="bench-pg-sampler", daemon=True)
        self._sampler.start()
        return self

    def _sample(self):
        own = self._sampler_connection.get_backend_pid()
        with self._sampler_connection.cursor() as cr:
            while not self._stop.is_set():
                cr.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid != %s", [DB_NAME, own])
                pids = {row[0] for row in cr.fetchall()}
                self.sampled_peak = max(self.sampled_peak, len(pids))
                self.sampled_backends |= pids
                self.peak_threads = max(self.peak_threads, threading.active_count())
                self.peak_vms_mb = max(self.peak_vms_mb, _status_kb("VmSize") / 1024)
                self._stop.wait(self.interval)

    def __exit__(self, *exc_info):
        from odoo import sql_db

        self._stop.set()
        self._sampler.join(5)
        self._sampler_connection.close()
        sql_db.ConnectionPool.borrow, sql_db.ConnectionPool.give_back = self._originals

    def summary(self):
        return (
            f"{max(self.pool_peak, self.sampled_peak)} at once "
            f"(pool {self.pool_peak}, pg_stat_activity {self.sampled_peak}), "
            f"{len(self.pool_backends | self.sampled_backends)} distinct backends"
        )


def _status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss():
    # Linux: writing 5 to clear_refs resets VmHWM, so each block reports its own peak
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def machine():
    """One line describing the machine: cores, CPU model, RAM."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_gb = _meminfo_kb("MemTotal") / 1024 / 1024
    return f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}, {ram_gb:.0f} GB RAM"


def load_average():
    """The 1, 5 and 15 minute load averages, as uptime prints them."""
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def _meminfo_kb(field):
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def table(headers, rows):
    """Print rows (sequences of str) as an aligned text table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join("{:<%d}" % width for width in widths)
    print(line.format(*headers))
    print(line.format(*("-" * width for width in widths)))
    for row in rows:
        print(line.format(*(str(cell) for cell in row)))


# --------------------------------------------------------------------------- invoice-like mails

INVOICE_BODY = """<div style="margin: 0px; padding: 0px;">
<p style="margin: 0px; padding: 0px; font-size: 13px;">Dear {customer},<br/><br/>
Here is your invoice <strong>{number}</strong> amounting in <strong>$ {amount:,.2f}</strong> from ACME
Corporation. Please remit payment at your earliest convenience.<br/>
Please use the following communication for your payment: <strong>{number}</strong>.<br/><br/>
Do not hesitate to contact us if you have any questions.<br/><br/>--<br/>ACME Billing</p>
<table style="width: 100%; border-collapse: collapse;">{lines}</table></div>"""
INVOICE_LINE = (
    '<tr><td style="padding: 4px;">Consulting, {day:02d}/11</td><td style="text-align: right;">$ 125.00</td></tr>'
)


def queue_invoices(env, count, company, tag, mail_server=None):
    """Queue ``count`` invoice-like mails (HTML body, 12 KB PDF attachment) of ``company``."""
    customer = env["res.partner"].create({"name": f"Customer {tag}", "email": f"customer-{tag}@client.test"})
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 48
    attachments = env["ir.attachment"].create(
        [
            {
                "name": f"INV_{tag}_{index:05d}.pdf",
                "raw": pdf,
                "mimetype": "application/pdf",
                "res_model": "res.partner",
                "res_id": customer.id,
            }
            for index in range(count)
        ]
    )
    lines = "".join(INVOICE_LINE.format(day=day) for day in range(1, 11))
    return env["mail.mail"].create(
        [
            {
                "subject": f"ACME Invoice (Ref INV/2026/{tag}{index:05d})",
                "body_html": INVOICE_BODY.format(
                    customer=customer.name, number=f"INV/2026/{tag}{index:05d}", amount=1250 + index, lines=lines
                ),
                "email_from": LOGIN,
                "email_to": customer.email,
                "model": "res.partner",
                "res_id": customer.id,
                "record_company_id": company.id,
                "mail_server_id": mail_server.id if mail_server else False,
                "attachment_ids": [(4, attachment.id)],
            }
            for index, attachment in enumerate(attachments)
        ]
    )


def send_queue(registry, mail_ids):
    """Send queued mails as the mail queue's scheduled action does; return its Measure and batch count."""
    with environment(registry) as env:
        mails = env["mail.mail"].browse(mail_ids)
        batches = len(list(mails._split_by_mail_configuration()))
        env.cr.rollback()  # routing may have written; the measured run routes again
    with environment(registry) as env, Measure() as measure:
        env["mail.mail"].process_email_queue()
    with environment(registry) as env:
        failed = env["mail.mail"].search_count([("id", "in", mail_ids), ("state", "=", "exception")])
    return measure, batches, failed
