"""smtp_invoicing/lib/smtp.py against real SMTP servers on 127.0.0.1 (pure, no Odoo)."""

import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from pure_lib import LIB_DIR, lib

from smtp_servers import DripServer, Pki, SilentListener, SlowGreetingServer, SmtpServer, closed_port

smtp = lib("smtp")
tls = lib("tls")

USER, PASSWORD, SENDER = "billing@example.com", "s3cr3t-Pässwörd", "billing@example.com"
GMAIL_534 = (
    534,
    "5.7.9 Application-specific password required. Learn more at "
    "https://support.google.com/mail/?p=InvalidSecondFactor",
)
OUTLOOK_535 = (535, "5.7.139 Authentication unsuccessful, basic authentication is disabled")
NOT_OWNED = (553, "5.7.1 Sender address rejected: not owned by user")
SEND_AS = (550, "5.7.60 SMTP; Client does not have permissions to send as this sender")


@pytest.fixture(scope="module")
def pki():
    with Pki() as value:
        yield value


def server(pki, mode="starttls", cert=None, **options):
    return SmtpServer(mode=mode, cert=cert or pki.leaf(), users={USER: PASSWORD}, **options)


def check(srv, pki, protocol=None, password=PASSWORD, ca_pem=True, **options):
    """verify() against ``srv``; returns the SmtpCheckError or None."""
    try:
        smtp.verify(
            srv.host,
            srv.port,
            protocol or srv.mode,
            USER,
            password,
            SENDER,
            ca_pem=pki.ca_pem if ca_pem else None,
            **options,
        )
    except smtp.SmtpCheckError as error:
        return error
    return None


def test_starttls_verify_succeeds_without_sending(pki):
    """STARTTLS + one AUTH + MAIL FROM and RCPT TO the sender, then RSET/QUIT: succeeds and sends no message."""
    with server(pki) as srv:
        assert check(srv, pki) is None
    assert srv.commands == ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "RSET", "QUIT"]
    assert srv.auth_attempts == [("PLAIN", USER, PASSWORD)]
    assert srv.mail_from_commands == [SENDER]
    assert srv.messages == [] and srv.connections == 1


def test_implicit_tls_verify_succeeds(pki):
    """Implicit TLS (SMTPS) verifies with one AUTH and no message."""
    with server(pki, mode="ssl") as srv:
        assert check(srv, pki) is None
    assert srv.commands == ["EHLO", "AUTH", "MAIL", "RCPT", "RSET", "QUIT"]
    assert len(srv.auth_attempts) == 1 and srv.messages == []


def test_open_session_returns_authenticated_connection(pki):
    """open_session() returns a usable authenticated connection that can send."""
    with server(pki) as srv:
        connection = smtp.open_session(srv.host, srv.port, "starttls", USER, PASSWORD, ca_pem=pki.ca_pem)
        try:
            connection.sendmail(SENDER, ["to@example.com"], b"Subject: hi\r\n\r\nbody\r\n")
        finally:
            connection.quit()
    assert [m.mail_from for m in srv.messages] == [SENDER]
    assert srv.messages[0].message["Subject"] == "hi"


def test_wrong_password_is_auth_failed_after_one_attempt(pki):
    """A rejected password gives auth_failed after exactly one AUTH attempt."""
    with server(pki) as srv:
        error = check(srv, pki, password="wrong")
    assert (error.reason, error.smtp_code) == ("auth_failed", 535)
    assert "5.7.8" in error.detail
    assert len(srv.auth_attempts) == 1 and srv.mail_from_commands == []


def test_gmail_534_is_app_password_required(pki):
    """Gmail's 534 5.7.9 maps to app_password_required."""
    with server(pki, auth_reply=GMAIL_534) as srv:
        error = check(srv, pki)
    assert (error.reason, error.smtp_code) == ("app_password_required", 534)
    assert len(srv.auth_attempts) == 1


def test_outlook_535_5_7_139_is_basic_auth_disabled(pki):
    """Outlook's 535 5.7.139 maps to basic_auth_disabled."""
    with server(pki, auth_reply=OUTLOOK_535) as srv:
        error = check(srv, pki)
    assert (error.reason, error.smtp_code) == ("basic_auth_disabled", 535)


def test_mail_from_553_is_sender_refused(pki):
    """MAIL FROM answered 553 maps to sender_refused and sends nothing."""
    with server(pki, mail_from_reply=NOT_OWNED) as srv:
        error = check(srv, pki)
    assert (error.reason, error.smtp_code) == ("sender_refused", 553)
    assert "not owned" in error.detail and srv.messages == []


def test_mail_from_550_5_7_60_is_send_as_denied(pki):
    """MAIL FROM answered 550 5.7.60 maps to send_as_denied."""
    with server(pki, mail_from_reply=SEND_AS) as srv:
        error = check(srv, pki)
    assert (error.reason, error.smtp_code) == ("send_as_denied", 550)


def test_self_signed_certificate_is_untrusted(pki):
    """A self-signed certificate (CA not supplied) is untrusted_certificate, before any AUTH."""
    with server(pki, cert=pki.self_signed()) as srv:
        error = check(srv, pki, ca_pem=False)
    assert error.reason == "untrusted_certificate"
    assert srv.auth_attempts == []


def test_expired_certificate_is_untrusted(pki):
    """An expired certificate is untrusted_certificate even with its CA supplied."""
    with server(pki, cert=pki.expired()) as srv:
        error = check(srv, pki)
    assert error.reason == "untrusted_certificate"
    assert "expired" in error.detail


def test_certificate_for_other_host_is_hostname_mismatch(pki):
    """A trusted certificate for another host name is hostname_mismatch."""
    with server(pki, mode="ssl", cert=pki.wrong_host()) as srv:
        error = check(srv, pki)
    assert error.reason == "hostname_mismatch"
    assert srv.auth_attempts == []


def test_plain_server_offering_auth_gets_no_credentials(pki):
    """A server without STARTTLS gets no_starttls and never receives credentials."""
    with SmtpServer(mode="plain", users={USER: PASSWORD}, advertise_auth_without_tls=True) as srv:
        error = check(srv, pki, protocol="starttls")
    assert error.reason == "no_starttls"
    assert srv.auth_attempts == [] and "AUTH" not in srv.commands


def test_ssl_on_starttls_port_expects_starttls(pki):
    """SSL spoken to a STARTTLS port (587: a clear-text greeting meets the TLS handshake) says the port
    expects STARTTLS; no credentials sent."""
    with server(pki) as srv:
        error = check(srv, pki, protocol="ssl", timeout=20, deadline=60)
    assert error.reason == "expects_starttls", error
    assert srv.auth_attempts == []


def test_starttls_on_implicit_tls_port_expects_ssl_before_the_timeout(pki):
    """STARTTLS spoken to an implicit-TLS port (465: silent until a ClientHello) says the port expects SSL,
    long before its 20-second timeout would have said "did not answer in time"; no credentials sent."""
    with server(pki, mode="ssl") as srv:
        error = check(srv, pki, protocol="starttls", timeout=20, deadline=60)
    assert error.reason == "expects_ssl", error
    assert srv.auth_attempts == [] and srv.messages == []


def test_server_slow_to_greet_is_not_taken_for_an_implicit_tls_port():
    """A STARTTLS server greeting after the probe's silence (1 s of a 2 s timeout) is still talked to: the TLS
    probe meets clear text, and the check goes on to EHLO (here: no STARTTLS offered), no protocol hint."""
    with SlowGreetingServer(delay=1.5) as slow, pytest.raises(smtp.SmtpCheckError) as caught:
        smtp.verify("127.0.0.1", slow.port, "starttls", USER, PASSWORD, SENDER, timeout=2, deadline=10)
    assert caught.value.reason == "no_starttls", caught.value


def test_closed_port_is_refused():
    """Nothing listening on the port gives refused."""
    with pytest.raises(smtp.SmtpCheckError) as caught:
        smtp.verify("127.0.0.1", closed_port(), "starttls", USER, PASSWORD, SENDER, timeout=2, deadline=3)
    assert caught.value.reason == "refused"


def test_unresolvable_host_is_dns():
    """A host name that cannot resolve gives dns."""
    with pytest.raises(smtp.SmtpCheckError) as caught:
        smtp.verify("nonexistent.invalid", 587, "starttls", USER, PASSWORD, SENDER, timeout=2, deadline=3)
    assert caught.value.reason == "dns"


def _gaierror(host, flags=0):
    try:
        socket.getaddrinfo(host, 587, flags=flags)
    except socket.gaierror as error:
        return error
    raise AssertionError(host)


def test_dns_reason_tells_a_resolver_down_from_a_name_that_does_not_exist():
    """EAI_AGAIN/EAI_FAIL, or a provider's own host not found, is dns_unavailable (temporary); other names are dns."""
    # a real EAI_NONAME, without asking any resolver
    not_found = _gaierror("smtp.gmail.com", flags=socket.AI_NUMERICHOST)
    assert not_found.errno == socket.EAI_NONAME
    assert tls.dns_reason(not_found, "smtp.gmial.com") == "dns"
    assert tls.dns_reason(not_found, "SMTP.Gmail.com.") == "dns_unavailable"
    assert tls.dns_reason(not_found, "outlook.office365.com") == "dns_unavailable"
    for code in (socket.EAI_AGAIN, socket.EAI_FAIL):
        assert tls.dns_reason(socket.gaierror(code, "resolver"), "mail.acme-billing.fr") == "dns_unavailable"
    assert smtp.is_temporary("dns_unavailable") and not smtp.is_temporary("dns")


_RESOLVER_PROBE = """
import importlib, importlib.util, os, sys
spec = importlib.util.spec_from_file_location(
    "smtp_lib", os.path.join(sys.argv[1], "__init__.py"), submodule_search_locations=[sys.argv[1]]
)
sys.modules["smtp_lib"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sys.modules["smtp_lib"])
smtp = importlib.import_module("smtp_lib.smtp")
try:
    smtp.verify(sys.argv[2], 587, "starttls", "u@acme.fr", "pw", "u@acme.fr", timeout=5, deadline=10)
except smtp.SmtpCheckError as error:
    print("REASON", error.reason)
"""


def _verify_with_system_file(tmp_path, path, content, host):
    """smtp.verify(host) in a child process that sees ``content`` as ``path`` (its own mount namespace):
    the real getaddrinfo() with a resolver configuration of the test's choosing, /etc left untouched."""
    replacement = tmp_path / os.path.basename(path)
    replacement.write_text(content)
    command = ["unshare", "--map-root-user", "--mount", "sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"']
    command += ["sh", str(replacement), path, sys.executable, "-c", _RESOLVER_PROBE, LIB_DIR, host]
    if subprocess.run(["unshare", "--map-root-user", "--mount", "true"], capture_output=True).returncode:
        pytest.skip("needs unprivileged user and mount namespaces (unshare)")
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    reasons = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("REASON ")]
    assert reasons, done.stdout + done.stderr
    return reasons[0]


def test_no_dns_reachable_is_dns_unavailable_end_to_end(tmp_path):
    """Real getaddrinfo: a nameserver that does not answer (EAI_AGAIN) and a machine without DNS looking up
    Gmail's host (EAI_NONAME) are dns_unavailable; nothing leaves loopback."""
    dead_nameserver = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
    assert _verify_with_system_file(tmp_path, "/etc/resolv.conf", dead_nameserver, "mail.acme-billing.fr") == (
        "dns_unavailable"
    )
    files_only = "hosts: files\n"
    assert _verify_with_system_file(tmp_path, "/etc/nsswitch.conf", files_only, "smtp.gmail.com") == "dns_unavailable"
    assert _verify_with_system_file(tmp_path, "/etc/nsswitch.conf", files_only, "smtp.gmial.com") == "dns"


def test_silent_server_times_out():
    """A server that never greets, nor speaks TLS, gives timeout after the socket timeout (and the implicit-TLS
    probe: two half-timeouts); it is not taken for an implicit-TLS port."""
    with SilentListener() as listener:
        started = time.monotonic()
        with pytest.raises(smtp.SmtpCheckError) as caught:
            smtp.verify("127.0.0.1", listener.port, "starttls", USER, PASSWORD, SENDER, timeout=1, deadline=5)
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 3


def test_drip_server_is_cut_at_deadline():
    """A server dripping one byte at a time is cut off by the overall deadline: timeout."""
    # a byte every 0.1 s: the 1 s wait for each byte never runs out, even on a loaded machine; the deadline does
    with DripServer(interval=0.1) as drip:
        started = time.monotonic()
        with pytest.raises(smtp.SmtpCheckError) as caught:
            smtp.verify("127.0.0.1", drip.port, "starttls", USER, PASSWORD, SENDER, timeout=1, deadline=2)
        elapsed = time.monotonic() - started
    assert caught.value.reason == "timeout"
    assert 1.9 < elapsed < 4


def test_open_session_deadline_applies_too():
    """open_session() alone is also bounded by its deadline."""
    with DripServer() as drip:
        started = time.monotonic()
        with pytest.raises(smtp.SmtpCheckError) as caught:
            smtp.open_session("127.0.0.1", drip.port, "starttls", USER, PASSWORD, timeout=1, deadline=1.5)
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 3


def test_checks_in_flight_share_one_deadline_thread():
    """Ten checks waiting on silent servers run in ten threads: their deadlines start no thread of their own."""
    with SilentListener() as listener, smtp.check_pool(10) as pool:
        before = threading.active_count()
        checks = [
            pool.submit(smtp.verify, "127.0.0.1", listener.port, "starttls", USER, PASSWORD, SENDER, timeout=1)
            for _ in range(10)
        ]
        time.sleep(0.5)
        during = threading.active_count()
        reasons = [caught.reason for caught in (check.exception() for check in checks)]
    assert reasons == ["timeout"] * 10
    # the ten pool threads, and at most the deadline watcher if this process had none yet
    assert during - before <= 11


_STACK_PROBE = """
import importlib, importlib.util, os, resource, sys, threading
from concurrent import futures
spec = importlib.util.spec_from_file_location(
    "smtp_lib", os.path.join(sys.argv[1], "__init__.py"), submodule_search_locations=[sys.argv[1]]
)
sys.modules["smtp_lib"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sys.modules["smtp_lib"])
smtp = importlib.import_module("smtp_lib.smtp")
with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
# as Odoo's limit_memory_hard does, with room for 256 threads of 2 MB, not of 8 MB
resource.setrlimit(resource.RLIMIT_AS, (size + 1024 * 1024 * 1024, resource.RLIM_INFINITY))
for name, pool in (("check_pool", smtp.check_pool(256)), ("default", futures.ThreadPoolExecutor(256))):
    barrier = threading.Barrier(256, timeout=30)
    try:
        for waited in [pool.submit(barrier.wait) for _ in range(256)]:
            waited.result()
        print(name, "started 256 threads")
    except RuntimeError as error:
        barrier.abort()
        print(name, "failed:", error)
    pool.shutdown()
print("stack size after:", threading.stack_size())
"""


def test_check_threads_fit_in_odoo_memory_limit():
    """256 checks start their threads within 1 GB of address space (Odoo's limit_memory_hard); 8 MB stacks do not."""
    env = dict(os.environ, MALLOC_ARENA_MAX="2")  # arenas reserve 64 MB each, more on more cores
    result = subprocess.run(
        [sys.executable, "-c", _STACK_PROBE, LIB_DIR], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "check_pool started 256 threads", result.stdout + result.stderr
    assert lines[1].startswith("default failed: can't start new thread"), result.stdout + result.stderr
    assert lines[2] == "stack size after: 0"


def test_password_never_logged_nor_in_errors(pki, caplog):
    """The password appears in no log record (DEBUG) and in no error text."""
    caplog.set_level(logging.DEBUG)
    errors = []
    with server(pki) as srv:
        errors.append(check(srv, pki, password=PASSWORD + "x"))
        assert check(srv, pki) is None
    with server(pki, auth_reply=GMAIL_534) as srv:
        errors.append(check(srv, pki))
    with server(pki, cert=pki.self_signed()) as srv:
        errors.append(check(srv, pki, ca_pem=False))
    assert all(errors) and caplog.records
    for error in errors:
        assert PASSWORD not in str(error) and PASSWORD not in error.detail
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()


def test_single_login_picks_one_mechanism_and_sends_once(pki):
    """single_login() makes one AUTH with the preferred mechanism (PLAIN over LOGIN)."""
    with server(pki) as srv:
        session = smtp.open_session(srv.host, srv.port, "starttls", USER, PASSWORD, ca_pem=pki.ca_pem)
        session.quit()
    assert [attempt[0] for attempt in srv.auth_attempts] == ["PLAIN"]


def test_single_login_login_mechanism(pki):
    """With only LOGIN advertised, single_login() authenticates via LOGIN in one exchange."""
    import smtplib

    with server(pki) as srv:
        connection = smtplib.SMTP(srv.host, srv.port, timeout=5)
        try:
            connection.starttls(context=tls.make_ssl_context(pki.ca_pem))
            connection.ehlo()
            connection.esmtp_features["auth"] = "LOGIN"
            smtp.single_login(connection, USER, PASSWORD)
            connection.esmtp_features["auth"] = "XOAUTH2"
            with pytest.raises(smtp.SmtpCheckError) as caught:
                smtp.single_login(connection, USER, PASSWORD)
        finally:
            connection.close()
    assert srv.auth_attempts == [("LOGIN", USER, PASSWORD)]
    assert caught.value.reason == "no_auth"


def test_make_ssl_context_is_strict(pki):
    """The TLS context verifies chain and host name and refuses TLS < 1.2."""
    import ssl

    context = tls.make_ssl_context(pki.ca_pem)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ValueError):
        tls.make_ssl_context("not a certificate")


def test_checks_starting_together_build_one_tls_context(pki):
    """Checks that start at the same moment with a CA not yet cached share one TLS context: the
    system's trusted certificates (about 20 ms each time) are loaded once, not in every thread."""
    tls._cached_ssl_context.cache_clear()
    start = threading.Barrier(20)
    contexts = []

    def check():
        start.wait()
        contexts.append(tls.shared_ssl_context(pki.ca_pem))

    threads = [threading.Thread(target=check) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(contexts) == 20
    assert len({id(context) for context in contexts}) == 1
