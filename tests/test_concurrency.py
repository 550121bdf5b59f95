"""Concurrent verification workers on real, separately committed cursors."""

import os
import threading
import time

import psycopg2

import odoo
from odoo import SUPERUSER_ID, api
from odoo.tools import mute_logger

from common import real_smtp
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
            mailboxes = env["smtp_invoicing.mailbox"].create(
                [
                    {
                        "name": f"Concurrent {index}",
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
            self.server_ids = mailboxes.mail_server_id.ids

    def states(self):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT id, verification_state FROM smtp_invoicing_mailbox WHERE id IN %s", [tuple(self.mailbox_ids)]
            )
            return dict(cr.fetchall())

    def run_cron(self, errors, ready=None):
        try:
            with self.registry.cursor() as cr:
                if ready is not None:
                    cr.execute("SELECT pg_backend_pid()")
                    ready.append(cr.fetchone()[0])
                env = api.Environment(cr, SUPERUSER_ID, {})
                env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        except Exception as error:
            errors.append(error)

    def cleanup(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["smtp_invoicing.mailbox"].browse(self.mailbox_ids).unlink()
            # a mailbox goes with its server
            assert not env["ir.mail_server"].browse(self.server_ids).exists()
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
                # MAIL is recorded as it arrives, before the server's 1 s delay: the checks are on the network
                while not (backend and all("MAIL" in server.commands for server in servers)):
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


def _committed_invoice(registry, mailbox_id):
    """A posted customer invoice whose template sends from ``mailbox_id``, committed; returns its id."""
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["ir.config_parameter"].set_param("smtp_invoicing.enabled", "True")
        mailbox = env["smtp_invoicing.mailbox"].browse(mailbox_id)
        env.ref("account.email_template_edi_invoice").mail_server_id = mailbox.mail_server_id
        partner = env["res.partner"].create({"name": "Concurrent customer", "email": "customer@client.test"})
        move = env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": partner.id,
                "invoice_line_ids": [(0, 0, {"name": "Consulting", "quantity": 1, "price_unit": 100.0})],
            }
        )
        move.action_post()
        return move.id


def _mark_verified(data):
    """The first mailbox of ``data`` is verified, committed (no verification run needed)."""
    with data.registry.cursor() as cr:
        cr.execute(
            "UPDATE smtp_invoicing_mailbox SET verification_state = 'verified' WHERE id = %s", [data.mailbox_ids[0]]
        )


def _delivery(registry, move_id):
    """(Email Delivery, is_move_sent) of the invoice ``move_id``, as committed."""
    with registry.cursor() as cr:
        cr.execute("SELECT smtp_invoicing_delivery_state, is_move_sent FROM account_move WHERE id = %s", [move_id])
        return cr.fetchone()


def _remove_invoice(registry, move_id):
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env.ref("account.email_template_edi_invoice").mail_server_id = False
        env["ir.config_parameter"].set_param("smtp_invoicing.enabled", "False")
        move = env["account.move"].browse(move_id)
        partner = move.partner_id
        cr.execute(
            "DELETE FROM mail_mail WHERE mail_message_id IN "
            "(SELECT id FROM mail_message WHERE model = 'account.move' AND res_id = %s)",
            [move_id],
        )
        cr.execute("DELETE FROM mail_message WHERE model = 'account.move' AND res_id = %s", [move_id])
        cr.execute("DELETE FROM ir_attachment WHERE res_model = 'account.move' AND res_id = %s", [move_id])
        cr.execute("DELETE FROM account_move WHERE id = %s", [move_id])
        cr.execute("DELETE FROM res_partner WHERE id = %s", [partner.id])


def test_send_and_print_never_waits_for_a_verification_on_the_network():
    """Send & Print through a mailbox being re-verified against a slow server completes at once, and delivers."""
    with Pki() as pki:
        # the verification's MAIL FROM waits 4 s; the invoice's own session is answered at once
        server = SmtpServer(
            mode="starttls", cert=pki.leaf(), users={LOGIN: PASSWORD}, mail_from_delay=4.0, mail_from_delay_count=1
        )
        server.start()
        data = _Committed([server], pki)
        move_id = None
        try:
            with data.registry.cursor() as cr:
                # verified before, due for its daily re-check now
                cr.execute(
                    "UPDATE smtp_invoicing_mailbox SET verification_state = 'verified', smtp_invoicing_next_check_at = "
                    "now() at time zone 'UTC' - interval '1 minute' WHERE id = %s",
                    [data.mailbox_ids[0]],
                )
            move_id = _committed_invoice(data.registry, data.mailbox_ids[0])
            errors, sent = [], []
            with real_smtp():
                checking = threading.Thread(target=data.run_cron, args=(errors,))
                checking.start()
                deadline = time.monotonic() + 30
                while "MAIL" not in server.commands:
                    assert time.monotonic() < deadline, "the verification never reached the server"
                    time.sleep(0.02)

                def send_and_print():
                    try:
                        with data.registry.cursor() as cr:
                            env = api.Environment(cr, data.user_id, {})
                            env = env(user=SUPERUSER_ID)
                            move = env["account.move"].browse(move_id)
                            wizard = (
                                env["account.move.send.wizard"]
                                .with_context(active_model="account.move", active_ids=[move_id])
                                .create({"sending_methods": ["email"]})
                            )
                            wizard.action_send_and_print()
                            sent.append(move.id)
                    except Exception as error:
                        errors.append(error)

                started = time.monotonic()
                sending = threading.Thread(target=send_and_print)
                sending.start()
                sending.join(30)
                took = time.monotonic() - started
                still_checking = checking.is_alive()
                checking.join(60)
            assert not errors, errors
            assert sent == [move_id]
            assert still_checking, f"Send & Print only finished after the verification ({took:.1f} s)"
            assert len(server.messages) == 1
            assert data.states() == {data.mailbox_ids[0]: "verified"}
            assert _delivery(data.registry, move_id) == ("sent", True)
        finally:
            if move_id:
                _remove_invoice(data.registry, move_id)
            data.cleanup()
            server.stop()


def test_marking_invoices_sent_never_waits_for_a_row_another_session_holds():
    """The end of a queue batch marks sent the invoices flagged for it without waiting for one whose row
    another session holds (a wait would hit the lock timeout and fail): that one stays flagged, the others
    are marked at once, and the next batch's end marks it."""
    with Pki() as pki:
        server = SmtpServer(mode="starttls", cert=pki.leaf(), users={LOGIN: PASSWORD})
        server.start()
        data = _Committed([server], pki)
        move_ids = []

        def states():
            with data.registry.cursor() as cr:
                cr.execute(
                    "SELECT id, COALESCE(is_move_sent, FALSE), smtp_invoicing_sent_pending FROM account_move"
                    " WHERE id IN %s ORDER BY id",
                    [tuple(move_ids)],
                )
                return cr.fetchall()

        def batch_end():
            with data.registry.cursor() as cr:
                cr.execute("SET LOCAL lock_timeout = '5s'")
                api.Environment(cr, SUPERUSER_ID, {})["account.move"]._smtp_invoicing_record_deliveries()

        try:
            _mark_verified(data)
            move_ids = sorted(_committed_invoice(data.registry, data.mailbox_ids[0]) for _index in range(2))
            held, free = move_ids
            with data.registry.cursor() as cr:
                # what sessions cut short left flagged for a later session's end
                cr.execute(
                    "UPDATE account_move SET smtp_invoicing_sent_pending = TRUE WHERE id IN %s", [tuple(move_ids)]
                )
            with data.registry.cursor() as holder:
                holder.execute("SELECT id FROM account_move WHERE id = %s FOR UPDATE", [held])
                batch_end()
                holder.rollback()
            assert states() == [(held, False, True), (free, True, False)]
            batch_end()
            assert states() == [(held, True, False), (free, True, False)]
        finally:
            for move_id in move_ids:
                _remove_invoice(data.registry, move_id)
            data.cleanup()
            server.stop()


def test_a_session_whose_row_another_worker_took_still_records_its_own_mails():
    """A session that outlived its lease: another worker took its row after this session's transaction began
    (the row can no longer be locked, PostgreSQL refuses it); the session's end still marks its delivered
    invoice Delivered and sent, from the mails it holds."""
    with Pki() as pki:
        server = SmtpServer(mode="starttls", cert=pki.leaf(), users={LOGIN: PASSWORD})
        server.start()
        data = _Committed([server], pki)
        move_id = None
        try:
            _mark_verified(data)
            move_id = _committed_invoice(data.registry, data.mailbox_ids[0])
            with data.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                template = env.ref("account.email_template_edi_invoice")
                template.send_mail(move_id)
                mail = env["mail.mail"].search([("model", "=", "account.move"), ("res_id", "=", move_id)])
                assert mail.smtp_invoicing_template_id == template
                batch, documents = env["smtp_invoicing.delivery.batch"]._smtp_invoicing_open(mail)
                mail.unlink()  # sent, and deleted once sent, as core does
            with data.registry.cursor() as session:
                session.execute("SELECT 1")  # the session's transaction (and its snapshot) began
                with data.registry.cursor() as other:
                    other.execute("DELETE FROM smtp_invoicing_delivery_batch WHERE id = %s", [batch])
                api.Environment(session, SUPERUSER_ID, {})["account.move"]._smtp_invoicing_record_deliveries(
                    batch, documents
                )
            assert _delivery(data.registry, move_id) == ("sent", True)
        finally:
            if move_id:
                _remove_invoice(data.registry, move_id)
            data.cleanup()
            server.stop()
