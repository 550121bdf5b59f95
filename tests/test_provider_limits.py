"""Sending as real providers allow: daily budgets, rates and connection caps kept in the database, "slow down"
replies read as a pause, the provider's own Sent copy, a sender Gmail would rewrite — against loopback
stand-ins that answer as Gmail and Microsoft 365 document (tests/provider_servers.py)."""

from datetime import timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import ValidationError

from odoo.addons.smtp_invoicing.models import mail_mail

from common import MAILBOX_LOGIN, PASSWORD, SmtpInvoicingCase, real_smtp
from provider_servers import FakeClock, GmailStandIn, MicrosoftStandIn


class ProviderCase(SmtpInvoicingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.partner_a.email = "customer@client.test"
        cls.partner_a.invoice_sending_method = "email"

    def setUp(self):
        super().setUp()
        self.clock = FakeClock()
        self.template = self.env.ref("account.email_template_edi_invoice")

    def stand_in(self, kind, **options):
        server = kind(self.pki, MAILBOX_LOGIN, PASSWORD, clock=self.clock, **options)
        server.__enter__()
        self.addCleanup(server.__exit__, None, None, None)
        return server

    def provider_mailbox(self, server, preset, **values):
        """A verified mailbox of ``preset`` (its published limits) on the loopback ``server``, chosen by
        the invoice template; ``values`` lower its limits."""
        mailbox = self.verify(self.create_mailbox(server, smtp_invoicing_preset=preset))
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        mailbox.write(values)
        self.template.mail_server_id = mailbox.mail_server_id
        return mailbox

    def invoices(self, count):
        return self.env["account.move"].concat(
            *(self.create_invoice("out_invoice", amounts=[100.0 + index], post=True) for index in range(count))
        )

    def mails(self, invoices):
        return self.env["mail.mail"].search(
            [("model", "=", "account.move"), ("res_id", "in", invoices.ids)], order="id"
        )

    def a_day_later(self, minutes=1):
        """What the product and the provider see a day later: the sessions and the waiting mails are
        moved back in time (the clocks of the product stay real), the provider's clock forward."""
        self.env.flush_all()
        for table, column in (("smtp_invoicing_submission", "taken_at"), ("mail_mail", "scheduled_date")):
            self.env.cr.execute(
                f"UPDATE {table} SET {column} = {column} - %s WHERE {column} IS NOT NULL",
                [timedelta(hours=24, minutes=minutes)],
            )
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_paused_until = smtp_invoicing_paused_until - %s"
            " WHERE smtp_invoicing_paused_until IS NOT NULL",
            [timedelta(hours=24, minutes=minutes)],
        )
        self.env.invalidate_all()
        self.clock.advance(hours=24, minutes=minutes)

    def run_queue(self):
        with real_smtp():
            self.env["mail.mail"].process_email_queue()
        self.env.invalidate_all()


class TestBudgets(ProviderCase):
    def test_daily_budget_keeps_the_rest_queued_and_sends_it_when_the_window_frees(self):
        """A Workspace mailbox lowered to 3 mails a day gets 5 invoices: 3 leave, 2 wait in the queue with the
        time the rolling window frees (never refused by the provider, never failed, no attempt counted), the
        invoices say so; a day later the 2 leave."""
        gmail = self.stand_in(GmailStandIn, daily_limit=3)
        mailbox = self.provider_mailbox(gmail, "gmail", smtp_invoicing_daily_limit=3)
        invoices = self.invoices(5)
        self.send_in_background(invoices)
        self.assertEqual((len(gmail.accepted), gmail.refusals), (3, []))
        waiting = self.mails(invoices).filtered(lambda mail: mail.state == "outgoing")
        self.assertEqual(len(waiting), 2)
        self.assertEqual(set(waiting.mapped("smtp_invoicing_retry_count")), {0})
        first = self.env["smtp_invoicing.submission"].search([("mailbox_id", "=", mailbox.id)], order="taken_at")[0]
        self.assertEqual(set(waiting.mapped("scheduled_date")), {first.taken_at + timedelta(hours=24)})
        states = sorted(invoices.mapped("smtp_invoicing_delivery_state"))
        self.assertEqual(states, ["queued", "queued", "sent", "sent", "sent"])
        held = invoices.filtered(lambda move: move.smtp_invoicing_delivery_state == "queued")
        for move in held:
            self.assertIn("Waiting: leaves after", move.smtp_invoicing_mail_failure)
            self.assertIn("Google Workspace daily limit reached", move.smtp_invoicing_mail_failure)
        self.assertEqual(mailbox.smtp_invoicing_budget_status, "3 of 3 in the last 24 hours")

        self.run_queue()  # the same day: nothing more leaves
        self.assertEqual(len(gmail.accepted), 3)

        self.a_day_later()
        self.run_queue()
        self.assertEqual((len(gmail.accepted), gmail.refusals), (5, []))
        self.assertEqual(set(invoices.mapped("smtp_invoicing_delivery_state")), {"sent"})

    def test_a_sessions_mails_count_from_its_end_as_the_provider_counts_them(self):
        """Gmail counts each mail when it accepts it: the budget counts a session's mails from the session's
        end (at or after the last acceptance, after the first), never from its start, so that its rolling
        window never frees a mail before the provider's does."""
        accepted_at, clock = [], []

        def filing_takes_a_while(_content):  # Gmail files the mail, then answers 250: 2 s pass, frozen
            accepted_at.append(fields.Datetime.now())
            clock[0].tick(timedelta(seconds=2))

        gmail = self.stand_in(GmailStandIn, on_sent=filing_takes_a_while)
        mailbox = self.provider_mailbox(gmail, "gmail")
        for invoice in self.invoices(2):
            self.template.send_mail(invoice.id)  # queued, then sent in one session
        started = fields.Datetime.now()
        with freeze_time(started) as frozen:
            clock.append(frozen)
            self.run_queue()
        self.assertEqual(len(gmail.accepted), 2)
        session = self.env["smtp_invoicing.submission"].search([("mailbox_id", "=", mailbox.id)])
        self.assertEqual(session.mapped("count"), [2])
        self.assertEqual(accepted_at, [started, started + timedelta(seconds=2)])
        self.assertGreaterEqual(session.taken_at, accepted_at[-1])

    def test_a_mailbox_with_a_daily_limit_sends_in_short_sessions(self):
        """A mailbox with a daily limit sends at most BUDGET_SESSION_MAILS mails per SMTP session (here lowered
        to 2): 5 invoices leave in 3 sessions of 2, 2 and 1, each counted in the budget; with 3 a day, 7
        invoices leave in sessions of 2 and 1 and the other 4 wait for the time the first session ages out."""
        gmail = self.stand_in(GmailStandIn)
        mailbox = self.provider_mailbox(gmail, "gmail")
        for invoice in self.invoices(5):
            self.template.send_mail(invoice.id)  # queued, then sent by one run of the queue
        with patch.object(mail_mail, "BUDGET_SESSION_MAILS", 2):
            self.run_queue()
        self.assertEqual(len(gmail.accepted), 5)
        Submission = self.env["smtp_invoicing.submission"]
        sessions = Submission.search([("mailbox_id", "=", mailbox.id)], order="id")
        self.assertEqual(sessions.mapped("count"), [2, 2, 1])

        sessions.sudo().unlink()  # a new day for the budget: the table is the queue's own
        mailbox.smtp_invoicing_daily_limit = 3
        invoices = self.invoices(7)
        for invoice in invoices:
            self.template.send_mail(invoice.id)
        with patch.object(mail_mail, "BUDGET_SESSION_MAILS", 2):
            self.run_queue()
        self.assertEqual((len(gmail.accepted), gmail.refusals), (8, []))
        sessions = Submission.search([("mailbox_id", "=", mailbox.id)], order="id")
        self.assertEqual(sessions.mapped("count"), [2, 1])
        waiting = self.mails(invoices).filtered(lambda mail: mail.state == "outgoing")
        self.assertEqual(len(waiting), 4)
        self.assertEqual(set(waiting.mapped("scheduled_date")), {sessions[0].taken_at + timedelta(hours=24)})

    def test_per_minute_rate_and_connection_cap_of_microsoft_365(self):
        """Microsoft 365's 3 connections are shared by every worker: with 3 sessions open elsewhere, a mail
        waits without connecting; lowered to 2 mails a minute, 4 invoices leave 2 now and 2 a minute later."""
        microsoft = self.stand_in(MicrosoftStandIn, per_minute=30)
        mailbox = self.provider_mailbox(microsoft, "microsoft365", smtp_invoicing_minute_limit=2)
        self.assertEqual(mailbox.smtp_invoicing_max_connections, 3)
        connections = microsoft.connections
        # three sessions of other workers (or Odoo servers) hold the three slots
        sessions = [mailbox._smtp_invoicing_take_submission([0])[0] for _slot in range(3)]
        self.env.invalidate_all()
        invoices = self.invoices(4)
        self.send_in_background(invoices)
        self.assertEqual(microsoft.connections, connections, "no 4th connection was opened")
        mails = self.mails(invoices)
        self.assertEqual(set(mails.mapped("state")), {"outgoing"})
        self.assertIn("connection limit reached", invoices[0].smtp_invoicing_mail_failure)

        for session in sessions:
            mailbox._smtp_invoicing_end_submission(session, 0)
        self.env.cr.execute(
            "UPDATE mail_mail SET scheduled_date = %s WHERE id IN %s", [fields.Datetime.now(), tuple(mails.ids)]
        )
        self.run_queue()
        self.assertEqual((len(microsoft.accepted), microsoft.refusals), (2, []))
        later = mails.exists().filtered(lambda mail: mail.state == "outgoing")
        self.assertEqual(len(later), 2)
        self.assertIn(
            "Microsoft 365 per-minute limit reached",
            invoices.filtered(lambda move: move.smtp_invoicing_delivery_state == "queued")[
                0
            ].smtp_invoicing_mail_failure,
        )
        self.assertLessEqual(max(later.mapped("scheduled_date")), fields.Datetime.now() + timedelta(minutes=1))


class TestSlowDownReplies(ProviderCase):
    def test_gmail_daily_limit_reply_pauses_the_mailbox_instead_of_failing_the_invoice(self):
        """Gmail's "550 5.4.5 Daily user sending limit exceeded" (its budget spent by other programs) pauses
        the mailbox until its window frees: that invoice and the rest of the batch wait, uncounted, nothing
        else is submitted, nothing is logged as an error, the invoices and the mailbox say until when and why;
        then they leave."""
        gmail = self.stand_in(GmailStandIn, daily_limit=2)
        mailbox = self.provider_mailbox(gmail, "gmail")
        self.assertEqual(mailbox.smtp_invoicing_daily_limit, 2000)
        invoices = self.invoices(5)
        self.send_in_background(invoices)

        self.assertEqual(len(gmail.accepted), 2)
        self.assertEqual([refusal.code for refusal in gmail.refusals], [550], "one refusal, no further attempt")
        mails = self.mails(invoices)
        waiting = mails.filtered(lambda mail: mail.state == "outgoing")
        self.assertEqual(len(waiting), 3)
        self.assertFalse(mails.filtered(lambda mail: mail.state == "exception"))
        self.assertEqual(set(waiting.mapped("smtp_invoicing_retry_count")), {0})
        first = self.env["smtp_invoicing.submission"].search([("mailbox_id", "=", mailbox.id)], order="taken_at")[0]
        self.assertEqual(mailbox.smtp_invoicing_paused_until, first.taken_at + timedelta(hours=24))
        self.assertEqual(set(waiting.mapped("scheduled_date")), {mailbox.smtp_invoicing_paused_until})
        self.assertIn("sending paused until", mailbox.smtp_invoicing_pause_message)
        self.assertIn("5.4.5", mailbox.smtp_invoicing_pause_message)
        queued = invoices.filtered(lambda move: move.smtp_invoicing_delivery_state == "queued")
        self.assertEqual(len(queued), 3)
        self.assertFalse(invoices.filtered(lambda move: move.smtp_invoicing_delivery_state == "failed"))
        self.assertIn("Google Workspace daily limit reached", queued[0].smtp_invoicing_mail_failure)

        self.run_queue()  # paused: the queue does not even connect
        self.assertEqual(len(gmail.refusals), 1)

        # a day later the window frees: Gmail takes 2 more, refuses the next (its budget is still spent
        # elsewhere): one probe, paused again; the day after, the last one leaves
        self.a_day_later()
        self.run_queue()
        self.assertEqual((len(gmail.accepted), len(gmail.refusals)), (4, 2))
        self.assertEqual(len(self.mails(invoices).exists().filtered(lambda mail: mail.state == "outgoing")), 1)
        self.a_day_later()
        self.run_queue()
        self.assertEqual((len(gmail.accepted), len(gmail.refusals)), (5, 2))
        self.assertEqual(set(invoices.mapped("smtp_invoicing_delivery_state")), {"sent"})

    def test_logins_refused_for_now_pause_the_mailbox_and_the_whole_batch_waits(self):
        """Gmail refuses a login past its login attempts ("454 4.7.0 Too many login attempts, please try again
        later"): the session never opens, the mailbox pauses, and every mail of the batch waits for the end of
        the pause, none counted as an attempt or failed; once the pause is over, they leave."""
        gmail = self.stand_in(GmailStandIn, login_limit=1)
        mailbox = self.provider_mailbox(gmail, "gmail")  # the verification took the one login allowed
        invoices = self.invoices(2)
        self.send_in_background(invoices)

        self.assertFalse(gmail.accepted)
        mails = self.mails(invoices)
        self.assertEqual(mails.mapped("state"), ["outgoing", "outgoing"])
        self.assertEqual(mails.mapped("smtp_invoicing_retry_count"), [0, 0])
        self.assertFalse(any(mails.mapped("failure_reason")))
        self.assertGreater(mailbox.smtp_invoicing_paused_until, fields.Datetime.now())
        self.assertEqual(set(mails.mapped("scheduled_date")), {mailbox.smtp_invoicing_paused_until})
        self.assertIn("4.7.0", mailbox.smtp_invoicing_pause_message)
        self.assertEqual(mailbox.verification_state, "verified")
        self.assertEqual(invoices.mapped("smtp_invoicing_delivery_state"), ["queued", "queued"])
        self.assertIn("Waiting: leaves after", invoices[0].smtp_invoicing_mail_failure)

        self.a_day_later()
        self.run_queue()
        self.assertEqual(len(gmail.accepted), 2)
        self.assertEqual(invoices.mapped("smtp_invoicing_delivery_state"), ["sent", "sent"])

    def test_microsoft_rate_reply_is_a_one_minute_pause(self):
        """Microsoft's "421 4.4.2 Message submission rate … exceeded" pauses the mailbox for a minute: the
        refused mail and the rest wait, nothing is failed."""
        microsoft = self.stand_in(MicrosoftStandIn, per_minute=2)
        mailbox = self.provider_mailbox(microsoft, "microsoft365")
        invoices = self.invoices(4)
        self.send_in_background(invoices)
        self.assertEqual(len(microsoft.accepted), 2)
        self.assertEqual([refusal.code for refusal in microsoft.refusals], [421])
        waiting = self.mails(invoices).filtered(lambda mail: mail.state == "outgoing")
        self.assertEqual(len(waiting), 2)
        pause = mailbox.smtp_invoicing_paused_until - fields.Datetime.now()
        self.assertTrue(timedelta(seconds=50) < pause <= timedelta(seconds=61), pause)
        self.assertIn("Microsoft 365 per-minute limit reached", mailbox.smtp_invoicing_pause_message)


class TestProviderIdentity(ProviderCase):
    def test_limits_can_be_lowered_not_raised_past_the_provider(self):
        """A Gmail account's limits start at Google's (500 a day for gmail.com, 2,000 for Workspace) and may
        be lowered, not raised or removed; Custom starts without limits and takes any."""
        gmail = self.stand_in(GmailStandIn)
        mailbox = self.provider_mailbox(gmail, "gmail")
        self.assertEqual(mailbox.smtp_invoicing_daily_limit, 2000)
        mailbox.smtp_invoicing_daily_limit = 1500
        for value in (2001, 0):
            with self.assertRaisesRegex(ValidationError, "allows at most 2000"):
                mailbox.smtp_invoicing_daily_limit = value
        custom = self.create_mailbox(name="Custom box")
        self.assertEqual(custom.smtp_invoicing_daily_limit, 0)
        custom.smtp_invoicing_daily_limit = 100000

    def test_provider_files_the_sent_copy_itself(self):
        """A Microsoft 365 mailbox never queues its own Sent copy (Exchange files one): one copy, not two."""
        microsoft = self.stand_in(MicrosoftStandIn)
        mailbox = self.provider_mailbox(microsoft, "microsoft365")
        # as a Microsoft 365 mailbox made with 1.x's preset, which switched the product's own copy on
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_imap_host = '127.0.0.1', smtp_invoicing_sent_copy = true"
            " WHERE id = %s",
            [mailbox.id],
        )
        self.env.invalidate_all()
        self.invoice_of_template()
        self.assertEqual(len(microsoft.sent), 1)
        self.assertFalse(self.env["smtp_invoicing.sent.copy"].search([("mailbox_id", "=", mailbox.id)]))

    def invoice_of_template(self):
        invoice = self.invoices(1)
        self.send_and_print(invoice)
        return invoice

    def test_gmail_sender_that_is_not_the_account_is_told_before_the_first_send(self):
        """A Gmail mailbox whose sender is not its account warns, on its form and in the Send dialog, that
        Gmail would send as the account, and how to add the sender as "Send mail as"; the stand-in shows
        why (From rewritten to the account). Sender = account: no warning."""
        gmail = self.stand_in(GmailStandIn)
        mailbox = self.provider_mailbox(gmail, "gmail")
        self.assertFalse(mailbox.smtp_invoicing_sender_notice)
        mailbox.write({"sender_email": "accounts@invoicing.test"})
        mailbox = self.verify(mailbox)
        self.template.mail_server_id = mailbox.mail_server_id
        self.assertIn("Send mail as", mailbox.smtp_invoicing_sender_notice)
        invoice = self.invoices(1)
        dialog = (
            self.env["account.move.send.wizard"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({})
        )
        warnings = [alert["message"] for key, alert in dialog.alerts.items() if key.startswith("smtp_invoicing_sender")]
        self.assertEqual(len(warnings), 1)
        self.assertIn(f"sends these mails as {MAILBOX_LOGIN}", warnings[0])
        self.send_and_print(invoice)
        self.assertIn(MAILBOX_LOGIN, gmail.accepted[-1].from_header)

    def test_send_dialog_announces_when_the_held_back_mails_leave(self):
        """The batch Send dialog tells how many mails leave now and when the rest will, by the daily limit."""
        gmail = self.stand_in(GmailStandIn, daily_limit=3)
        mailbox = self.provider_mailbox(gmail, "gmail", smtp_invoicing_daily_limit=3)
        self.send_in_background(self.invoices(2))
        invoices = self.invoices(3)
        dialog = (
            self.env["account.move.send.batch.wizard"]
            .with_context(active_model="account.move", active_ids=invoices.ids)
            .create({})
        )
        (plan,) = [alert["message"] for key, alert in dialog.alerts.items() if key.startswith("smtp_invoicing_later")]
        first = self.env["smtp_invoicing.submission"].search([("mailbox_id", "=", mailbox.id)], order="taken_at")[0]
        when = mailbox._smtp_invoicing_format_time(first.taken_at + timedelta(hours=24))
        self.assertEqual(plan, f"1 now, 2 after {when} — Google Workspace daily limit reached")


class TestPausesAndRestarts(ProviderCase):
    def test_a_killed_worker_frees_its_slot_by_itself_and_its_mails_still_count(self):
        """Sessions of workers killed mid-send (never ended) keep their slot until their lease ends, then free
        it by themselves; the mails they had taken still count in the day's budget (they may have left)."""
        microsoft = self.stand_in(MicrosoftStandIn)
        mailbox = self.provider_mailbox(microsoft, "microsoft365", smtp_invoicing_daily_recipient_limit=100)
        self.env.flush_all()  # the sessions are taken in transactions of their own
        for _worker in range(3):
            self.assertTrue(mailbox._smtp_invoicing_take_submission([10])[0])
        session, allowed, when, why = mailbox._smtp_invoicing_take_submission([10])
        self.assertEqual((session, allowed), (None, 0))
        self.assertIn("connection limit reached", why)
        self.env.cr.execute(
            "UPDATE smtp_invoicing_submission SET open_until = open_until - interval '31 minutes'"
            " WHERE mailbox_id = %s",
            [mailbox.id],
        )
        session, allowed, _when, _why = mailbox._smtp_invoicing_take_submission([10] * 10)
        self.assertTrue(session)
        self.assertEqual(allowed, 7, "70 of the 100 recipients of the day were taken by the killed workers")

    def test_a_pause_that_lasts_past_a_day_asks_an_administrator_once(self):
        """Pauses in a row for more than a day give one to-do to a Settings administrator, not one per pause."""
        from odoo.addons.smtp_invoicing.lib.providers import classify_reply

        gmail = self.stand_in(GmailStandIn)
        mailbox = self.provider_mailbox(gmail, "gmail")
        slow_down = classify_reply(550, "5.4.5 Daily user sending limit exceeded.")
        mailbox._smtp_invoicing_pause(slow_down, "550 5.4.5")
        todo = "Mailbox paused for more than a day"
        self.assertNotIn(todo, mailbox.activity_ids.mapped("summary"))
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox"
            " SET smtp_invoicing_paused_since = smtp_invoicing_paused_since - interval '2 days' WHERE id = %s",
            [mailbox.id],
        )
        self.env.invalidate_all()
        mailbox._smtp_invoicing_pause(slow_down, "550 5.4.5")
        mailbox._smtp_invoicing_pause(slow_down, "550 5.4.5")
        self.assertEqual(mailbox.activity_ids.mapped("summary").count(todo), 1)
        self.assertEqual(mailbox.activity_ids.filtered(lambda a: a.summary == todo).user_id, self.env.user)

    def test_a_verification_takes_a_connection_slot_too(self):
        """A verification is an SMTP connection too: with Microsoft 365's 3 slots held, the check waits (no
        connection, checked again 30 s later); with one free it runs in it, and gives it back."""
        microsoft = self.stand_in(MicrosoftStandIn)
        mailbox = self.provider_mailbox(microsoft, "microsoft365")
        self.env.flush_all()
        sessions = [mailbox._smtp_invoicing_take_submission([0])[0] for _slot in range(3)]
        connections = microsoft.connections
        mailbox.action_verify()
        self.run_verification_cron()
        self.assertEqual(microsoft.connections, connections, "no 4th connection")
        self.assertEqual(mailbox.verification_state, "pending")
        self.assertGreater(mailbox.smtp_invoicing_next_check_at, fields.Datetime.now())

        mailbox._smtp_invoicing_end_submission(sessions[0], 0)
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET smtp_invoicing_next_check_at = %s WHERE id = %s",
            [fields.Datetime.now(), mailbox.id],
        )
        self.run_verification_cron()
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
        self.assertEqual(microsoft.connections, connections + 1)
        open_slots = self.env["smtp_invoicing.submission"].search_count(
            [("mailbox_id", "=", mailbox.id), ("open_until", ">", fields.Datetime.now())]
        )
        self.assertEqual(open_slots, 2, "the check gave its slot back")
