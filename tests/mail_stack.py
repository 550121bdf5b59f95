"""A real Postfix + Dovecot mail system on 127.0.0.1 for tests (no Odoo imports).

``MailStack`` writes every configuration file into one temporary folder and starts its
own instances there (``postfix -c DIR``, ``dovecot -c FILE``); the machine's default
configuration and services are never used. It offers:

- Postfix submission on a STARTTLS port (TLS required before AUTH) and an implicit-TLS
  port, SASL through Dovecot, ``smtpd_sender_login_maps`` + ``reject_sender_login_mismatch``
  with the default ``smtpd_delay_reject`` (a sender the login does not own is refused at RCPT);
- local delivery of the mailbox domain to Dovecot over LMTP, readable over IMAP (implicit TLS
  and STARTTLS), with a special-use ``\\Sent`` folder;
- relay of the customer domain to a loopback "customer MX" (aiosmtpd) that refuses unknown
  recipients with 550 5.1.1, so that Postfix itself writes the real DSN back to the sender.

Requires root (Postfix and Dovecot drop privileges to their own users) and the Debian
packages installed by ``scripts/bootstrap.sh`` (postfix, dovecot-core/imapd/lmtpd).
"""

import contextlib
import email
import email.policy
import grp
import imaplib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from aiosmtpd.controller import Controller

from smtp_servers import HOST, KNOWN_SECRETS

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
# Mail is stored under an unprivileged uid: Dovecot refuses root for mail processes.
MAIL_USER, MAIL_GROUP = "nobody", "nogroup"
UNKNOWN_USER = "550 5.1.1 <%s>: Recipient address rejected: User unknown"
TRY_LATER = "451 4.2.0 <%s>: Recipient address rejected: Mailbox temporarily unavailable"


class MailStackError(RuntimeError):
    """The stack could not start, or a wait ran out; the message carries the logs' tail."""


def wait_until(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Poll ``predicate`` until it returns a true value (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("%s not met within %.1f s" % (what, timeout))
        time.sleep(interval)


def _free_ports(count):
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_open(port, host=HOST):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _children():
    """{ppid: [pid, ...]} of every process on the machine."""
    tree = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                stat = handle.read()
        except OSError:
            continue
        # the command name (2nd field) may contain spaces and parentheses
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid):
    """``pid`` and all its living descendants."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, ()))
    return [p for p in found if pid_alive(p)]


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --------------------------------------------------------------------------- customer MX


class _CustomerHandler:
    def __init__(self, owner):
        self._owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        lowered = address.lower()
        if lowered in self._owner.known:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        if lowered in self._owner.tempfail:
            return TRY_LATER % address
        return UNKNOWN_USER % address

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        with self._owner.lock:
            self._owner.messages.append((envelope.mail_from, list(envelope.rcpt_tos), content))
        return "250 2.0.0 OK queued"


class _CustomerController(Controller):
    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class CustomerMx:
    """Plain SMTP on 127.0.0.1 for the customer domain: 250 for ``known`` recipients,
    451 for ``tempfail`` ones, ``550 5.1.1 ... User unknown`` for anybody else.
    ``messages`` holds (mail_from, rcpt_tos, content) of what it accepted."""

    def __init__(self, known=(), tempfail=(), hostname="mx.customer.test"):
        self.known = {address.lower() for address in known}
        self.tempfail = {address.lower() for address in tempfail}
        self.messages, self.lock, self.port = [], threading.Lock(), None
        self._controller = _CustomerController(
            _CustomerHandler(self), hostname=HOST, port=0, server_hostname=hostname, ready_timeout=10.0
        )

    def start(self):
        self._controller.start()
        self.port = self._controller.port
        return self

    def wait_for_messages(self, count, timeout=20.0):
        """Wait (polling, bounded) until at least ``count`` messages were accepted; returns them."""

        def received():
            with self.lock:
                return list(self.messages) if len(self.messages) >= count else None

        return wait_until(received, timeout, what="%d message(s) at the customer MX" % count)

    def stop(self):
        if self.port is not None:
            self._controller.stop(no_assert=True)
            self.port = None


# --------------------------------------------------------------------------- configuration

_MASTER_CF = """\
{host}:{submission} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
{host}:{smtps} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
lmtp       unix  - - n -  - lmtp
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/postfix/queue
data_directory = {dir}/postfix/data
maillog_file = {dir}/postfix/postfix.log
maillog_file_prefixes = {dir}
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
mydomain = {domain}
myorigin = $mydomain
mydestination =
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = {host}/32
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
biff = no
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtp_connect_timeout = 5s

# the mailbox domain goes to Dovecot over LMTP
virtual_mailbox_domains = {domain}
virtual_mailbox_maps = texthash:{dir}/postfix/virtual_mailboxes
virtual_transport = lmtp:unix:{dir}/dovecot/run/lmtp
# the customer domain goes to the loopback customer MX
relay_domains = {customer_domain}
transport_maps = texthash:{dir}/postfix/transport

# submission: TLS before AUTH, SASL through Dovecot, each login owns its address
smtpd_tls_cert_file = {dir}/tls/cert.pem
smtpd_tls_key_file = {dir}/tls/key.pem
smtpd_tls_security_level = may
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_sasl_type = dovecot
smtpd_sasl_path = {dir}/dovecot/run/auth-postfix
smtpd_sasl_auth_enable = no
smtpd_sender_login_maps = texthash:{dir}/postfix/sender_logins
smtpd_delay_reject = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_sender_restrictions = reject_sender_login_mismatch
smtpd_recipient_restrictions = reject_sender_login_mismatch, permit_sasl_authenticated, reject

# seconds, not hours: retries and delay warnings within a test's lifetime
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = {delay_warning}
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
"""

_DOVECOT_CONF = """\
instance_name = {instance}
hostname = {hostname}
base_dir = {dir}/dovecot/run
state_dir = {dir}/dovecot/state
log_path = {dir}/dovecot/dovecot.log
protocols = imap lmtp
listen = {host}
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir
first_valid_uid = 1
# test mail only: no fsync per message (a 10,000-message APPEND takes seconds, not half a minute)
mail_fsync = never
# TLS before any authentication; note that Dovecot counts a client connecting from its own
# address (127.0.0.1 to 127.0.0.1) as secure: tests of that rule connect from 127.0.0.2
ssl = required
ssl_cert = <{dir}/tls/cert.pem
ssl_key = <{dir}/tls/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
# a wrong password is answered at once: tests need no 2 s penalty
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/dovecot/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {dir}/dovecot/users
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0600
    user = postfix
    group = postfix
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0600
    user = postfix
    group = postfix
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{domain}
}}
"""


class MailStack:
    """Postfix + Dovecot + a customer MX on 127.0.0.1, from a temporary folder (context manager).

    ``users``: {login: password}; logins are addresses of ``domain`` and each owns its own
    address (``sender_logins`` may add {login: [other addresses]}). ``customers``: the
    addresses of ``customer_domain`` its MX accepts; ``tempfail_customers`` get 451.
    Attributes once started: ``host``, ``submission_port`` (STARTTLS), ``smtps_port``
    (implicit TLS), ``imap_port`` (STARTTLS), ``imaps_port`` (implicit TLS), ``ca_pem``,
    ``customer_mx`` (a :class:`CustomerMx`), ``directory``.
    """

    def __init__(
        self,
        pki,
        users,
        domain="invoicing.test",
        customer_domain="customer.test",
        customers=(),
        tempfail_customers=(),
        sender_logins=None,
        hostname=None,
        delay_warning="1s",
        start_timeout=20.0,
    ):
        self.pki, self.users = pki, dict(users)
        KNOWN_SECRETS.update(self.users.values())
        self.domain, self.customer_domain = domain, customer_domain
        self.hostname = hostname or "mail." + domain
        self.sender_logins = {login: [login, *(sender_logins or {}).get(login, ())] for login in self.users}
        self.delay_warning, self.start_timeout = delay_warning, start_timeout
        self.customer_mx = CustomerMx(customers, tempfail_customers)
        self.host, self.ca_pem = HOST, pki.ca_pem
        self.directory = None
        self.submission_port = self.smtps_port = self.imap_port = self.imaps_port = None
        self.postfix_pid = self.dovecot_pid = None
        self._pids = set()

    # paths ---------------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.directory, *parts)

    @property
    def postfix_dir(self):
        return self.path("postfix", "conf")

    @property
    def dovecot_conf(self):
        return self.path("dovecot", "dovecot.conf")

    def home(self, login):
        return self.path("mail", login)

    def log_tail(self, lines=40):
        """The last lines of Postfix's and Dovecot's logs, for failure messages."""
        text = []
        for name in ("startup.log", "postfix/postfix.log", "dovecot/dovecot.log"):
            try:
                with open(self.path(name), errors="replace") as handle:
                    text.append("==> %s <==\n%s" % (name, "".join(handle.readlines()[-lines:])))
            except OSError:
                continue
        return "\n".join(text)

    # lifecycle -----------------------------------------------------------------
    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        self.directory = tempfile.mkdtemp(prefix="mailstack-")
        # Postfix and Dovecot run their processes under their own users: they must traverse it.
        os.chmod(self.directory, 0o755)
        self.customer_mx.start()
        self.submission_port, self.smtps_port, self.imap_port, self.imaps_port = _free_ports(4)
        self._write_tls()
        self._write_dovecot()
        self._write_postfix()
        self._run([DOVECOT, "-c", self.dovecot_conf])
        self.dovecot_pid = wait_until(
            lambda: _read_pid(self.path("dovecot", "run", "master.pid")), self.start_timeout, what="dovecot pid"
        )
        self._run([POSTFIX, "-c", self.postfix_dir, "start"])
        self.postfix_pid = wait_until(
            lambda: _read_pid(self.path("postfix", "queue", "pid", "master.pid")), self.start_timeout, what="postfix"
        )
        for port in (self.submission_port, self.smtps_port, self.imap_port, self.imaps_port):
            try:
                wait_until(lambda port=port: port_is_open(port), self.start_timeout, what="port %d" % port)
            except TimeoutError as exc:
                raise MailStackError("%s\n%s" % (exc, self.log_tail())) from exc
        wait_until(lambda: os.path.exists(self.path("dovecot", "run", "lmtp")), self.start_timeout, what="lmtp")

    def _run(self, args):
        # Output to a file, not a pipe: the daemons inherit it and would keep a pipe open.
        with open(self.path("startup.log"), "a+") as output:
            start = output.tell()
            returncode = subprocess.call(
                args, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, timeout=self.start_timeout
            )
            output.seek(start)
            text = output.read()
        if returncode:
            if args[0] == POSTFIX:  # postfix writes its fatal errors to stderr only on a terminal
                text += self._postfix_check()
            raise MailStackError("%s failed (%s): %s\n%s" % (args, returncode, text, self.log_tail()))

    def _postfix_check(self):
        command = "%s -c %s check" % (POSTFIX, self.postfix_dir)
        result = subprocess.run(
            ["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=20, check=False
        )
        return result.stdout

    def _write(self, relative, text, mode=0o644):
        path = self.path(relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, mode)
        return path

    def _write_tls(self):
        cert, key = self.pki.leaf(hosts=(HOST, "localhost", self.hostname))
        os.makedirs(self.path("tls"))
        shutil.copyfile(cert, self.path("tls", "cert.pem"))
        shutil.copyfile(key, self.path("tls", "key.pem"))
        os.chmod(self.path("tls", "key.pem"), 0o600)

    def _write_dovecot(self):
        uid, gid = pwd.getpwnam(MAIL_USER).pw_uid, grp.getgrnam(MAIL_GROUP).gr_gid
        os.makedirs(self.path("mail"))
        lines = []
        for login, password in self.users.items():
            if ":" in login or ":" in password or "\n" in login + password:
                raise ValueError("logins and passwords of the mail stack must not contain ':' or newlines")
            os.makedirs(self.home(login))
            os.chown(self.home(login), uid, gid)
            os.chmod(self.home(login), 0o700)
            lines.append("%s:{PLAIN}%s:%d:%d::%s::\n" % (login, password, uid, gid, self.home(login)))
        # readable by Dovecot's auth process only, which runs as its internal user
        users = self._write("dovecot/users", "".join(lines), 0o600)
        os.chown(users, pwd.getpwnam("dovecot").pw_uid, grp.getgrnam("dovecot").gr_gid)
        instance = "mailstack-%s" % os.path.basename(self.directory)
        values = {"dir": self.directory, "host": HOST, "imap": self.imap_port, "imaps": self.imaps_port}
        self._write(
            "dovecot/dovecot.conf",
            _DOVECOT_CONF.format(instance=instance, domain=self.domain, hostname=self.hostname, **values),
        )

    def _write_postfix(self):
        values = {
            "dir": self.directory,
            "host": HOST,
            "hostname": self.hostname,
            "domain": self.domain,
            "customer_domain": self.customer_domain,
            "delay_warning": self.delay_warning,
        }
        self._write("postfix/conf/main.cf", _MAIN_CF.format(**values))
        self._write(
            "postfix/conf/master.cf",
            _MASTER_CF.format(host=HOST, submission=self.submission_port, smtps=self.smtps_port),
        )
        self._write("postfix/virtual_mailboxes", "".join("%s OK\n" % login for login in self.users))
        self._write(
            "postfix/sender_logins",
            "".join("%s %s\n" % (login, ", ".join(owners)) for login, owners in self._owners().items()),
        )
        self._write("postfix/transport", "%s smtp:[%s]:%d\n" % (self.customer_domain, HOST, self.customer_mx.port))
        for sub in ("queue", "data"):
            os.makedirs(self.path("postfix", sub))
        os.chown(self.path("postfix", "data"), pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postfix").gr_gid)

    def _owners(self):
        """{sender address: [logins allowed to use it]} for smtpd_sender_login_maps."""
        owners = {}
        for login, addresses in self.sender_logins.items():
            for address in addresses:
                owners.setdefault(address, []).append(login)
        return owners

    def processes(self):
        """Pids of every living process of this stack (both masters and their children)."""
        if self.directory:  # also when a start failed before the pids were read
            self.dovecot_pid = self.dovecot_pid or _read_pid(self.path("dovecot", "run", "master.pid"))
            self.postfix_pid = self.postfix_pid or _read_pid(self.path("postfix", "queue", "pid", "master.pid"))
        pids = set()
        for pid in (self.postfix_pid, self.dovecot_pid):
            if pid:
                pids.update(descendants(pid))
        self._pids |= pids
        return pids

    def stop(self):
        """Stop both servers and the customer MX, kill any straggler, delete the folder."""
        self.processes()  # remember every child now: they are orphaned once a master exits
        try:
            if self.postfix_pid and pid_alive(self.postfix_pid):
                subprocess.run([POSTFIX, "-c", self.postfix_dir, "stop"], capture_output=True, timeout=20, check=False)
            if self.dovecot_pid and pid_alive(self.dovecot_pid):
                os.kill(self.dovecot_pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: not any(pid_alive(pid) for pid in self._pids), 10.0, what="mail stack exit")
            for pid in self._pids:
                if pid_alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        finally:
            self.customer_mx.stop()
            if self.directory:
                shutil.rmtree(self.directory, ignore_errors=True)
            self.postfix_pid = self.dovecot_pid = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # observation -----------------------------------------------------------------
    def doveadm(self, *args, binary=False):
        """Run ``doveadm -c <this stack's config> ARGS`` and return its standard output."""
        result = subprocess.run([DOVEADM, "-c", self.dovecot_conf, *args], capture_output=True, timeout=20, check=False)
        if result.returncode:
            raise MailStackError("doveadm %s failed: %r %r" % (" ".join(args), result.stdout, result.stderr))
        return result.stdout if binary else result.stdout.decode("utf-8", "replace")

    def message_count(self, login, mailbox="INBOX"):
        output = self.doveadm("mailbox", "status", "-u", login, "messages", mailbox)
        return int(output.split("=", 1)[1])

    def wait_for_messages(self, login, count, mailbox="INBOX", timeout=30.0):
        """Wait (polling, bounded) until ``mailbox`` of ``login`` holds at least ``count`` messages."""
        try:
            return wait_until(
                lambda: self.message_count(login, mailbox) >= count and self.message_count(login, mailbox),
                timeout,
                interval=0.1,
                what="%d message(s) in %s of %s" % (count, mailbox, login),
            )
        except TimeoutError as exc:
            raise MailStackError("%s\n%s" % (exc, self.log_tail())) from exc

    def flags(self, login, mailbox="INBOX"):
        """{uid: set of flags} as Dovecot itself records them (not through an IMAP session)."""
        output = self.doveadm("-f", "tab", "fetch", "-u", login, "uid flags", "mailbox", mailbox, "all")
        result = {}
        for line in output.splitlines()[1:]:
            uid, _sep, flags = line.partition("\t")
            result[int(uid)] = set(flags.split())
        return result

    def raw_message(self, login, uid, mailbox="INBOX"):
        """The stored bytes of one message, read by doveadm (no IMAP session, flags untouched)."""
        output = self.doveadm(
            "-f", "pager", "fetch", "-u", login, "text", "mailbox", mailbox, "uid", str(uid), binary=True
        )
        # pager format: "text:\n<message>" plus an end-of-record form feed line when several
        body = output.split(b"\n", 1)[1] if output.startswith(b"text:") else output
        return body.split(b"\n\f\n", 1)[0]

    def messages(self, login, mailbox="INBOX"):
        """[(uid, email.message.EmailMessage)] of ``mailbox``, read by doveadm."""
        return [
            (uid, email.message_from_bytes(self.raw_message(login, uid, mailbox), policy=email.policy.default))
            for uid in sorted(self.flags(login, mailbox))
        ]

    def bulk_append(self, login, password, messages, mailbox="INBOX"):
        """Append ``messages`` (bytes, CRLF) to ``mailbox`` of ``login`` in one IMAP command.

        One MULTIAPPEND (RFC 3502) with non-synchronizing literals (LITERAL+, RFC 7888):
        a single round trip whatever the number of messages. Returns the server's answer.
        """
        session = imaplib.IMAP4_SSL(self.host, self.imaps_port, ssl_context=self.client_context(), timeout=120)
        try:
            session.login(login, password)
            command = [b"BULK1 APPEND " + mailbox.encode()]
            command += [b" {%d+}\r\n%s" % (len(message), message) for message in messages]
            session.send(b"".join(command) + b"\r\n")
            while True:
                line = session.readline()
                if line.startswith(b"BULK1 "):
                    break
                if not line:
                    raise MailStackError("connection closed during the bulk APPEND")
            if not line.startswith(b"BULK1 OK"):
                raise MailStackError("bulk APPEND refused: %r" % line)
            return line
        finally:
            session.logout()

    def queue_is_empty(self):
        result = subprocess.run(
            ["/usr/sbin/postqueue", "-c", self.postfix_dir, "-j"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        return result.returncode == 0 and not result.stdout.strip()

    def client_context(self):
        """A verifying client SSLContext trusting this stack's CA (TLS >= 1.2)."""
        context = ssl.create_default_context(cadata=self.ca_pem)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context
