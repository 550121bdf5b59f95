"""Translations: the committed .pot matches what Odoo exports, and the .po files cover it."""

import io
import os
import re

import polib

from odoo.tests import TransactionCase, new_test_user
from odoo.tools.translate import trans_export

from common import MailboxCase

I18N = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "smtp_invoicing", "i18n")
LANGUAGES = ("fr", "de", "es")
COMPLETE = LANGUAGES  # every shipped language is translated in full
PLACEHOLDER = re.compile(r"%\(\w+\)s|%[sd]")


def committed(name):
    return polib.pofile(os.path.join(I18N, name))


def msgids(catalog):
    return {entry.msgid for entry in catalog if entry.msgid and not entry.obsolete}


class TestTranslations(TransactionCase):
    def test_pot_matches_odoo_export(self):
        """Every user-visible term Odoo exports for the module is in the committed .pot, and nothing else."""
        buffer = io.BytesIO()
        trans_export(None, ["smtp_invoicing"], buffer, "po", self.env.cr)
        exported = msgids(polib.pofile(buffer.getvalue().decode()))
        pot = msgids(committed("smtp_invoicing.pot"))
        hint = "run scripts/export_pot.sh, then fill the new msgstr of the .po files"
        self.assertFalse(sorted(exported - pot), f"terms missing from smtp_invoicing.pot: {hint}")
        self.assertFalse(sorted(pot - exported), f"stale terms in smtp_invoicing.pot: {hint}")

    def test_po_files_cover_the_pot_with_the_same_placeholders(self):
        """Each .po has every msgid of the .pot, translated in full, and keeps the placeholders."""
        pot = msgids(committed("smtp_invoicing.pot"))
        for lang in LANGUAGES:
            catalog = committed(f"{lang}.po")
            self.assertFalse(sorted(pot - msgids(catalog)), f"{lang}.po misses msgids: run scripts/export_pot.sh")
            for entry in catalog:
                if lang in COMPLETE:
                    self.assertTrue(entry.msgstr, f"{lang}.po: untranslated {entry.msgid!r}")
                if entry.msgstr:
                    self.assertEqual(
                        sorted(PLACEHOLDER.findall(entry.msgid)),
                        sorted(PLACEHOLDER.findall(entry.msgstr)),
                        f"{lang}.po: placeholders differ for {entry.msgid!r}",
                    )


class TestFrenchInterface(MailboxCase):
    def test_verification_messages_are_in_french(self):
        """A French-speaking administrator reads the verification outcome in French."""
        self.env["res.lang"]._activate_lang("fr_FR")
        mailbox = self.create_mailbox().with_context(lang="fr_FR")
        mailbox.action_verify()
        self.assertEqual(
            mailbox.verification_message,
            "Vérification demandée ; le résultat s'affiche ici dans quelques secondes.",
        )
        self.env["ir.module.module"]._load_module_terms(["smtp_invoicing"], ["fr_FR"], overwrite=True)
        labels = dict(mailbox._fields["verification_state"]._description_selection(mailbox.env))
        self.assertEqual(labels["pending"], "En attente")

    def test_scheduled_check_writes_its_result_in_the_requesters_language(self):
        """The scheduled action (English) writes a French administrator's Verified and Failed in French."""
        french_admin = new_test_user(
            self.env, login="admin-fr", groups="base.group_user,base.group_system", lang="fr_FR"
        )
        verified = self.create_mailbox(name="Vérifiée")
        refused = self.create_mailbox(name="Refusée", smtp_pass="not-the-password")
        (verified | refused).with_user(french_admin).action_verify()
        self.assertNotEqual(self.env.lang, "fr_FR")  # the scheduled action runs in English
        self.run_verification_cron()
        self.assertEqual(verified.verification_state, "verified", verified.verification_message)
        self.assertTrue(
            verified.verification_message.startswith("Vérifiée : Odoo s'est connecté de façon sécurisée"),
            verified.verification_message,
        )
        self.assertEqual(refused.verification_state, "failed")
        self.assertTrue(
            refused.verification_message.startswith("L'identifiant ou le mot de passe a été refusé."),
            refused.verification_message,
        )
