"""Benchmark: how close sending through Odoo and a mailbox gets to plain smtplib.

1,000 invoice-like mails sent by the mail queue through one own mailbox, then the very
same 1,000 messages (the bytes the server received) sent again with plain ``smtplib``
over one STARTTLS + AUTH connection to the same loopback server.
"""

import os
import smtplib
import ssl
import time

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
WARMUP = 30


def main():
    registry = boot()
    with Fleet() as fleet:
        (port,) = fleet.start(["starttls"])
        with environment(registry) as env:
            company = prepare_company(env)
            mailbox = env["ir.mail_server"].create(mailbox_values(port, fleet.ca_pem, company))
            mailbox.action_verify()
            env.cr.commit()  # verification results are committed by their own transactions
            env["ir.mail_server"]._cron_verify_mail_servers()
            env.cr.commit()
            mailbox.invalidate_recordset()
            assert mailbox.verification_state == "verified", mailbox.verification_message
            warmup_ids = queue_invoices(env, WARMUP, company, "W", mail_server=mailbox).ids
            mail_ids = queue_invoices(env, MAILS, company, "R", mail_server=mailbox).ids
            env["mail.mail"].browse(mail_ids).scheduled_date = "2999-01-01 00:00:00"
        send_queue(registry, warmup_ids)
        with environment(registry) as env:
            env["mail.mail"].browse(mail_ids).scheduled_date = False
        connections_before = fleet.stats()[0][0]
        odoo, _batches, failed = send_queue(registry, mail_ids)
        odoo_connections = fleet.stats()[0][0] - connections_before
        assert not failed
        messages = fleet.messages(0)[-MAILS:]

        context = ssl.create_default_context(cadata=fleet.ca_pem)
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as connection:
            connection.starttls(context=context)
            connection.login(LOGIN, PASSWORD)
            for mail_from, rcpt_tos, content in messages:
                connection.sendmail(mail_from, rcpt_tos, content)
        plain_seconds = time.perf_counter() - start
        plain_connections = fleet.stats()[0][0] - connections_before - odoo_connections
        size = sum(len(content) for _f, _t, content in messages) / len(messages) / 1024

    print(
        f"\nlimit: {MAILS} invoice-like mails ({size:.0f} KB each on the wire) to one STARTTLS + AUTH loopback server"
    )
    print(f"machine: {machine()}\n")
    table(
        ["path", "seconds", "ms/mail", "mails/s", "SMTP connections"],
        [
            [
                "Odoo mail queue, own mailbox",
                f"{odoo.seconds:.1f}",
                f"{odoo.seconds / MAILS * 1000:.1f}",
                f"{MAILS / odoo.seconds:.0f}",
                odoo_connections,
            ],
            [
                "plain smtplib, same messages",
                f"{plain_seconds:.1f}",
                f"{plain_seconds / MAILS * 1000:.1f}",
                f"{MAILS / plain_seconds:.0f}",
                plain_connections,
            ],
        ],
    )
    print(
        f"\nRESULT limit: Odoo {odoo.seconds:.1f} s vs smtplib {plain_seconds:.1f} s: the Odoo path runs at "
        f"{plain_seconds / odoo.seconds:.1%} of the raw SMTP speed (x{odoo.seconds / plain_seconds:.1f}); "
        f"{(odoo.seconds - plain_seconds) / MAILS * 1000:.1f} ms/mail of Odoo work "
        f"({odoo.queries / MAILS:.1f} queries and a commit per mail)"
    )


if __name__ == "__main__":
    main()
