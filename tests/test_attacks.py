"""Attacks refused: header injection, bad host names, HTML in sender names, credentials without TLS."""

from odoo.exceptions import ValidationError
from odoo.tools import mute_logger

from common import MAILBOX_LOGIN, PASSWORD, MailboxCase, real_smtp
from smtp_servers import SmtpServer, StripStarttlsProxy

INJECTED = ("bcc", "x-injected", "cc")


class TestAttacks(MailboxCase):
    def setUp(self):
        super().setUp()
        self.server = self.start_server()  # one per test: assertions read everything it received
        self.mailbox = self.verify(self.create_mailbox(self.server))
        self.assertEqual(self.mailbox.verification_state, "verified", self.mailbox.verification_message)

    def assertNoInjectedHeader(self, received):
        """The received message has none of the injected headers, and no header line starts with one."""
        message = received.message
        self.assertFalse([name for name in message.keys() if name.lower() in INJECTED], message.keys())
        head = received.content.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            self.assertFalse(line.lower().startswith((b"bcc:", b"x-injected:", b"cc:")), head)
        self.assertEqual(received.rcpt_tos, ["customer@client.test"])

    def send(self, **values):
        vals = {
            "email_to": "customer@client.test",
            "subject": "Invoice",
            "body_html": "<p>Invoice</p>",
            "email_from": MAILBOX_LOGIN,
            "mail_server_id": self.mailbox.mail_server_id.id,
            "record_company_id": self.company.id,
        }
        vals.update(values)
        mail = self.env["mail.mail"].create(vals)
        with real_smtp(), mute_logger("odoo.addons.mail.models.mail_mail"):
            mail.send()
        return mail

    def test_control_characters_refused_at_save(self):
        """CR, LF or NUL in sender name, sender email, user name or host are refused at save."""
        cases = [
            ({"sender_name": "ACME\nBcc: victim@evil.test"}, "must fit on one line"),
            ({"sender_email": "billing@invoicing.test\nBcc: victim@evil.test"}, "not a valid sender email"),
            ({"smtp_user": MAILBOX_LOGIN + "\r\nRCPT TO:<victim@evil.test>"}, "active internal user"),
            ({"smtp_host": "127.0.0.1\r\nMAIL FROM:<x@evil.test>"}, "not a valid server name"),
            ({"smtp_host": "smtp.gmail.com:587"}, "not a valid server name"),
            ({"smtp_host": "-bad-.example"}, "not a valid server name"),
            ({"smtp_host": "smtp_gmail.com"}, "not a valid server name"),
            ({"smtp_host": "a" * 64 + ".example"}, "not a valid server name"),
            ({"smtp_host": "999.1.1.1"}, "not a valid server name"),
        ]
        for values, message in cases:
            with self.subTest(values=values), self.assertRaisesRegex(ValidationError, message):
                self.create_mailbox(**values)
        with self.assertRaisesRegex(ValidationError, "must fit on one line"):
            self.mailbox.sender_name = "ACME\rBcc: victim@evil.test"
        # NUL never reaches a header: PostgreSQL refuses to store it at all
        for field in ("sender_name", "sender_email", "smtp_user", "smtp_host"):
            with (
                self.subTest(field=field),
                mute_logger("odoo.sql_db"),
                self.assertRaises(ValueError),
                self.env.cr.savepoint(),
            ):
                self.create_mailbox(**{field: "billing@invoicing.test\x00Bcc: victim@evil.test"})
        for host in ("::1", "192.0.2.1", "smtp.gmail.com", "smtp.exämple.de"):
            self.assertTrue(self.create_mailbox(smtp_host=host))

    def test_rendered_headers_cannot_add_or_split_headers(self):
        """CR/LF in template-rendered subject and names, or RFC 2047 words decoding to CR/LF, add no header."""
        partner = self.env["res.partner"].create(
            {
                "name": "Evil Corp\r\nBcc: victim@evil.test\r\nX-Injected: yes",
                "email": "customer@client.test",
            }
        )
        template = self.env["mail.template"].create(
            {
                "name": "Injection",
                "model_id": self.env["ir.model"]._get_id("res.partner"),
                "subject": "Invoice for {{ object.name }}",
                "email_to": "{{ object.email }}",
                "reply_to": "{{ object.name }} <reply@invoicing.test>",
                "body_html": "<p>Hello</p>",
                "mail_server_id": self.mailbox.mail_server_id.id,
            }
        )
        with real_smtp(), mute_logger("odoo.addons.mail.models.mail_mail"):
            mails = self.env["mail.mail"].browse(template.send_mail(partner.id, force_send=True))
        subjects = [
            "Invoice =?utf-8?q?42=0D=0ABcc:_victim@evil.test?=",
            "=?utf-8?b?SW52b2ljZQ0KWC1JbmplY3RlZDogeWVz?=",
            "Invoice\nX-Injected: yes",
            "Invoice\r\nCc: victim@evil.test",
        ]
        for subject in subjects:
            mails |= self.send(subject=subject)
        # each mail either leaves with single-line headers, or is refused whole and kept as failed
        self.assertEqual(len(self.server.messages) + mails.mapped("state").count("exception"), len(mails))
        self.assertEqual(mails[1:3].mapped("state"), ["sent", "sent"])
        for received in self.server.messages:
            self.assertNoInjectedHeader(received)
            self.assertEqual(received.mail_from, MAILBOX_LOGIN)
        self.assertEqual(self.server.messages[0].message["Subject"], "Invoice 42 Bcc: victim@evil.test")

    def test_sender_identity_forged_in_database_adds_no_header(self):
        """Even a sender name with CR/LF written to the database behind the ORM's back adds no header."""
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE smtp_invoicing_mailbox SET sender_name = %s WHERE id = %s",
            ["ACME\r\nBcc: victim@evil.test", self.mailbox.id],
        )
        self.mailbox.invalidate_recordset()
        self.send()
        for received in self.server.messages:
            self.assertNoInjectedHeader(received)

    def test_html_in_sender_name_is_escaped(self):
        """HTML/script in the sender name stays text: escaped in the chatter, plain fields in every view."""
        script = "<script>alert('x')</script><img src=x onerror=alert(1)>"
        self.mailbox.write({"sender_name": script, "name": script})
        self.verify(self.mailbox)
        self.mailbox.smtp_port = self.mailbox.smtp_port + 1  # logs "Settings changed"
        self.mailbox.smtp_port = self.server.port
        self.verify(self.mailbox)
        for message in self.mailbox.message_ids:
            self.assertNotIn("<script", str(message.body))
            self.assertNotIn("<img", str(message.body))
        views = self.env["smtp_invoicing.mailbox"].get_views([(False, "form"), (False, "list"), (False, "search")])
        for name in ("sender_name", "name", "verification_message", "sender_email"):
            self.assertIn(views["models"]["smtp_invoicing.mailbox"]["fields"][name]["type"], ("char", "text"), name)
        for view in views["views"].values():
            self.assertNotIn('widget="html"', view["arch"])
        self.send()
        sender = self.server.messages[-1].message["From"].addresses[0]
        self.assertEqual((sender.display_name, sender.addr_spec), (script, MAILBOX_LOGIN))

    def test_stripped_starttls_and_plain_auth_servers_get_no_credentials(self):
        """A server offering AUTH without STARTTLS, or a proxy stripping STARTTLS, fails and gets no password."""
        plain = SmtpServer(mode="plain", users={MAILBOX_LOGIN: PASSWORD}, advertise_auth_without_tls=True)
        attempts_before = len(self.server.auth_attempts)
        proxy = StripStarttlsProxy(self.server)
        for hostile in (plain, proxy):
            hostile.__enter__()
            self.addCleanup(hostile.__exit__, None, None, None)
        for hostile in (plain, proxy):
            mailbox = self.verify(self.create_mailbox(smtp_port=hostile.port))
            self.assertEqual(mailbox.verification_state, "failed")
            self.assertIn("does not offer an encrypted connection", mailbox.verification_message)
        self.assertEqual(plain.auth_attempts, [])
        self.assertNotIn(b"AUTH", proxy.client_data.upper())
        self.assertEqual(len(self.server.auth_attempts), attempts_before)

    def test_certificates_refused_unless_ca_added(self):
        """Wrong-host, expired and self-signed certificates fail; a self-signed one passes once added as CA."""
        cert = self.pki.self_signed()
        with open(cert[0]) as handle:
            own_ca = handle.read()
        servers = {
            "issued for another name": self.start_server(hosts=("other.example",)),
            "not trusted": SmtpServer(mode="ssl", cert=self.pki.expired(), users={MAILBOX_LOGIN: PASSWORD}),
        }
        self_signed = SmtpServer(mode="starttls", cert=cert, users={MAILBOX_LOGIN: PASSWORD})
        for server in (servers["not trusted"], self_signed):
            server.__enter__()
            self.addCleanup(server.__exit__, None, None, None)
        for message, server in servers.items():
            self.assertIn(message, self.verify(self.create_mailbox(server)).verification_message)
            self.assertEqual(server.auth_attempts, [])
        mailbox = self.verify(self.create_mailbox(self_signed))
        self.assertIn("not trusted", mailbox.verification_message)
        self.assertEqual(self_signed.auth_attempts, [])
        mailbox.smtp_invoicing_ca_cert = own_ca
        self.verify(mailbox)
        self.assertEqual(mailbox.verification_state, "verified", mailbox.verification_message)
