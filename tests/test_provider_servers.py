"""tests/provider_servers.py: the Gmail and Microsoft 365 stand-ins behave as the providers document, driven
by smtplib over STARTTLS with the test CA (pure, no Odoo)."""

import contextlib
import datetime
import os
import smtplib
import ssl
import sys
import time
from email.message import EmailMessage

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from pure_lib import lib

from mail_stack import MailStack
from provider_servers import DAY, FakeClock, GmailStandIn, MicrosoftStandIn, Reply, epoch, imap_filer
from smtp_servers import Pki

providers = lib("providers")
smtp = lib("smtp")

GMAIL_USER, GMAIL_PASSWORD = "billing@gmail.test", "gmail-app-password-16"
M365_USER, M365_PASSWORD = "billing@company.test", "m365-mailbox-secret"
CUSTOMER = "ap@customer.test"


@pytest.fixture(scope="module")
def pki():
    with Pki() as value:
        yield value


@pytest.fixture
def clock():
    return FakeClock()


@contextlib.contextmanager
def running(server):
    with server:
        yield server


def connect(server, pki, user, password, login=True):
    """An smtplib session over STARTTLS that verifies the stand-in's certificate with the test CA."""
    connection = smtplib.SMTP(server.host, server.port, timeout=10)
    connection.starttls(context=ssl.create_default_context(cafile=pki.ca_path))
    if login:
        connection.login(user, password)
    return connection


def mail(sender, recipients=(CUSTOMER,), subject="Invoice INV/2026/0001", from_header=None):
    message = EmailMessage()
    message["From"] = from_header or sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Message-ID"] = "<%s.%f@invoicing.test>" % (subject.replace("/", "-").replace(" ", ""), time.time())
    message.set_content("Please find your invoice attached.\n")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def send(connection, sender, recipients=(CUSTOMER,), **options):
    return connection.sendmail(sender, list(recipients), mail(sender, recipients, **options))


def quit_quietly(connection):
    with contextlib.suppress(smtplib.SMTPException, OSError):
        connection.quit()


# --------------------------------------------------------------------------- Gmail


def test_gmail_daily_limit_refuses_the_data_command_until_the_rolling_day_frees(pki, clock):
    """Past its daily limit Gmail answers DATA with 550 5.4.5 (a daily_limit) until the oldest mail is 24 h old."""
    with running(GmailStandIn(pki, GMAIL_USER, GMAIL_PASSWORD, daily_limit=3, clock=clock)) as gmail:
        connection = connect(gmail, pki, GMAIL_USER, GMAIL_PASSWORD)
        for hour in range(3):
            assert send(connection, GMAIL_USER, subject="Invoice %d" % hour) == {}
            clock.advance(hours=1)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(connection, GMAIL_USER, subject="Invoice 3")
        assert refused.value.smtp_code == 550
        text = refused.value.smtp_error.decode()
        assert providers.classify_reply(550, text) == providers.SlowDown("daily_limit", DAY)
        assert gmail.refusals[-1].stage == "data"  # refused before the content was sent
        assert "DATA" in gmail.commands and len(gmail.accepted) == 3
        # what the caller computes from its own send log: the first mail is 24 h old at 21 h from now
        log = [(item.at, 1) for item in gmail.accepted]
        assert providers.rolling_wait(log, 3, clock()) == 21 * 3600
        clock.advance(hours=21, seconds=-1)
        with pytest.raises(smtplib.SMTPDataError):
            send(connection, GMAIL_USER, subject="Invoice 4")
        clock.advance(seconds=1)
        assert send(connection, GMAIL_USER, subject="Invoice 5") == {}
        with pytest.raises(smtplib.SMTPDataError):  # the second one is still in the window
            send(connection, GMAIL_USER, subject="Invoice 6")
        quit_quietly(connection)
        assert [item.message["Subject"] for item in gmail.accepted] == [
            "Invoice 0",
            "Invoice 1",
            "Invoice 2",
            "Invoice 5",
        ]
        assert len(gmail.sent) == 4 and len(gmail.refusals) == 3


def test_gmail_rewrites_a_from_it_does_not_own_and_still_accepts(pki, clock):
    """A From that is not the account or an alias leaves rewritten to the account (original kept), with 250."""
    alias = "invoices@company.test"
    with running(GmailStandIn(pki, GMAIL_USER, GMAIL_PASSWORD, aliases=[alias], clock=clock)) as gmail:
        connection = connect(gmail, pki, GMAIL_USER, GMAIL_PASSWORD)
        original = '"Company SA, Billing" <other@company.test>'
        assert send(connection, "other@company.test", from_header=original, subject="Rewritten") == {}
        assert send(connection, alias, from_header="Company <%s>" % alias, subject="Alias") == {}
        assert send(connection, GMAIL_USER, subject="Account") == {}
        quit_quietly(connection)
    rewritten, kept, own = gmail.accepted
    assert rewritten.from_header == '"Company SA, Billing" <%s>' % GMAIL_USER
    assert rewritten.message["X-Google-Original-From"] == original
    assert rewritten.original_from == original
    assert rewritten.mail_from == "other@company.test"
    # only the From changed: the body and every other header are the client's bytes
    assert rewritten.content.split(b"\r\n\r\n", 1)[1] == b"Please find your invoice attached.\r\n"
    assert rewritten.message["Subject"] == "Rewritten" and rewritten.message["To"] == CUSTOMER
    for accepted in (kept, own):
        assert accepted.original_from is None and "X-Google-Original-From" not in accepted.message
    assert kept.from_header == "Company <%s>" % alias
    assert not gmail.refusals


def test_gmail_files_every_accepted_message_in_sent_mail_as_delivered(pki, clock):
    """Gmail's Sent Mail holds exactly the accepted messages, From rewritten, and nothing it refused."""
    with running(GmailStandIn(pki, GMAIL_USER, GMAIL_PASSWORD, daily_limit=2, clock=clock)) as gmail:
        connection = connect(gmail, pki, GMAIL_USER, GMAIL_PASSWORD)
        send(connection, "other@company.test", subject="One")
        send(connection, GMAIL_USER, subject="Two")
        with pytest.raises(smtplib.SMTPDataError):
            send(connection, GMAIL_USER, subject="Three")
        quit_quietly(connection)
    assert gmail.sent_mail == [item.content for item in gmail.accepted]
    assert len(gmail.sent) == 2
    assert b"From: " + GMAIL_USER.encode() in gmail.sent[0]
    assert not any(b"Subject: Three" in content for content in gmail.sent)


def test_gmail_burst_gets_421_and_the_connection_closes(pki, clock):
    """Past its burst Gmail answers MAIL with 421 4.7.0 Try again later and hangs up; later it accepts again."""
    with running(GmailStandIn(pki, GMAIL_USER, GMAIL_PASSWORD, burst=2, burst_window=60, clock=clock)) as gmail:
        connection = connect(gmail, pki, GMAIL_USER, GMAIL_PASSWORD)
        send(connection, GMAIL_USER, subject="One")
        send(connection, GMAIL_USER, subject="Two")
        # docmd, not sendmail: smtplib would close the connection itself on a 421
        code, text = connection.docmd("MAIL", "FROM:<%s>" % GMAIL_USER)
        assert code == 421
        assert providers.classify_reply(code, text).kind == "try_later"
        with pytest.raises(smtplib.SMTPServerDisconnected):
            connection.noop()  # the server hung up
        assert gmail.refusals[-1].stage == "mail"
        clock.advance(seconds=61)
        connection = connect(gmail, pki, GMAIL_USER, GMAIL_PASSWORD)
        assert send(connection, GMAIL_USER, subject="Four") == {}
        quit_quietly(connection)
    assert [item.message["Subject"] for item in gmail.accepted] == ["One", "Two", "Four"]


def test_gmail_too_many_login_attempts_get_454_until_the_window_passes(pki, clock):
    """Past its login attempts Gmail answers AUTH with 454 4.7.0 (a login_rate pause), then lets logins in again."""
    gmail = GmailStandIn(pki, GMAIL_USER, GMAIL_PASSWORD, login_limit=3, login_window=600, clock=clock)
    with running(gmail):
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            connect(gmail, pki, GMAIL_USER, "not-the-password")
        assert wrong.value.smtp_code == 535
        assert len(gmail.auth_attempts) == 2  # smtplib tried PLAIN, then LOGIN: two attempts
        quit_quietly(connect(gmail, pki, GMAIL_USER, GMAIL_PASSWORD))
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            connect(gmail, pki, GMAIL_USER, GMAIL_PASSWORD)
        assert refused.value.smtp_code == 454
        assert providers.classify_reply(454, refused.value.smtp_error) == providers.SlowDown("login_rate", 900)
        clock.advance(seconds=601)
        connection = connect(gmail, pki, GMAIL_USER, GMAIL_PASSWORD)
        assert send(connection, GMAIL_USER) == {}
        quit_quietly(connection)
    # the refused login was tried with PLAIN, then LOGIN: both got the 454
    assert [(refusal.stage, refusal.code) for refusal in gmail.refusals] == [("auth", 454), ("auth", 454)]


def test_gmail_refuses_recipients_past_its_per_message_limit_with_452(pki, clock):
    """Recipients past the per-message limit get 452 4.5.3 at RCPT (split, no pause); the others are accepted."""
    recipients = ["ap%d@customer.test" % number for number in range(4)]
    gmail = GmailStandIn(pki, GMAIL_USER, GMAIL_PASSWORD, recipients_per_message=3, clock=clock)
    with running(gmail):
        connection = connect(gmail, pki, GMAIL_USER, GMAIL_PASSWORD)
        refused = send(connection, GMAIL_USER, recipients)
        quit_quietly(connection)
    assert list(refused) == [recipients[3]]
    code, text = refused[recipients[3]]
    assert code == 452
    slow = providers.classify_reply(code, text)
    assert slow.kind == "too_many_recipients" and slow.split_recipients and slow.seconds == 0
    assert gmail.accepted[0].rcpt_tos == recipients[:3]


def test_stand_ins_require_tls_and_a_login_before_mail(pki, clock):
    """Both stand-ins refuse AUTH before STARTTLS and MAIL before AUTH, like the real submission services."""
    for server in (
        GmailStandIn(pki, GMAIL_USER, GMAIL_PASSWORD, clock=clock),
        MicrosoftStandIn(pki, M365_USER, M365_PASSWORD, clock=clock),
    ):
        with running(server):
            plain = smtplib.SMTP(server.host, server.port, timeout=10)
            plain.ehlo()
            assert plain.docmd("AUTH", "PLAIN AGZvbwBiYXI=")[0] == 530
            quit_quietly(plain)
            connection = connect(server, pki, None, None, login=False)
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                send(connection, server.account)
            assert refused.value.smtp_code == 530
            quit_quietly(connection)
        assert not server.accepted


def test_gmail_files_into_a_real_imap_mailbox_through_the_callback(pki, clock):
    """With imap_filer as on_sent, every message Gmail accepts is in the real Dovecot Sent folder before the 250."""
    login, password = "billing@invoicing.test", "gmail-sent-imap-secret"
    with MailStack(pki, {login: password}) as stack:
        filer = imap_filer(stack.host, stack.imaps_port, login, password, "Sent", stack.client_context())
        gmail = GmailStandIn(pki, login, password, clock=clock, on_sent=filer)
        with running(gmail):
            connection = connect(gmail, pki, login, password)
            send(connection, "other@company.test", subject="Filed one")
            assert stack.message_count(login, "Sent") == 1  # already there when sendmail returned
            send(connection, login, subject="Filed two")
            quit_quietly(connection)
        stored = stack.messages(login, "Sent")
        assert [message["Subject"] for _uid, message in stored] == ["Filed one", "Filed two"]
        assert stored[0][1]["From"] == login and stored[0][1]["X-Google-Original-From"] == "other@company.test"
        assert all("\\Seen" in flags for flags in stack.flags(login, "Sent").values())
        assert not gmail.sent_errors


def test_a_failing_sent_callback_does_not_refuse_the_mail(pki, clock):
    """A Sent-folder callback that fails is recorded, and the provider still accepts the mail (it is sent)."""

    def broken(content):
        raise OSError("IMAP down")

    gmail = GmailStandIn(pki, GMAIL_USER, GMAIL_PASSWORD, clock=clock, on_sent=broken)
    with running(gmail):
        connection = connect(gmail, pki, GMAIL_USER, GMAIL_PASSWORD)
        assert send(connection, GMAIL_USER) == {}
        quit_quietly(connection)
    assert len(gmail.accepted) == 1 and [str(error) for error in gmail.sent_errors] == ["IMAP down"]


# --------------------------------------------------------------------------- Microsoft 365


def test_microsoft_per_minute_rate_gets_421_4_4_2_and_hangs_up(pki, clock):
    """Past its messages a minute Exchange answers MAIL with 421 4.4.2 (a rate_limit) and hangs up; later it accepts."""
    m365 = MicrosoftStandIn(pki, M365_USER, M365_PASSWORD, per_minute=3, clock=clock)
    with running(m365):
        connection = connect(m365, pki, M365_USER, M365_PASSWORD)
        for number in range(3):
            send(connection, M365_USER, subject="Invoice %d" % number)
            clock.advance(seconds=10)
        code, text = connection.docmd("MAIL", "FROM:<%s>" % M365_USER)  # smtplib's sendmail would hang up itself
        assert code == 421
        assert providers.classify_reply(code, text) == providers.SlowDown("rate_limit", 60)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            connection.noop()  # the server hung up
        clock.advance(seconds=31)  # the first message is now more than a minute old
        connection = connect(m365, pki, M365_USER, M365_PASSWORD)
        assert send(connection, M365_USER, subject="Invoice 4") == {}
        with pytest.raises(smtplib.SMTPSenderRefused):
            send(connection, M365_USER, subject="Invoice 5")
    assert len(m365.accepted) == 4 and [refusal.code for refusal in m365.refusals] == [421, 421]


def test_microsoft_daily_recipients_get_554_5_2_0_after_the_content(pki, clock):
    """A message that would pass the daily recipients gets 554 5.2.0 SubmissionQuotaExceeded after its content."""
    m365 = MicrosoftStandIn(pki, M365_USER, M365_PASSWORD, daily_recipients=5, clock=clock)
    three = ["a@customer.test", "b@customer.test", "c@customer.test"]
    with running(m365):
        connection = connect(m365, pki, M365_USER, M365_PASSWORD)
        assert send(connection, M365_USER, three, subject="Three") == {}
        clock.advance(hours=1)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(connection, M365_USER, three, subject="Three more")
        assert refused.value.smtp_code == 554
        assert providers.classify_reply(554, refused.value.smtp_error).kind == "daily_limit"
        assert m365.refusals[-1].stage == "message"
        assert send(connection, M365_USER, three[:2], subject="Two") == {}  # exactly five
        with pytest.raises(smtplib.SMTPDataError):
            send(connection, M365_USER, three[:1], subject="One")
        clock.advance(hours=23, seconds=1)  # "Three" left the rolling day
        assert send(connection, M365_USER, three, subject="Three again") == {}
        quit_quietly(connection)
    assert [item.message["Subject"] for item in m365.accepted] == ["Three", "Two", "Three again"]
    assert m365.sent_within(DAY) == (2, 5)


def test_microsoft_fourth_connection_gets_432_after_its_content_until_a_slot_frees(pki, clock):
    """A 4th signed-in connection is refused 432 4.3.2 at submission while 3 others are open, then sends."""
    m365 = MicrosoftStandIn(pki, M365_USER, M365_PASSWORD, clock=clock)
    with running(m365):
        first = [connect(m365, pki, M365_USER, M365_PASSWORD) for _ in range(3)]
        fourth = connect(m365, pki, M365_USER, M365_PASSWORD)  # the login itself is fine
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(fourth, M365_USER, subject="Fourth")
        assert refused.value.smtp_code == 432
        assert providers.classify_reply(432, refused.value.smtp_error) == providers.SlowDown("connection_limit", 60)
        assert m365.refusals[-1].stage == "message"
        for number, connection in enumerate(first):
            assert send(connection, M365_USER, subject="Slot %d" % number) == {}
        quit_quietly(first[0])
        deadline = time.monotonic() + 5
        while m365.open_sessions > 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert send(fourth, M365_USER, subject="Fourth again") == {}
        for connection in (*first[1:], fourth):
            quit_quietly(connection)
    assert m365.peak_connections == 4 and m365.peak_sessions == 4
    assert sorted(item.message["Subject"] for item in m365.accepted) == [
        "Fourth again",
        "Slot 0",
        "Slot 1",
        "Slot 2",
    ]
    assert len(m365.sent_items) == 4


def test_microsoft_connection_limit_can_apply_at_mail_from(pki, clock):
    """With connection_limit_at="mail" the connection beyond the limit is refused 432 at MAIL FROM instead."""
    m365 = MicrosoftStandIn(pki, M365_USER, M365_PASSWORD, max_connections=1, connection_limit_at="mail", clock=clock)
    with running(m365):
        holder = connect(m365, pki, M365_USER, M365_PASSWORD)
        second = connect(m365, pki, M365_USER, M365_PASSWORD)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(second, M365_USER)
        assert refused.value.smtp_code == 432 and m365.refusals[-1].stage == "mail"
        assert send(holder, M365_USER) == {}
        quit_quietly(holder)
        quit_quietly(second)
    assert len(m365.accepted) == 1 and m365.peak_sessions == 2


def test_microsoft_refuses_a_sender_it_does_not_own_and_never_rewrites(pki, clock):
    """Exchange refuses an envelope sender it does not own (5.7.60) and a From header (SendAsDenied); no pause."""
    alias = "invoices@company.test"
    m365 = MicrosoftStandIn(pki, M365_USER, M365_PASSWORD, aliases=[alias], clock=clock)
    with running(m365):
        connection = connect(m365, pki, M365_USER, M365_PASSWORD)
        with pytest.raises(smtplib.SMTPSenderRefused) as envelope:
            send(connection, "other@company.test")
        with pytest.raises(smtplib.SMTPDataError) as header:
            send(connection, M365_USER, from_header="other@company.test")
        assert send(connection, alias, from_header="Billing <%s>" % alias) == {}
        quit_quietly(connection)
    assert envelope.value.smtp_code == 550 and b"5.7.60" in envelope.value.smtp_error
    assert header.value.smtp_code == 554 and b"SendAsDenied" in header.value.smtp_error
    for error in (envelope.value, header.value):
        assert providers.classify_reply(error.smtp_code, error.smtp_error) is None
    assert smtp.mail_reason(550, envelope.value.smtp_error.decode()) == "send_as_denied"
    (accepted,) = m365.accepted
    assert accepted.from_header == "Billing <%s>" % alias and accepted.original_from is None
    assert m365.sent_items == [accepted.content]


def test_clock_may_return_epoch_seconds(pki):
    """A clock returning epoch seconds drives the windows like a datetime clock."""
    now = [epoch(datetime.datetime(2026, 1, 5, 9, 0, 0))]
    m365 = MicrosoftStandIn(pki, M365_USER, M365_PASSWORD, per_minute=1, clock=lambda: now[0])
    with running(m365):
        connection = connect(m365, pki, M365_USER, M365_PASSWORD)
        send(connection, M365_USER)
        with pytest.raises(smtplib.SMTPSenderRefused):
            send(connection, M365_USER)
        now[0] += 61
        connection = connect(m365, pki, M365_USER, M365_PASSWORD)
        assert send(connection, M365_USER) == {}
        quit_quietly(connection)
    assert [item.at for item in m365.accepted] == [now[0] - 61, now[0]]
    assert m365.window_frees_at(60, 1) == now[0] + 60


def test_reply_renders_multi_line_replies_like_the_providers():
    """A multi-line reply repeats its code with "-" on every line but the last, and smtplib's text joins them."""
    reply = Reply(452, ("4.5.3 first", "4.5.3 second"))
    assert reply.render() == "452-4.5.3 first\r\n452 4.5.3 second"
    assert reply.text == "4.5.3 first\n4.5.3 second"
