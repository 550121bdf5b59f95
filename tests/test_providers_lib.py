"""smtp_invoicing/lib/providers.py: provider profiles, the replies that mean "slow down", rolling budgets
(pure, no Odoo)."""

import dataclasses
import datetime
import inspect
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from pure_lib import lib

providers = lib("providers")
presets = lib("presets")

GMAIL_DAILY = (
    "5.4.5 Daily user sending limit exceeded. For more information on Gmail\n"
    "5.4.5 sending limits go to\n"
    "5.4.5  https://support.google.com/a/answer/166852 d2e1a72fcca58-7a0b1c2d3e4f - gsmtp"
)
GMAIL_RECIPIENTS = (
    "4.5.3 Your message has too many recipients. For more information regarding\n"
    "4.5.3 Google's sending limits, visit\n"
    "4.5.3  https://support.google.com/mail/answer/6592 a640c23a62f3a-ab6 - gsmtp"
)
GMAIL_LOGINS = (
    "4.7.0 Too many login attempts, please try again later. For more information, go to\n"
    "4.7.0  https://support.google.com/mail/answer/7126229 5b1f17b1804b1-43 - gsmtp"
)
M365_QUOTA = (
    "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a "
    "permanent exception with message [BeginDiagnosticData]Cannot submit message.[EndDiagnosticData]"
)

SLOW_DOWNS = [
    # Gmail, as smtplib hands the multi-line reply over, then older wording, bytes and the SMTP relay
    (550, GMAIL_DAILY, "daily_limit", 86400),
    (550, b"5.4.5 Daily user sending quota exceeded. s124sm6149838wme.29 - gsmtp", "daily_limit", 86400),
    (550, "5.4.5 Daily SMTP relay sending limit exceeded for customer C01abc", "daily_limit", 86400),
    (554, M365_QUOTA, "daily_limit", 86400),
    (
        550,
        "5.1.90 Your message can't be sent because you've reached your daily limit for message recipients",
        "daily_limit",
        86400,
    ),
    (421, "4.4.2 Message submission rate for this client has exceeded the configured limit", "rate_limit", 60),
    (
        450,
        "4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional "
        "messages from being delivered. Please resend your message at a later time.",
        "rate_limit",
        60,
    ),
    (450, "4.2.1 Peak SMTP relay limit exceeded for customer C01abc", "rate_limit", 60),
    (451, "4.7.1 Rate limited, try again later", "rate_limit", 60),
    (451, "4.7.0 Too many messages, slow down", "rate_limit", 60),
    (
        432,
        "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded [Hostname=DM5SPR00MB2471.namprd08]",
        "connection_limit",
        60,
    ),
    (432, "4.3.2 Concurrent connections limit exceeded.", "connection_limit", 60),
    (454, GMAIL_LOGINS, "login_rate", 900),
    (421, "4.7.0 Try again later, closing connection. (MAIL) 5b1f17b1804b1-4 - gsmtp", "try_later", 300),
    (421, "4.7.0 Try again later, closing connection. (EHLO)", "try_later", 300),
    (452, GMAIL_RECIPIENTS, "too_many_recipients", 0),
    (452, "4.5.3 Error: too many recipients", "too_many_recipients", 0),
    # no enhanced status code: only the providers' exact words
    (452, "Too many recipients", "too_many_recipients", 0),
    (432, "STOREDRV.ClientSubmit; sender thread limit exceeded", "connection_limit", 60),
    (550, "Daily user sending quota exceeded.", "daily_limit", 86400),
    (421, "Message submission rate for this client has exceeded the configured limit", "rate_limit", 60),
    (454, "Too many login attempts, please try again later.", "login_rate", 900),
]

NOT_SLOW_DOWNS = [
    (250, "2.0.0 OK  1765000000 d2e1a72fcca58-7a0b - gsmtp"),
    (550, "5.1.1 The email account that you tried to reach does not exist. Please try double-checking"),
    (550, "5.1.1 <x@customer.test>: Recipient address rejected: User unknown in local recipient table"),
    # an enhanced code no kind lists rules out the words
    (550, "5.1.1 user unknown; daily sending limit exceeded for this recipient"),
    (452, "4.2.2 The email account that you tried to reach is over quota"),
    (450, "4.2.1 Mailbox disabled, not accepting messages"),
    (550, "5.4.5 Mail system congestion"),
    (421, "4.7.0 TLS required"),
    (421, "4.7.0 Must issue a STARTTLS command first, try again later"),
    (454, "4.7.0 TLS not available due to temporary reason"),
    (454, "4.7.0 Cannot authenticate due to a temporary system problem. Try again later."),
    (421, "4.4.2 Connection dropped due to SocketError"),
    (421, "4.4.2 connection dropped"),
    (421, "4.3.2 Service not available, closing transmission channel"),
    (432, "4.3.2 STOREDRV.Deliver; recipient thread limit exceeded"),
    (451, "4.7.0 Temporary server error. Please try again later. PRX4"),
    (554, "5.2.0 STOREDRV.Submission.Exception:OutboundSpamException; Failed to process message"),
    (550, "5.7.60 SMTP; Client does not have permissions to send as this sender"),
    (554, "5.2.252 SendAsDenied; a@b not allowed to send as c@d; STOREDRV.Submission.Exception:SendAsDenied"),
    (535, "5.7.8 Username and Password not accepted."),
    (421, "Service not available, closing transmission channel"),
    # the reply code and the enhanced code disagree about the class
    (550, "4.4.2 Message submission rate for this client has exceeded the configured limit"),
    (452, "5.4.5 Daily user sending limit exceeded"),
]


def test_gmail_consumer_accounts_get_500_a_day():
    """gmail.com and googlemail.com accounts (any case) get Gmail's 500 messages a day and 100 recipients."""
    for user in ("someone@gmail.com", "Someone@GoogleMail.com", "someone@GMAIL.COM"):
        profile = providers.profile_of("gmail", smtp_user=user)
        assert profile is providers.GMAIL, user
    assert (providers.GMAIL.daily_messages, providers.GMAIL.recipients_per_message) == (500, 100)


def test_gmail_other_domains_are_google_workspace():
    """A Gmail account on any other domain is Google Workspace: 2,000 messages and 10,000 recipients a day."""
    profile = providers.profile_of("gmail", sender_email="billing@company.test", smtp_user="billing@company.test")
    assert profile is providers.GOOGLE_WORKSPACE
    assert (profile.daily_messages, profile.daily_recipients, profile.recipients_per_message) == (2000, 10000, 100)
    assert profile.label == "Google Workspace"


def test_gmail_budget_is_the_signed_in_accounts():
    """The SMTP user decides between Gmail and Workspace; the sender address only when the user is no address."""
    assert providers.profile_of("gmail", "alias@gmail.com", "billing@company.test") is providers.GOOGLE_WORKSPACE
    assert providers.profile_of("gmail", "billing@company.test", "me@gmail.com") is providers.GMAIL
    assert providers.profile_of("gmail", "billing@company.test", "billing") is providers.GOOGLE_WORKSPACE
    assert providers.profile_of("gmail", "billing@company.test", None) is providers.GOOGLE_WORKSPACE


def test_gmail_without_any_address_gets_the_smaller_budget():
    """With neither SMTP user nor sender address, Gmail's smaller consumer budget is the safe guess."""
    assert providers.profile_of("gmail") is providers.GMAIL
    assert providers.profile_of("gmail", "", "not-an-address") is providers.GMAIL


def test_gmail_files_sent_mail_and_rewrites_from():
    """Both Gmail profiles say the provider files Sent Mail itself and rewrites a From it does not own."""
    for profile in (providers.GMAIL, providers.GOOGLE_WORKSPACE):
        assert profile.files_sent_copy is True and profile.rewrites_from is True
        assert profile.per_minute is None and profile.connections is None
        assert "166852" in profile.source


def test_microsoft_365_profile():
    """Microsoft 365: 30 messages a minute, 3 connections, 10,000 recipients a day, Sent Items filed, no rewrite."""
    profile = providers.profile_of("microsoft365", "billing@company.test", "billing@company.test")
    assert profile is providers.MICROSOFT_365
    assert (profile.per_minute, profile.connections, profile.daily_recipients) == (30, 3, 10000)
    assert profile.daily_messages is None
    assert profile.files_sent_copy is True and profile.rewrites_from is False


def test_outlook_com_profile():
    """Outlook.com: about 300 recipients a day, otherwise the same server behaviour as Microsoft 365."""
    profile = providers.profile_of("outlook", smtp_user="someone@outlook.com")
    assert profile is providers.OUTLOOK_COM
    assert profile.daily_recipients == 300
    assert (profile.per_minute, profile.connections, profile.files_sent_copy) == (30, 3, True)


def test_custom_and_ovh_have_no_known_limits():
    """Custom and OVH have no limits; OVH files no Sent copy, a custom server is unknown (None)."""
    limits = ("daily_messages", "daily_recipients", "per_minute", "connections", "recipients_per_message")
    for code in ("custom", "ovh"):
        profile = providers.profile_of(code, "a@b.test", "a@b.test")
        assert all(getattr(profile, name) is None for name in limits), code
    assert providers.profile_of("custom").files_sent_copy is None
    assert providers.profile_of("ovh").files_sent_copy is False


def test_unknown_or_empty_preset_is_custom():
    """An unknown code, False (an empty Odoo selection) or None is a custom server."""
    for code in ("postfix", False, None, ""):
        assert providers.profile_of(code) is providers.CUSTOM


def test_profile_and_slowdown_are_frozen():
    """Profiles and SlowDowns cannot be changed in place (shared module constants)."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        providers.GMAIL.daily_messages = 10
    slow = providers.SlowDown("rate_limit", 60)
    assert slow.split_recipients is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        slow.seconds = 1
    assert [field.name for field in dataclasses.fields(providers.Profile)] == [
        "daily_messages",
        "daily_recipients",
        "per_minute",
        "connections",
        "recipients_per_message",
        "files_sent_copy",
        "rewrites_from",
        "label",
        "source",
    ]


def test_every_preset_has_a_profile_and_our_sent_copy_is_its_complement():
    """Each preset switches our own Sent copy on exactly when its provider does not file one itself."""
    for code, preset in presets.PRESETS.items():
        profile = providers.profile_of(code, "billing@company.test", "billing@company.test")
        assert profile is not providers.CUSTOM, code
        assert profile.files_sent_copy is not None, code
        assert preset["sent_copy"] is (not profile.files_sent_copy), code
    assert {code for code, _label in presets.SELECTION} == {*presets.PRESETS, "custom"}


def test_microsoft_presets_no_longer_switch_our_sent_copy_on():
    """Microsoft 365 and Outlook.com presets leave our Sent copy off (Exchange files it); OVH keeps it on."""
    assert presets.preset_values("microsoft365")["smtp_invoicing_sent_copy"] is False
    assert presets.preset_values("outlook")["smtp_invoicing_sent_copy"] is False
    assert presets.preset_values("gmail")["smtp_invoicing_sent_copy"] is False
    assert presets.preset_values("ovh")["smtp_invoicing_sent_copy"] is True
    assert presets.preset_values("custom") == {}


def test_preset_functions_keep_their_signatures():
    """presets.preset_values(code) and preset_of_host(host) keep their signatures and results."""
    assert list(inspect.signature(presets.preset_values).parameters) == ["code"]
    assert list(inspect.signature(presets.preset_of_host).parameters) == ["host"]
    assert presets.preset_of_host(" SMTP.Office365.com ") == "microsoft365"
    assert presets.preset_of_host("smtp.example.test") == "custom"
    assert presets.preset_values("microsoft365")["smtp_host"] == "smtp.office365.com"


@pytest.mark.parametrize(("code", "text", "kind", "seconds"), SLOW_DOWNS)
def test_provider_replies_that_mean_slow_down(code, text, kind, seconds):
    """Each documented provider reply maps to its kind of pause and the time it asks for."""
    slow = providers.classify_reply(code, text)
    assert slow == providers.SlowDown(kind, seconds, split_recipients=kind == "too_many_recipients")


@pytest.mark.parametrize(("code", "text"), NOT_SLOW_DOWNS)
def test_refusals_and_acceptances_are_not_slow_downs(code, text):
    """Real refusals, acceptances, TLS demands and look-alike codes with other meanings are no pause."""
    assert providers.classify_reply(code, text) is None


def test_too_many_recipients_asks_to_split_at_once():
    """452 4.5.3 asks to split the recipients, without any pause."""
    slow = providers.classify_reply(452, GMAIL_RECIPIENTS)
    assert slow.split_recipients is True and slow.seconds == 0
    assert (
        providers.classify_reply(
            421, "4.4.2 Message submission rate for this client has exceeded the configured limit"
        ).split_recipients
        is False
    )


def test_classify_reply_takes_what_smtplib_gives():
    """Codes as strings and bytes texts are read; junk codes and empty texts give None."""
    assert providers.classify_reply("432", b"4.3.2 Concurrent connections limit exceeded.").kind == "connection_limit"
    assert providers.classify_reply(None, GMAIL_DAILY) is None
    assert providers.classify_reply("x", GMAIL_DAILY) is None
    assert providers.classify_reply(-1, "Connection unexpectedly closed") is None
    assert providers.classify_reply(550, None) is None
    assert providers.classify_reply(550, "") is None


def test_enhanced_status_reads_the_code_heading_a_line():
    """The enhanced status code is read at the start of the text or of one of its lines, not anywhere."""
    assert providers.enhanced_status(GMAIL_DAILY) == "5.4.5"
    assert providers.enhanced_status("550-5.1.1 The email account") == "5.1.1"
    assert providers.enhanced_status("Relayed 1.2.3 times\n4.7.1 Rate limited") == "4.7.1"
    assert providers.enhanced_status("5.1.90 Your message can't be sent") == "5.1.90"
    assert providers.enhanced_status("Version 1.2.3 is out") is None
    assert providers.enhanced_status(None) is None


def test_kinds_and_waits_are_the_documented_ones():
    """Every kind has its wait: a day, a minute, a minute, 15 minutes, 5 minutes, none."""
    assert providers.WAIT_SECONDS == {
        "daily_limit": 86400,
        "rate_limit": 60,
        "connection_limit": 60,
        "login_rate": 900,
        "try_later": 300,
        "too_many_recipients": 0,
    }
    assert set(providers.KINDS) == set(providers.WAIT_SECONDS)


# --------------------------------------------------------------------------- rolling budgets

NOW = datetime.datetime(2026, 3, 2, 12, 0, 0)
HOUR = 3600


def _at(hours_ago):
    return NOW - datetime.timedelta(hours=hours_ago)


def test_rolling_wait_is_zero_while_the_budget_has_room():
    """With room left in the rolling day, nothing to wait."""
    events = [(_at(5), 1), (_at(1), 1)]
    assert providers.rolling_wait(events, 3, NOW) == 0
    assert providers.rolling_wait(events, None, NOW) == 0


def test_rolling_wait_shortens_a_daily_limit_to_when_the_oldest_frees():
    """A full day frees when its oldest message is 24 h old: the 24 h of a daily_limit become the real wait."""
    events = [(_at(20), 1), (_at(10), 1), (_at(2), 1)]
    assert providers.rolling_wait(events, 3, NOW) == 4 * HOUR
    # two more need the two oldest gone
    assert providers.rolling_wait(events, 3, NOW, need=2) == 14 * HOUR
    # an event older than the window no longer counts
    assert providers.rolling_wait([(_at(25), 5), *events], 3, NOW) == 4 * HOUR


def test_rolling_wait_counts_recipients_and_takes_epoch_seconds():
    """Counts are recipients when the budget is; epoch seconds and naive UTC datetimes are the same time."""
    now = NOW.replace(tzinfo=datetime.timezone.utc).timestamp()
    events = [(now - 50, 20), (now - 10, 5)]  # 25 recipients in the last minute
    assert providers.rolling_wait(events, 30, now, window=60, need=5) == 0
    assert providers.rolling_wait(events, 30, now, window=60, need=6) == 10
    assert providers.rolling_wait(events, 30, NOW, window=60, need=6) == 10


def test_rolling_wait_never_fits_more_than_the_limit():
    """A need larger than the whole budget never fits (None), however long one waits."""
    assert providers.rolling_wait([], 3, NOW, need=4) is None
