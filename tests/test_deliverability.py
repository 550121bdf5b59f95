"""Deliverability hint: SPF and DMARC read from a real DNS server on 127.0.0.1."""

import time

import pytest

from odoo.tests import Form

from odoo.addons.smtp_invoicing.lib import deliverability

from common import MailboxCase
from dns_server import DnsServer

GMAIL_SPF = "v=spf1 include:_spf.google.com ~all"


@pytest.fixture(autouse=True)
def _fresh_cache():
    deliverability.clear_cache()
    yield
    deliverability.clear_cache()


def check(server, email, host="smtp.gmail.com", timeout=2.0):
    return deliverability.check(email, host, server.nameservers, timeout)


def test_gmail_workspace_domain_with_spf_and_dmarc_is_good():
    """A domain whose SPF includes Google's and which publishes DMARC is good for a Gmail mailbox."""
    records = {
        "acme-billing.fr": {"TXT": ["google-site-verification=abc", GMAIL_SPF]},
        "_dmarc.acme-billing.fr": {"TXT": ["v=DMARC1; p=quarantine; rua=mailto:dmarc@acme-billing.fr"]},
    }
    with DnsServer(records) as server:
        report = check(server, "factures@acme-billing.fr")
    assert (report.level, report.spf, report.dmarc, report.dmarc_policy) == ("good", "pass", "present", "quarantine")


def test_nested_include_and_redirect_are_followed():
    """The provider's include is found through nested includes and a redirect."""
    records = {
        "acme-billing.fr": {"TXT": ["v=spf1 redirect=_spf.acme-billing.fr"]},
        "_spf.acme-billing.fr": {"TXT": ["v=spf1 ip4:198.51.100.0/24 include:spf.partner.fr -all"]},
        "spf.partner.fr": {"TXT": ["v=spf1 include:spf.protection.outlook.com -all"]},
        "_dmarc.acme-billing.fr": {"TXT": ["v=DMARC1; p=reject"]},
    }
    with DnsServer(records) as server:
        report = check(server, "billing@acme-billing.fr", host="smtp.office365.com")
    assert (report.level, report.spf) == ("good", "pass")


def test_custom_server_inside_an_ip4_range_passes():
    """A self-hosted server passes when its address is in an ip4: range of the SPF record."""
    records = {
        "acme-billing.fr": {"TXT": ["v=spf1 ip4:203.0.113.0/28 -all"]},
        "mail.hoster.net": {"A": ["203.0.113.5"]},
    }
    with DnsServer(records) as server:
        report = check(server, "billing@acme-billing.fr", host="mail.hoster.net")
    assert (report.level, report.spf, report.dmarc) == ("warning", "pass", "missing")


def test_spf_that_does_not_list_the_provider_is_a_warning():
    """An SPF record naming only other senders is a warning, not a pass."""
    records = {
        "acme-billing.fr": {"TXT": ["v=spf1 include:mx.ovh.com -all"]},
        "mx.ovh.com": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
        "_dmarc.acme-billing.fr": {"TXT": ["v=DMARC1; p=none"]},
    }
    with DnsServer(records) as server:
        report = check(server, "billing@acme-billing.fr")
    assert (report.level, report.spf) == ("warning", "not_listed")


def test_missing_and_duplicate_spf_records_are_at_risk():
    """No SPF record, or two of them, puts deliverability at risk."""
    records = {
        "no-spf.fr": {"TXT": ["some-verification=1"]},
        "two-spf.fr": {"TXT": [GMAIL_SPF, "v=spf1 mx -all"]},
    }
    with DnsServer(records) as server:
        missing = check(server, "billing@no-spf.fr")
        invalid = check(server, "billing@two-spf.fr")
        nxdomain = check(server, "billing@nowhere-at-all.fr")
    assert (missing.level, missing.spf, missing.dmarc) == ("bad", "missing", "missing")
    assert (invalid.level, invalid.spf) == ("bad", "invalid")
    assert (nxdomain.level, nxdomain.spf) == ("bad", "missing")


def test_silent_dns_gives_unknown_within_the_timeout_and_is_cached():
    """A DNS server that never answers yields 'unknown' within the timeout, and is not asked again at once."""
    with DnsServer(silent=["slow-dns.fr"]) as server:
        started = time.monotonic()
        report = check(server, "billing@slow-dns.fr", timeout=0.5)
        elapsed = time.monotonic() - started
        again = check(server, "billing@slow-dns.fr", timeout=0.5)
        asked = len(server.queries)
    assert (report.level, report.reason) == ("unknown", "dns_error")
    assert elapsed < 3
    assert again is report
    assert asked >= 1 and asked == len([q for q in server.queries if q[0] == "slow-dns.fr."])


def test_results_are_cached_and_reserved_domains_only_asked_to_configured_nameservers():
    """A second check is served from the cache; example and .test domains never go to the system's resolver."""
    with DnsServer({"acme-billing.fr": {"TXT": [GMAIL_SPF]}, "shop.example.com": {"TXT": [GMAIL_SPF]}}) as server:
        first = check(server, "billing@acme-billing.fr")
        count = len(server.queries)
        second = check(server, "billing@acme-billing.fr")
        assert second == first and len(server.queries) == count
        assert check(server, "billing@shop.example.com").spf == "pass"
    reserved = [
        deliverability.check(email, "smtp.gmail.com") for email in ("a@example.com", "b@x.test", "c@x.example.org")
    ]
    assert {r.reason for r in reserved} == {"reserved"}


def test_public_mailbox_domains_have_nothing_to_configure():
    """Gmail, GMX, Orange, Proton... addresses: nothing to configure, no DNS asked, no record to add."""
    with DnsServer({}) as server:
        reports = [
            check(server, email)
            for email in ("acme.factures@gmail.com", "acme@gmx.de", "acme@orange.fr", "acme@proton.me", "a@yahoo.fr")
        ]
        asked = len(server.queries)
        company = check(server, "factures@acme-billing.fr")
    assert {(report.level, report.reason) for report in reports} == {("good", "public")}
    assert asked == 0
    assert (company.level, company.reason) == ("bad", None)


def test_spf_advice_names_a_mechanism_that_can_work():
    """Providers get their include, public IP hosts an ip4:/ip6: range, localhost and private addresses none."""
    assert deliverability.spf_mechanism("smtp.gmail.com") == "include:_spf.google.com"
    assert deliverability.spf_mechanism("80.67.169.12") == "ip4:80.67.169.12"
    assert deliverability.spf_mechanism("2001:4860:4860::8888") == "ip6:2001:4860:4860::8888"
    for host in ("localhost", "127.0.0.1", "::1", "192.168.1.10", "10.0.0.2"):
        assert deliverability.spf_mechanism(host) is None, host


def test_parse_nameservers():
    """Nameserver settings accept ip, ip:port and [ipv6]:port."""
    assert deliverability.parse_nameservers("127.0.0.1:5353, ::1, [::1]:54") == [
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("::1", 54),
    ]
    assert deliverability.parse_nameservers("") == []
    with pytest.raises(ValueError):
        deliverability.parse_nameservers("dns.example.com")


class TestDeliverabilityField(MailboxCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dns = DnsServer(
            {
                "acme-billing.fr": {"TXT": [GMAIL_SPF]},
                "_dmarc.acme-billing.fr": {"TXT": ["v=DMARC1; p=reject"]},
                "no-spf.fr": {"TXT": []},
            }
        )
        cls.dns.__enter__()
        cls.addClassCleanup(cls.dns.__exit__, None, None, None)
        cls.env["ir.config_parameter"].sudo().set_param("smtp_invoicing.dns_nameservers", f"127.0.0.1:{cls.dns.port}")

    def setUp(self):
        super().setUp()
        deliverability.clear_cache()

    def test_form_shows_spf_and_dmarc_of_the_sender_domain(self):
        """The mailbox shows 'good' for a domain allowing Gmail, and 'at risk' with a fix for one without SPF."""
        mailbox = self.create_mailbox(sender_email="factures@acme-billing.fr", smtp_host="smtp.gmail.com")
        self.assertEqual(mailbox.smtp_invoicing_deliverability, "good")
        self.assertIn("allows this mailbox", mailbox.smtp_invoicing_deliverability_message)
        self.assertIn("“reject”", mailbox.smtp_invoicing_deliverability_message)
        view = self.env.ref("smtp_invoicing.smtp_invoicing_mailbox_view_form")
        with Form(mailbox, view=view) as form:
            form.sender_email = "factures@no-spf.fr"
            self.assertEqual(form.smtp_invoicing_deliverability, "bad")
            self.assertIn("v=spf1 include:_spf.google.com ~all", form.smtp_invoicing_deliverability_message)

    def test_form_gives_no_record_to_add_for_public_domains_ip_or_localhost_hosts(self):
        """A Gmail address gets "nothing to configure"; an IP host gets ip4:, localhost no include: advice."""
        mailbox = self.create_mailbox(sender_email="acme.factures@gmail.com", smtp_host="smtp.gmail.com")
        self.assertEqual(mailbox.smtp_invoicing_deliverability, "good")
        self.assertIn("nothing to configure", mailbox.smtp_invoicing_deliverability_message)
        self.assertNotIn("v=spf1", mailbox.smtp_invoicing_deliverability_message)
        self.assertNotIn("DMARC1", mailbox.smtp_invoicing_deliverability_message)
        mailbox.write({"sender_email": "factures@no-spf.fr", "smtp_host": "80.67.169.12"})
        self.assertIn("v=spf1 ip4:80.67.169.12 ~all", mailbox.smtp_invoicing_deliverability_message)
        self.assertNotIn("include:", mailbox.smtp_invoicing_deliverability_message)
        mailbox.write({"sender_email": "factures@acme-billing.fr", "smtp_host": "localhost"})
        self.assertEqual(mailbox.smtp_invoicing_deliverability, "warning")
        self.assertNotIn("include:", mailbox.smtp_invoicing_deliverability_message)
