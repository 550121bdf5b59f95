"""Every screen of the product opens in every language it ships: French, German, Spanish.

Odoo translates a view before it applies the views that inherit from it, so an inheriting
view that finds its place by English text works in English only. The base test template has
these languages active with core's and the product's terms (scripts/test_template_base.py).
"""

from odoo.tests import TransactionCase

LANGUAGES = ("fr_FR", "de_DE", "es_ES")
VIEW_TYPES = ("list", "form", "search")
# Wizards the product extends or opens, without a view of its own on them.
WIZARDS = ("account.move.send.wizard", "account.move.send.batch.wizard", "mail.compose.message")


class TestViewsInEveryLanguage(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        data = cls.env["ir.model.data"].search([("module", "=", "smtp_invoicing")])
        cls.actions = cls.env["ir.actions.act_window"].browse(
            data.filtered(lambda d: d.model == "ir.actions.act_window").mapped("res_id")
        )
        cls.views = cls.env["ir.ui.view"].browse(data.filtered(lambda d: d.model == "ir.ui.view").mapped("res_id"))

    def assertAllBuild(self, builds):
        """Run every ``(label, build)``; report all the screens that fail to build, not the first one only."""
        errors = []
        for label, build in builds:
            try:
                build()
            except Exception as error:  # a view that fails to build, whatever the reason
                errors.append(f"{label}: {error}")
        if errors:
            self.fail("\n".join(errors))

    def test_languages_carry_the_product_terms(self):
        """The product's own mailbox form reads differently in each shipped language than in English."""
        installed = [code for code, _name in self.env["res.lang"].get_installed()]
        form = self.env.ref("smtp_invoicing.smtp_invoicing_mailbox_view_form")
        mailboxes = self.env["smtp_invoicing.mailbox"]
        arch = {
            lang: mailboxes.with_context(lang=lang).get_views([(form.id, "form")])["views"]["form"]
            for lang in ("en_US", *LANGUAGES)
            if lang in installed
        }
        self.assertEqual(sorted(arch), sorted(("en_US", *LANGUAGES)))
        for lang in LANGUAGES:
            self.assertNotEqual(arch[lang]["arch"], arch["en_US"]["arch"], lang)

    def test_every_action_view_opens_in_every_language(self):
        """Each view of each window action of the product, its search view included, builds in fr, de and es."""
        self.assertTrue(self.actions)

        def build(action, lang):
            views = [(view_id or False, view_type) for view_id, view_type in action.views]
            views.append((action.search_view_id.id or False, "search"))
            return lambda: self.env[action.res_model].with_context(lang=lang).get_views(views)

        self.assertAllBuild(
            (f"{lang} {action.xml_id}", build(action, lang)) for lang in LANGUAGES for action in self.actions
        )

    def test_every_view_of_the_extended_models_opens_in_every_language(self):
        """The default list, form and search views of every model the product adds views to build in fr, de, es."""
        models = set(self.views.filtered(lambda v: v.type in VIEW_TYPES).mapped("model")) | set(WIZARDS)
        self.assertTrue(
            {"smtp_invoicing.mailbox", "ir.mail_server", "mail.template", "res.config.settings", "account.move"}
            <= models
        )

        def build(model, lang):
            return lambda: self.env[model].with_context(lang=lang).get_views([(False, t) for t in VIEW_TYPES])

        self.assertAllBuild((f"{lang} {model}", build(model, lang)) for lang in LANGUAGES for model in sorted(models))

    def test_every_product_view_opens_in_every_language(self):
        """Each view the product defines or extends, combined with all its inheriting views, builds in fr, de, es."""
        self.assertTrue(self.views)

        def build(view, lang):
            root = view
            while root.mode == "extension" and root.inherit_id:
                root = root.inherit_id
            if root.type == "qweb":
                return root.with_context(lang=lang)._get_combined_arch
            return lambda: self.env[root.model].with_context(lang=lang).get_views([(root.id, root.type)])

        self.assertAllBuild((f"{lang} {view.xml_id}", build(view, lang)) for lang in LANGUAGES for view in self.views)
