#!/usr/bin/env bash
# Run the whole test suite: a fresh database with smtp_invoicing installed
# (Odoo's own install validates every view and data file), then pytest.
# The installed database is cached as the template <database>_template, built on
# <database>_template_base (Odoo with smtp_invoicing's dependencies), each rebuilt
# only when Odoo or, for the first, the addon changed; see ensure_template_db.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/test_sending.py -x
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap

DB="${SMTP_INVOICING_TEST_DB:-smtp_invoicing_test}"
# the filestore must be the one the database was installed with; the templates' are kept there
DATA_DIR="${SMTP_INVOICING_TEST_DATA_DIR:-/var/tmp/smtp_invoicing_test_data}"
export SMTP_INVOICING_TEST_DB="$DB" SMTP_INVOICING_TEST_DATA_DIR="$DATA_DIR" ODOO_SRC

if [ "${SMTP_INVOICING_REUSE_DB:-0}" != 1 ]; then
    # installed once per addon and Odoo version (ensure_template_db), then copied in seconds
    ensure_template_db "${DB}_template_base" "$DATA_DIR" "$BASE_MODULES"
    ensure_template_db "${DB}_template" "$DATA_DIR" smtp_invoicing "${DB}_template_base" "$TEST_TEMPLATE_SCRIPT"
    log "creating database $DB as a copy of ${DB}_template"
    copy_template_db "${DB}_template" "$DB" "$DATA_DIR"
fi

cd "$ROOT"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -o "testpaths=tests" "$@"
