#!/usr/bin/env bash
# Run the whole test suite: a fresh database with smtp_invoicing installed
# (Odoo's own install validates every view and data file), then pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/test_sending.py -x
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap

DB="${SMTP_INVOICING_TEST_DB:-smtp_invoicing_test}"
# the filestore must be the one the database was installed with
DATA_DIR="${SMTP_INVOICING_TEST_DATA_DIR:-/var/tmp/smtp_invoicing_test_data}"
export SMTP_INVOICING_TEST_DB="$DB" SMTP_INVOICING_TEST_DATA_DIR="$DATA_DIR" ODOO_SRC

if [ "${SMTP_INVOICING_REUSE_DB:-0}" != 1 ]; then
    log "creating database $DB with smtp_invoicing installed"
    dropdb -h 127.0.0.1 -U root --if-exists "$DB"
    rm -rf "$DATA_DIR"
    mkdir -p "$DATA_DIR"
    "$VENV/bin/python" "$ODOO_SRC/odoo-bin" \
        --addons-path "$ODOO_SRC/odoo/addons,$ROOT" \
        --db_host 127.0.0.1 --db_user root --data-dir "$DATA_DIR" \
        -d "$DB" -i smtp_invoicing --without-demo=all --stop-after-init \
        --log-level=warn --max-cron-threads=0 --http-port=0 2>&1 \
        | grep -v "Running as user 'root'" || true
    psql -h 127.0.0.1 -U root -d "$DB" -tAc \
        "select state from ir_module_module where name='smtp_invoicing'" | grep -qx installed \
        || { log "installation of smtp_invoicing failed"; exit 1; }
fi

cd "$ROOT"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -o "testpaths=tests" "$@"
