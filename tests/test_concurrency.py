"""Concurrent verification workers on real, separately committed cursors."""

import os
import threading
import time

import psycopg2

import odoo
from odoo import SUPERUSER_ID, api
from odoo.tools import mute_logger

from conftest import DB_NAME
from smtp_servers import Pki, SmtpServer

LOGIN, PASSWORD = "concurrency@invoicing.test", "concurrent-s3cret"


class _Committed:
    """A licensed user and own mailboxes committed for real, removed afterwards."""

    def __init__(self, servers, pki):
        self.registry = odoo.modules.registry.Registry(DB_NAME)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            company = env.ref("base.main_company")
            user = env["res.users"].create(
                {
                    "name": "Concurrency",
                    "login": LOGIN,
                    "email": LOGIN,
                    "company_id": company.id,
                    "company_ids": [(6, 0, company.ids)],
                    "groups_id": [(6, 0, env.ref("base.group_user").ids)],
                }
            )
            mailboxes = env["ir.mail_server"].create(
                [
                    {
                        "name": f"Concurrent {index}",
                        "smtp_invoicing_mailbox": True,
                        "sender_name": "ACME",
                        "sender_email": LOGIN,
                        "smtp_user": LOGIN,
                        "smtp_pass": PASSWORD,
                        "smtp_host": server.host,
                        "smtp_port": server.port,
                        "smtp_encryption": "starttls",
                        "smtp_authentication": "login",
                        "smtp_invoicing_ca_cert": pki.ca_pem,
                        "smtp_invoicing_company_id": company.id,
                    }
                    for index, server in enumerate(servers)
                ]
            )
            mailboxes.action_verify()
            self.user_id, self.mailbox_ids = user.id, mailboxes.ids

    def states(self):
        with self.registry.cursor() as cr:
            cr.execute("SELECT id, verification_state FROM ir_mail_server WHERE id IN %s", [tuple(self.mailbox_ids)])
            return dict(cr.fetchall())

    def run_cron(self, errors, ready=None):
        try:
            with self.registry.cursor() as cr:
                if ready is not None:
                    cr.execute("SELECT pg_backend_pid()")
                    ready.append(cr.fetchone()[0])
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["ir.mail_server"]._cron_verify_mail_servers()
        except Exception as error:
            errors.append(error)

    def cleanup(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["ir.mail_server"].browse(self.mailbox_ids).unlink()
            env["res.users"].browse(self.user_id).unlink()


def test_two_workers_never_verify_the_same_mailbox_twice():
    """Two workers running the verification at once: every mailbox verified exactly once (SKIP LOCKED)."""
    with Pki() as pki:
        servers = [
            SmtpServer(mode="starttls", cert=pki.leaf(), users={LOGIN: PASSWORD}, mail_from_delay=0.4)
            for _index in range(4)
        ]
        for server in servers:
            server.start()
        data = _Committed(servers, pki)
        try:
            errors = []
            workers = [threading.Thread(target=data.run_cron, args=(errors,)) for _index in range(2)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(60)
            assert not errors, errors
            assert set(data.states().values()) == {"verified"}
            assert [server.connections for server in servers] == [1, 1, 1, 1]
            assert [len(server.auth_attempts) for server in servers] == [1, 1, 1, 1]
        finally:
            data.cleanup()
            for server in servers:
                server.stop()


def test_database_connection_lost_during_verification():
    """The run's own connection dies while checks are on the network: every result is still recorded."""
    with Pki() as pki:
        servers = [
            SmtpServer(mode="starttls", cert=pki.leaf(), users={LOGIN: PASSWORD}, mail_from_delay=1.0)
            for _index in range(2)
        ]
        for server in servers:
            server.start()
        data = _Committed(servers, pki)
        # outside Odoo's pool: it can never be the connection it terminates
        killer = psycopg2.connect(dbname=DB_NAME, host="127.0.0.1", user=os.environ.get("PGUSER", "root"))
        killer.autocommit = True
        try:
            errors, backend = [], []
            worker = threading.Thread(target=data.run_cron, args=(errors, backend))
            with mute_logger("odoo.sql_db"):
                worker.start()
                deadline = time.monotonic() + 30
                while not (backend and all(server.mail_from_commands for server in servers)):
                    assert time.monotonic() < deadline, "the checks never reached the servers"
                    time.sleep(0.02)
                with killer.cursor() as cr:
                    cr.execute("SELECT pg_terminate_backend(%s)", [backend[0]])
                    assert cr.fetchone() == (True,)
                worker.join(60)
            # the run could not close its own transaction...
            assert len(errors) == 1 and isinstance(errors[0], psycopg2.OperationalError), errors
            # ...but each check took its lease and recorded its result in short transactions of its own
            assert set(data.states().values()) == {"verified"}, data.states()
            second_run_errors = []
            data.run_cron(second_run_errors)
            assert not second_run_errors, second_run_errors
            assert [server.connections for server in servers] == [1, 1]
        finally:
            killer.close()
            data.cleanup()
            for server in servers:
                server.stop()
