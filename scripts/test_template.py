# Finishes the test template (scripts/test.sh): run by ensure_template_db in `odoo-bin shell`
# once the module is installed, so every test database copied from the template has it.
#
# The asset bundles the browser tests load, compiled once here: a test's own transaction is
# rolled back, so without them every HttpCase class compiled the same bundles again (about
# 12 s of CPU per tour). The bundles are named by a hash of their files' content: an addon
# change rebuilds the template, and with it these.
BUNDLES = (
    ("web.assets_web", ("css", "js")),
    ("web.assets_web_print", ("css",)),
    ("web.assets_tests", ("js",)),
    ("bus.websocket_worker_assets", ("js",)),
)
for name, kinds in BUNDLES:
    bundle = env["ir.qweb"]._get_asset_bundle(name, css="css" in kinds, js="js" in kinds)  # noqa: F821
    for kind in kinds:
        getattr(bundle, kind)()
env.cr.commit()  # noqa: F821
print("TEMPLATE SCRIPT DONE")
