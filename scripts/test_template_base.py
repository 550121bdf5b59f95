# Finishes the base test template (scripts/test.sh, tests/odoo_runs.py): run by
# ensure_template_db in `odoo-bin shell` once base, mail and account are installed.
#
# The languages the product ships translations for, active with core's terms, so that
# installing smtp_invoicing on this layer loads its own fr/de/es terms by itself and the
# tests open every screen as a French, German or Spanish user would
# (tests/test_views_languages.py). Loaded here, under the module's template, an addon
# change does not load core's terms again. Users, partners and the company keep English.
LANGUAGES = ("fr_FR", "de_DE", "es_ES")
for code in LANGUAGES:
    env["res.lang"]._activate_lang(code)  # noqa: F821
env["ir.module.module"].search([("state", "=", "installed")])._update_translations(list(LANGUAGES))  # noqa: F821
env.cr.commit()  # noqa: F821
print("TEMPLATE SCRIPT DONE")
