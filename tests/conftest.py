"""Boot Odoo once for the whole pytest session, on a database with the module installed.

Odoo's test classes (TransactionCase, HttpCase) then run as ordinary pytest
items. The database is prepared by scripts/test.sh (``SMTP_INVOICING_TEST_DB``); under
pytest-xdist each worker boots its own Odoo on its own copy, ``<database>_<worker id>``, and
the controller boots none.
Skipped tests count as failures: a test that does not run proves nothing; a test
that outlives its timeout (pytest.ini) stops the run with a failure.
"""

import base64
import binascii
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import traceback

import pytest
import pytest_timeout

ODOO_SRC = os.environ.get("ODOO_SRC", "/opt/odoo/18.0")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))
for path in (ODOO_SRC, TESTS):
    if path not in sys.path:
        sys.path.insert(0, path)

# The run's name: its templates and scratch databases are named after it (odoo_runs.py).
RUN_DB = os.environ.get("SMTP_INVOICING_TEST_DB", "smtp_invoicing_test")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"... under pytest-xdist
# The database this process tests, and the prefix of the scratch databases its tests make.
DB_NAME = f"{RUN_DB}_{WORKER}" if WORKER else RUN_DB

# Loggers that see SMTP sessions and passwords: captured down to DEBUG for the
# whole session and searched for secrets, while the console keeps its level.
WATCHED_LOGGERS = (
    "odoo.addons.smtp_invoicing",
    "odoo.addons.base.models.ir_mail_server",
    "odoo.addons.mail.models.mail_mail",
    "odoo.addons.mail.models.mail_thread",
    "odoo.http",
    "smtp_invoicing_lib_smtp",
    "smtp_invoicing_lib_smtp_faults",
)
# Passwords the tests use besides those the loopback servers know (smtp_servers.KNOWN_SECRETS).
EXTRA_SECRETS = (
    "mailbox-upgrade-secret",
    "relay-secret",
    "other-secret",
    "new-secret",
    "their-secret",
    "legacy-secret",
)
MIN_SECRET_LENGTH = 8  # shorter test passwords ("another") are ordinary words
LEAKS = []
_BASE64 = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")


def secret_leaks(text, secrets):
    """The secrets found in ``text``, in clear or base64-encoded (as in an SMTP AUTH trace)."""
    found = {secret for secret in secrets if secret in text}
    for token in _BASE64.findall(text):
        try:
            decoded = base64.b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            continue
        found.update(secret for secret in secrets if secret.encode() in decoded)
    return found


class _SecretLogCollector(logging.Handler):
    """Every record of the session (DEBUG included for WATCHED_LOGGERS), searched for secrets."""

    def __init__(self):
        super().__init__(level=logging.NOTSET)
        self.texts = []

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:  # a broken log call must not hide the others
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.texts.append((record.name, text))


SECRET_LOG = _SecretLogCollector()


class _ConsoleLevel(logging.Filter):
    """Keep the console at its configured level although watched loggers go down to DEBUG."""

    def __init__(self, level):
        super().__init__()
        self.level = level

    def filter(self, record):
        return record.levelno >= self.level or not record.name.startswith(WATCHED_LOGGERS)


def _watch_logs():
    root = logging.getLogger()
    console = _ConsoleLevel(root.getEffectiveLevel())
    for handler in root.handlers:
        handler.addFilter(console)
    root.addHandler(SECRET_LOG)
    for name in WATCHED_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PURE_TEST_FILES = (
    "test_smtp_lib",
    "test_smtp_faults",
    "test_mail_stack",
    "test_bounce_lib",
    "test_oauth_lib",
    "test_providers_lib",
    "test_provider_servers",
)


def _is_xdist_controller(config):
    """True in the pytest-xdist process that only hands tests out to the workers and reports."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def _odoo_tests_wanted(config):
    # the pure tests (PURE_TEST_FILES alone) do not need Odoo, nor does the xdist controller
    if _is_xdist_controller(config):
        return False
    args = [str(arg) for arg in config.args]
    return not args or any(not any(name in arg for name in PURE_TEST_FILES) for arg in args)


def pytest_configure(config):
    # aiosmtpd logs client-side TLS refusals, which several tests provoke, as errors
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    if not _odoo_tests_wanted(config):
        _watch_logs()
        return
    import odoo
    from odoo.service import server

    data_dir = os.environ.get("SMTP_INVOICING_TEST_DATA_DIR") or tempfile.mkdtemp(prefix="smtp_invoicing_data_")
    if WORKER:
        _ensure_worker_db(data_dir)
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
            data_dir,
            "--http-interface",
            "127.0.0.1",
            "--http-port",
            str(_free_port()),
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
    registry = odoo.modules.registry.Registry(DB_NAME)
    # after loading: with test_enable set, loading would run the addons' own tests
    odoo.tools.config["test_enable"] = True
    odoo.modules.module.current_test = _BetweenTests()
    threading.current_thread().testing = True
    _watch_logs()
    # records muted by a test (mute_logger) are still searched for passwords
    odoo.tools.misc.mute_logger.emit = lambda self, record: SECRET_LOG.emit(record)
    with registry.cursor() as cr:
        cr.execute("SELECT state FROM ir_module_module WHERE name = 'smtp_invoicing'")
        row = cr.fetchone()
        if not row or row[0] != "installed":
            raise pytest.UsageError(f"smtp_invoicing is not installed in database {DB_NAME}: run scripts/test.sh")
    # Odoo's BaseCase.run() asks its result object whether the test passed
    from _pytest.unittest import TestCaseFunction

    TestCaseFunction.wasSuccessful = lambda self: not getattr(self, "_excinfo", None)
    # Parse every manifest now, in one thread: CPython 3.11's compile() is not
    # thread-safe ("AST constructor recursion depth mismatch") and wkhtmltopdf
    # fetches report assets from several server threads at once.
    odoo.http.root.statics  # noqa: B018
    # HttpCase needs the HTTP server Odoo's own runner starts
    server.server = server.ThreadedServer(odoo.http.root)
    server.server.http_spawn()


def _ensure_worker_db(data_dir):
    """Give a worker that xdist started to replace a crashed one its own copy of the template.

    scripts/test.sh copies the template for the workers it starts (gw0...gwN-1); a replacement
    gets the next free id, and without a database it would stop the whole run (INTERNALERROR)
    instead of letting it report the crashed test and go on.
    """
    exists = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            os.environ.get("PGUSER", "root"),
            "-d",
            "postgres",
            "-tAc",
            f"select 1 from pg_database where datname = '{DB_NAME}'",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if exists:
        return
    subprocess.run(
        [
            "bash",
            "-c",
            'source "$1" && exec 9>"$3/templates.lock" && flock 9 && copy_template_db "$2" "$4" "$3"',
            "_",
            os.path.join(ROOT, "scripts", "bootstrap.sh"),
            f"{RUN_DB}_template",
            data_dir,
            DB_NAME,
        ],
        check=True,
        capture_output=True,
    )


class _BetweenTests:
    """What ``odoo.modules.module.current_test`` holds outside a test method (setUpClass, plain tests).

    Odoo's runner puts the first test of a class there before its setUpClass; here the
    class is set up by pytest before the autouse fixture below names the test. Truthy,
    like Odoo's own ``True`` at that point, and it lets code open registry test cursors.
    """

    canonical_tag = "smtp_invoicing"

    def __bool__(self):
        return True

    def check_test_cursor(self, operation):
        return None


class _ErrorLogCollector(logging.Handler):
    """Odoo's runner fails a test that logs an error; so does this suite."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(autouse=True)
def _odoo_test_context(request):
    """Make the running test Odoo's current test, and fail it on logged errors."""
    instance = getattr(request.node, "_testcase", None) or request.instance
    collector = _ErrorLogCollector()
    first_record = len(SECRET_LOG.texts)
    root = logging.getLogger()
    root.addHandler(collector)
    previous = None
    if "odoo" in sys.modules and instance is not None:
        import odoo

        previous = odoo.modules.module.current_test
        odoo.modules.module.current_test = instance
    try:
        yield
    finally:
        root.removeHandler(collector)
        if previous is not None:
            import odoo

            odoo.modules.module.current_test = previous
    from smtp_servers import KNOWN_SECRETS

    secrets = {secret for secret in KNOWN_SECRETS | set(EXTRA_SECRETS) if len(secret) >= MIN_SECRET_LENGTH}
    leaks = [(name, sorted(secret_leaks(text, secrets))) for name, text in SECRET_LOG.texts[first_record:]]
    leaks = [leak for leak in leaks if leak[1]]
    LEAKS.extend(leaks)
    if leaks:
        pytest.fail(f"passwords were logged: {leaks!r}")
    if collector.records:
        pytest.fail("errors were logged:\n" + "\n".join(r.getMessage() for r in collector.records))


_WORKER_COUNTS = {"records": 0, "leaks": 0}  # added up by the xdist controller


def pytest_sessionfinish(session):
    """A worker hands its secret-log counts to the controller (pytest-xdist's workeroutput)."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["smtp_invoicing_log_records"] = len(SECRET_LOG.texts)
        output["smtp_invoicing_leaks"] = len(LEAKS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    output = getattr(node, "workeroutput", {})
    _WORKER_COUNTS["records"] += output.get("smtp_invoicing_log_records", 0)
    _WORKER_COUNTS["leaks"] += output.get("smtp_invoicing_leaks", 0)


def pytest_terminal_summary(terminalreporter):
    records = len(SECRET_LOG.texts) + _WORKER_COUNTS["records"]
    leaks = len(LEAKS) + _WORKER_COUNTS["leaks"]
    terminalreporter.write_line(f"smtp_invoicing: {records} log records searched for passwords, {leaks} leak(s)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn every skip into a failure: CI must never pass on tests that did not run."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"test was skipped, which this suite treats as a failure: {reason}"


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item, settings):
    """Name the test that ran out of time, then let pytest-timeout print the stacks and stop.

    With the thread method (pytest.ini) a timeout ends the run at once with status 1, before
    any report: without this line, only the stacks would tell which test hung.
    """
    if settings.method != "thread":
        return None

    def expire():
        capture = item.config.pluginmanager.getplugin("capturemanager")
        if capture:
            capture.suspend_global_capture()  # or the line would go to the captured output
        item.config.get_terminal_writer().line(
            f"\nFAILED {item.nodeid}: still running after {settings.timeout:g} s (pytest-timeout), the run stops here"
        )
        pytest_timeout.timeout_timer(item, settings)

    timer = threading.Timer(settings.timeout, expire)
    timer.name = f"pytest_timeout {item.nodeid}"

    def cancel():
        timer.cancel()
        timer.join()

    item.cancel_timeout = cancel
    timer.start()
    return True


# Seconds each slow file took in a worker (four workers on two cores, 2026-12-02): xdist hands
# whole files out in collection order (--dist loadfile), so the longest go first and the
# short ones fill the gaps at the end. Files not named here keep their order, after these.
SLOW_FILES = {
    "test_database_moves": 62,
    "test_upgrade_uninstall": 56,
    "test_migration": 30,
    "test_bounces": 52,
    "test_french_tour": 44,
    "test_oauth": 43,
    "test_multi_company": 36,
    "test_send_windows": 35,
    "test_setup_tour": 26,
    "test_wheel": 24,
    "test_lint": 19,
    "test_sending": 19,
    "test_delivery_truth": 19,
    "test_oauth_tour": 18,
    "test_oauth_lib": 14,
    "test_reminders": 13,
    "test_scale": 11,
    "test_mail_stack": 9,
    "test_lost_mail": 8,
    "test_smtp_lib": 8,
    "test_faults": 8,
    "test_concurrency": 8,
    "test_postfix": 7,
    "test_forms": 7,
    "test_oauth_access": 7,
    "test_mailbox_settings": 6,
    "test_bounce_lib": 6,
    "test_verification": 6,
}


def pytest_collection_modifyitems(items):
    """Order the files slowest first; give test classes the module and tags Odoo's runner would (post_install)."""
    items.sort(key=lambda item: -SLOW_FILES.get(item.path.stem, 0))  # stable: tests keep their order
    for item in items:
        cls = getattr(item, "cls", None)
        if cls is not None and "odoo" in sys.modules:
            if "test_module" not in cls.__dict__:
                cls.test_module = "smtp_invoicing"
            if "test_tags" not in cls.__dict__:
                cls.test_tags = {"standard", "post_install"}
