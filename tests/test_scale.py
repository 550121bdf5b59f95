"""Behaviour at scale: parallel verification within a time budget, sending without per-mail overhead."""

from unittest.mock import patch

from common import MAILBOX_LOGIN, MailboxCase, SmtpInvoicingCase, real_smtp
from smtp_servers import SilentListener, SmtpServer


class TestParallelVerification(MailboxCase):
    def set_params(self, **values):
        params = self.env["ir.config_parameter"].sudo()
        for name, value in values.items():
            params.set_param(f"smtp_invoicing.{name}", str(value))

    def pending_count(self):
        return self.env["smtp_invoicing.mailbox"].search_count([("verification_state", "=", "pending")])

    def test_dead_hosts_cost_one_timeout_in_parallel(self):
        """Two live and two silent mailboxes are checked side by side: both silent servers are waited on at once."""
        self.set_params(verify_timeout=2, verify_deadline=4, verify_workers=8)
        with SilentListener() as silent:
            live = self.create_mailbox(name="Live 1") | self.create_mailbox(name="Live 2")
            dead = self.create_mailbox(name="Dead 1", smtp_port=silent.port) | self.create_mailbox(
                name="Dead 2", smtp_port=silent.port
            )
            (live | dead).action_verify()
            self.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        self.assertEqual(set(live.mapped("verification_state")), {"verified"}, live.mapped("verification_message"))
        self.assertEqual(set(dead.mapped("verification_state")), {"failed"})
        for mailbox in dead:
            self.assertIn("did not answer in time", mailbox.verification_message)
        # one after the other, the silent server would never hold two connections at once
        self.assertEqual(silent.peak, 2)
        self.assertEqual(self.pending_count(), 0)

    def test_spent_budget_leaves_the_rest_to_the_next_run(self):
        """Once the budget is spent no verification starts: the rest stays pending and the cron is triggered again.

        The one checked could not reach its server: Failed, with its own re-check triggered for later.
        """
        self.set_params(verify_timeout=1, verify_deadline=2, verify_workers=1, verify_budget=0.5)
        cron = self.env.ref("smtp_invoicing.ir_cron_verify_mail_servers")
        with SilentListener() as listener:
            mailboxes = self.env["smtp_invoicing.mailbox"].browse()
            for index in range(3):
                mailboxes |= self.create_mailbox(name=f"Silent {index}", smtp_port=listener.port)
            mailboxes.action_verify()
            triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
            self.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
            self.assertEqual(mailboxes.mapped("verification_state"), ["failed", "pending", "pending"])
            self.assertIn("checks it again automatically", mailboxes[0].verification_message)
            self.assertEqual(self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), triggers + 2)

            self.set_params(verify_workers=8, verify_budget=60)
            listener.reset_peak()
            self.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        self.assertEqual(mailboxes.mapped("verification_state"), ["failed"] * 3)
        self.assertEqual(listener.peak, 2)  # the two left were checked side by side
        self.assertEqual(self.pending_count(), 0)


class TestSendingOverhead(SmtpInvoicingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other_server = cls.start_server()
        cls.mailboxes = cls.create_mailbox(name="Invoices") | cls.create_mailbox(cls.other_server, name="Reminders")
        # only verified mailboxes send (issue 3: refused before connecting otherwise)
        cls.mailboxes.action_verify()
        cls.env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
        assert set(cls.mailboxes.mapped("verification_state")) == {"verified"}
        cls.relay = SmtpServer(mode="plain")
        cls.relay.__enter__()
        cls.addClassCleanup(cls.relay.__exit__, None, None, None)
        cls.core = cls.env["ir.mail_server"].create(
            {
                "name": "Core relay",
                "smtp_host": cls.relay.host,
                "smtp_port": cls.relay.port,
                "smtp_encryption": "none",
                "sequence": 1,
            }
        )

    def queue(self, count, mail_server):
        return self.env["mail.mail"].create(
            [
                {
                    "email_to": f"customer{index}@client.test",
                    "subject": f"Invoice INV/{index:05d}",
                    "body_html": f"<p>Dear customer, please find invoice INV/{index:05d} attached.</p>",
                    "email_from": MAILBOX_LOGIN,
                    "mail_server_id": mail_server.id,
                    "record_company_id": self.company.id,
                }
                for index in range(count)
            ]
        )

    def queries(self, function):
        self.env.flush_all()
        self.env.invalidate_all()
        before = self.env.cr.sql_log_count
        function()
        self.env.flush_all()
        return self.env.cr.sql_log_count - before

    def test_routing_costs_no_query_per_mail(self):
        """Choosing the mailbox and identity of 10 or 20 mails costs the same number of queries."""
        counts = []
        for count in (2, 10, 20):  # the first one fills the registry's caches
            mails = self.queue(count // 2, self.mailboxes[0].mail_server_id) | self.queue(
                count // 2, self.mailboxes[1].mail_server_id
            )
            counts.append(self.queries(lambda mails=mails: list(mails._split_by_mail_configuration())))
        self.assertEqual(counts[1], counts[2])

    def test_one_connection_per_mailbox_and_core_queries_per_mail(self):
        """Each mailbox gets one SMTP connection per batch; a mail costs no more queries than through core's server."""
        watched = (self.server, self.other_server, self.relay)
        before = {server: (server.connections, len(server.messages)) for server in watched}
        marginal = {}
        for name, servers in (("mailboxes", self.mailboxes.mail_server_id), ("core", self.core)):
            sent = []
            for count in (4, 8):
                mails = self.env["mail.mail"]
                for server in servers:
                    mails |= self.queue(count // len(servers), server)
                with real_smtp():
                    sent.append(self.queries(mails.send))
            marginal[name] = (sent[1] - sent[0]) / 4
        self.assertLessEqual(marginal["mailboxes"], marginal["core"], marginal)
        # one connection per send() call, i.e. per batch, whatever the number of mails
        for server, mails in ((self.server, 2 + 4), (self.other_server, 2 + 4), (self.relay, 4 + 8)):
            connections, messages = before[server]
            self.assertEqual(server.connections - connections, 2)
            self.assertEqual(len(server.messages) - messages, mails)
        self.assertEqual({message.mail_from for message in self.server.messages}, {MAILBOX_LOGIN})

    def test_a_mail_through_an_open_mailbox_session_costs_no_more_queries_than_core(self):
        """send_email() with a session a mailbox opened costs what core's own server costs, no read of the mailbox."""
        counts = {}
        with real_smtp():
            # twice: the first round fills the registry's caches (access rules)
            for name, server in [("mailbox", self.mailboxes[0].mail_server_id), ("core", self.core)] * 2:
                session = self.env["ir.mail_server"].connect(mail_server_id=server.id)
                try:
                    message = self.env["ir.mail_server"].build_email(
                        MAILBOX_LOGIN, ["customer@client.test"], f"Invoice via {name}", "<p>Attached.</p>"
                    )
                    counts[name] = self.queries(
                        lambda message=message, server=server, session=session: self.env["ir.mail_server"].send_email(
                            message, mail_server_id=server.id, smtp_session=session
                        )
                    )
                finally:
                    session.quit()
        self.assertLessEqual(counts["mailbox"], counts["core"], counts)
        # core's own send_email() reads the company once; the mailbox is not read again per mail
        self.assertLessEqual(counts["mailbox"], 1, counts)
        self.assertEqual(self.server.messages[-1].message["Subject"], "Invoice via mailbox")

    def test_recording_a_delivery_on_an_invoice_skips_the_accounting_checks(self):
        """Marking a posted invoice delivered writes its delivery fields without balance checks or line syncs."""
        invoice = self.create_invoice("out_invoice", partner=self.partner_a, amounts=[100.0], post=True)
        template = self.env.ref("account.email_template_edi_invoice")
        invoice._smtp_invoicing_set_delivery("queued", templates=template)
        self.env.flush_all()
        self.env.invalidate_all()
        before = self.env.cr.sql_log_count
        invoice._smtp_invoicing_set_delivery("sent", templates=template)
        self.env.flush_all()
        # read the invoice, update it; the tracking of is_move_sent is written at commit
        self.assertLessEqual(self.env.cr.sql_log_count - before, 4)
        self.assertEqual(invoice.smtp_invoicing_delivery_state, "sent")
        self.assertTrue(invoice.is_move_sent)

    def _invoice_mails(self, template, count):
        """``count`` posted invoices, queued, each with its mail of ``template``."""
        invoices = self.env["account.move"]
        for _index in range(count):
            invoices |= self.create_invoice("out_invoice", partner=self.partner_a, amounts=[100.0], post=True)
        invoices._smtp_invoicing_set_delivery("queued", templates=template)
        mails = self.env["mail.mail"].create(
            [
                {
                    "model": "account.move",
                    "res_id": invoice.id,
                    "subject": "Invoice",
                    "email_to": "customer@client.test",
                    "smtp_invoicing_template_id": template.id,
                }
                for invoice in invoices
            ]
        )
        return invoices, mails

    def test_a_sessions_delivery_bookkeeping_costs_the_same_for_2_or_20_invoices(self):
        """The queue's bookkeeping of the invoice mails of one SMTP session costs no query per mail: keeping
        them when the session starts and recording them at its end (Delivered, and sent with one ORM write)
        take as many queries for 20 invoices as for 2; the accepted ones are Delivered and sent, the refused
        one is left as its attempt recorded it, and the session's row is gone."""
        template = self.env.ref("account.email_template_edi_invoice")
        Batch = self.env["smtp_invoicing.delivery.batch"]
        costs = {}
        for count in (3, 2, 20):  # the first one fills the caches (the reminder template's id, the ORM's)
            invoices, mails = self._invoice_mails(template, count)
            self.env.flush_all()
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            batch, documents = Batch._smtp_invoicing_open(mails)
            opened = self.env.cr.sql_log_count - before
            # what core leaves: all accepted, the last deleted once sent, but one refused
            mails[:-2].write({"state": "sent"})
            mails[-2].unlink()
            mails[-1].write({"state": "exception"})
            self.env.flush_all()
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            self.env["account.move"]._smtp_invoicing_record_deliveries(batch, documents)
            costs[count] = (opened, self.env.cr.sql_log_count - before)
            accepted, refused = invoices[:-1], invoices[-1]
            self.assertEqual(set(accepted.mapped("smtp_invoicing_delivery_state")), {"sent"})
            self.assertEqual(set(accepted.mapped("is_move_sent")), {True})
            self.assertEqual(set(accepted.mapped("smtp_invoicing_sent_pending")), {False})
            self.assertEqual(refused.smtp_invoicing_delivery_state, "queued")
            self.assertFalse(refused.is_move_sent)
            self.assertFalse(Batch.browse(batch).exists())
        self.assertEqual(costs[2], costs[20])

    def test_a_delivered_mail_cancels_its_older_undelivered_copies(self):
        """Recording a session's delivered mail cancels the older copies of the same email to the same invoice
        still waiting in the queue, so that they never leave as duplicates; newer ones are left alone."""
        template = self.env.ref("account.email_template_edi_invoice")
        invoices, mails = self._invoice_mails(template, 1)
        older, delivered, newer = mails | mails.copy({"state": "outgoing"}) | mails.copy({"state": "outgoing"})
        self.assertTrue(older.id < delivered.id < newer.id)
        for mail in (older, delivered, newer):
            mail.smtp_invoicing_template_id = template
        batch, documents = self.env["smtp_invoicing.delivery.batch"]._smtp_invoicing_open(delivered)
        delivered.state = "sent"
        self.env["account.move"]._smtp_invoicing_record_deliveries(batch, documents)
        self.assertEqual(invoices.smtp_invoicing_delivery_state, "sent")
        self.assertEqual((older | delivered | newer).mapped("state"), ["cancel", "sent", "outgoing"])

    def test_bookkeeping_flip_stays_out_of_tracking_another_write_prepared(self):
        """Send & Print writes is_move_sent again on an invoice whose PDF exists, which prepares its
        tracking: the bookkeeping's flip to not sent still adds no tracking line at commit, while a
        tracked field changed by the same transaction is tracked as usual."""
        invoice = self.create_invoice("out_invoice", partner=self.partner_a, amounts=[100.0], post=True)
        invoice = invoice.with_context(tracking_disable=False, mail_notrack=False)
        template = self.env.ref("account.email_template_edi_invoice")
        invoice.is_move_sent = True  # the PDF was generated earlier
        self.env.flush_all()
        invoice._track_finalize()

        def tracked(field):
            return self.env["mail.tracking.value"].search_count(
                [
                    ("mail_message_id.model", "=", "account.move"),
                    ("mail_message_id.res_id", "=", invoice.id),
                    ("field_id.name", "=", field),
                ]
            )

        before = tracked("is_move_sent")
        invoice.write({"is_move_sent": True, "invoice_user_id": self.mailbox_user.id})  # core's Send & Print
        invoice._smtp_invoicing_set_delivery("queued", templates=template)
        self.assertFalse(invoice.is_move_sent)
        self.env.flush_all()
        invoice._track_finalize()  # what the commit does
        self.assertEqual(tracked("is_move_sent"), before)
        self.assertEqual(tracked("invoice_user_id"), 1)

    def test_delivery_bookkeeping_adds_no_tracking_line(self):
        """Queued then delivered: is_move_sent follows, and the bookkeeping prepares no chatter tracking line."""
        invoice = self.create_invoice("out_invoice", partner=self.partner_a, amounts=[100.0], post=True)
        # the test classes switch tracking off; the mail queue runs with it on
        invoice = invoice.with_context(tracking_disable=False, mail_notrack=False)
        template = self.env.ref("account.email_template_edi_invoice")
        prepared = []
        track_prepare = type(invoice)._track_prepare

        def recording_track_prepare(records, fields_iter):
            prepared.append(records)
            return track_prepare(records, fields_iter)

        with patch.object(type(invoice), "_track_prepare", recording_track_prepare):
            invoice._smtp_invoicing_set_delivery("queued", templates=template)
            self.assertFalse(invoice.is_move_sent)
            invoice._smtp_invoicing_set_delivery("sent", templates=template)
            self.assertTrue(invoice.is_move_sent)
        self.assertEqual(prepared, [])
