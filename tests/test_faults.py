"""Faults survived: each failing server gets the right status, no mail is lost or sent twice, others keep sending."""

from datetime import timedelta

from freezegun import freeze_time

from odoo import fields
from odoo.tools import mute_logger

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase, real_smtp
from smtp_servers import DripServer, SmtpServer, closed_port

MAIL_LOGGER = "odoo.addons.mail.models.mail_mail"


class TestFaults(MailboxCase):
    def hostile(self, **options):
        return self.start_server(**options)

    def assertFailed(self, mailbox, text):
        self.assertEqual(mailbox.verification_state, "failed", mailbox.verification_message)
        self.assertIn(text, mailbox.verification_message)

    def test_verification_faults_give_the_right_status(self):
        """Resets during TLS, AUTH or MAIL, 421/451 and 550/554 replies: Failed with the right words, one try."""
        cases = [
            ({"reset_on": "STARTTLS"}, "was interrupted"),
            ({"reset_on": "AUTH"}, "was interrupted"),
            ({"reset_on": "MAIL"}, "was interrupted"),
            ({"mail_from_reply": (421, "4.7.0 Too many connections, try later")}, "temporary error"),
            ({"mail_from_reply": (451, "4.3.0 Local error in processing")}, "temporary error"),
            ({"mail_from_reply": (550, "5.1.0 Sender rejected")}, "refused to send as"),
            ({"mail_from_reply": (554, "5.7.1 Transaction failed")}, "refused to send as"),
        ]
        for options, text in cases:
            server = self.hostile(**options)
            mailbox = self.verify(self.create_mailbox(server))
            self.assertFailed(mailbox, text)
            self.assertEqual(server.connections, 1, options)
            self.assertLessEqual(server.commands.count("AUTH"), 1, options)
            self.assertEqual(server.messages, [])
        self.assertNotIn(
            PASSWORD, " ".join(self.env["smtp_invoicing.mailbox"].search([]).mapped("verification_message"))
        )

    def test_failed_mailbox_is_not_retried_in_a_loop(self):
        """A Failed mailbox is not verified again by later runs, even days later: one AUTH attempt in all."""
        server = self.hostile(users={MAILBOX_LOGIN: "not-the-saved-password"})
        mailbox = self.verify(self.create_mailbox(server))
        self.assertFailed(mailbox, "user name or password was refused")
        cron = self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        for days in (0, 1, 3):
            with freeze_time(fields.Datetime.now() + timedelta(days=days)):
                self.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        self.assertEqual(len(server.auth_attempts), 1)
        self.assertEqual(server.connections, 1)
        self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), triggers)
        self.assertFailed(mailbox, "user name or password was refused")

    def test_drip_refused_timeout_and_dns_in_one_run(self):
        """A dripping, a refusing and an unresolvable mailbox fail within their deadline; a good one is verified."""
        with DripServer() as drip:
            dripping = self.create_mailbox(smtp_port=drip.port)
            refused = self.create_mailbox(smtp_port=closed_port())
            unknown = self.create_mailbox(smtp_host="smtp.nonexistent.invalid")
            good = self.create_mailbox()
            (dripping | refused | unknown | good).action_verify()
            self.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        self.assertFailed(dripping, "did not answer in time")
        self.assertFailed(refused, "refused the connection")
        self.assertFailed(unknown, "does not exist")
        self.assertEqual(good.verification_state, "verified", good.verification_message)

    def queue(self, mailbox, subject):
        return self.env["mail.mail"].create(
            {
                "email_to": "customer@client.test",
                "subject": subject,
                "body_html": "<p>Invoice</p>",
                "email_from": MAILBOX_LOGIN,
                "mail_server_id": mailbox.mail_server_id.id,
                "record_company_id": self.company.id,
                "auto_delete": False,
            }
        )

    def test_queue_survives_sending_faults(self):
        """Reset during DATA, 451, 554 or a server gone: that mail is kept, never sent twice; others are sent.

        A reset, a 4xx and a server gone are temporary: retried later, with a readable reason.
        """
        healthy_server = self.hostile()
        healthy = self.verify(self.create_mailbox(healthy_server, name="Healthy"))
        faults = {
            "reset": {"reset_on": "DATA"},
            "451": {"data_reply": (451, "4.3.0 Try again later")},
            "554": {"data_reply": (554, "5.7.1 Message rejected as spam")},
        }
        broken, servers = {}, {}
        for label, options in faults.items():
            servers[label] = self.hostile(**options)
            broken[label] = self.verify(self.create_mailbox(servers[label], name=label))
        with SmtpServer(mode="starttls", cert=self.pki.leaf(), users={MAILBOX_LOGIN: PASSWORD}) as gone:
            broken["gone"] = self.verify(self.create_mailbox(gone, name="gone"))
        for mailbox in broken.values():
            self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        mails = {label: self.queue(mailbox, label) for label, mailbox in broken.items()}
        mails["healthy"] = self.queue(healthy, "healthy")
        all_mails = self.env["mail.mail"].concat(*mails.values())
        with real_smtp(), mute_logger(MAIL_LOGGER):
            self.env["mail.mail"].process_email_queue(ids=all_mails.ids)
        self.assertEqual(mails["healthy"].state, "sent")
        self.assertEqual([m.message["Subject"] for m in healthy_server.messages], ["healthy"])
        # a connection reset during DATA: nothing was accepted, the mail goes back to the queue
        self.assertEqual(mails["reset"].state, "outgoing")
        self.assertEqual(mails["reset"].smtp_invoicing_retry_count, 1)
        self.assertIn("connection to the server of “reset” broke", mails["reset"].failure_reason)
        self.assertNotIn("Error without exception", mails["reset"].failure_reason)
        # a temporary refusal goes back to the queue, later (issue 3's retry policy)
        self.assertEqual(mails["451"].state, "outgoing")
        self.assertEqual(mails["451"].smtp_invoicing_retry_count, 1)
        self.assertGreater(mails["451"].scheduled_date, fields.Datetime.now())
        self.assertEqual(mails["554"].state, "exception")
        self.assertIn("spam", mails["554"].failure_reason)
        # an unreachable mailbox is a temporary failure too: retried later, reason kept
        self.assertEqual(mails["gone"].state, "outgoing")
        self.assertEqual(mails["gone"].smtp_invoicing_retry_count, 1)
        self.assertIn("refused the connection", mails["gone"].failure_reason)
        for server in servers.values():
            self.assertEqual(server.messages, [])
        # the retry, once the server behaves: sent exactly once, the healthy mail is not sent again
        servers["reset"].reset_on = None
        with real_smtp(), mute_logger(MAIL_LOGGER), freeze_time(fields.Datetime.now() + timedelta(minutes=6)):
            self.env["mail.mail"].process_email_queue(ids=all_mails.ids)
            self.env["mail.mail"].process_email_queue(ids=all_mails.ids)
        self.assertEqual(mails["reset"].state, "sent")
        self.assertEqual([m.message["Subject"] for m in servers["reset"].messages], ["reset"])
        self.assertEqual(len(healthy_server.messages), 1)
