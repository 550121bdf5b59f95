#!/usr/bin/env bash
# Run the whole test suite: a fresh database with smtp_invoicing installed
# (Odoo's own install validates every view and data file), then pytest.
# The installed database is cached as the template <database>_template, built on
# <database>_template_base (Odoo with smtp_invoicing's dependencies), each rebuilt
# only when Odoo or, for the first, the addon changed; see ensure_template_db.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/test_sending.py -x
# The tests run in SMTP_INVOICING_TEST_WORKERS pytest-xdist workers (default: two per core, at most 8),
# each on its own copy <database>_gw0, _gw1... of the template; 0 runs them in this process
# on <database> itself.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap

DB="${SMTP_INVOICING_TEST_DB:-smtp_invoicing_test}"
# the filestore must be the one the database was installed with; the templates' are kept there
DATA_DIR="${SMTP_INVOICING_TEST_DATA_DIR:-/var/tmp/smtp_invoicing_test_data}"
# twice the cores: a good part of the suite waits on sockets, timeouts and other processes
WORKERS="${SMTP_INVOICING_TEST_WORKERS:-$(( $(nproc) * 2 > 8 ? 8 : $(nproc) * 2 ))}"
export SMTP_INVOICING_TEST_DB="$DB" SMTP_INVOICING_TEST_DATA_DIR="$DATA_DIR" ODOO_SRC

if [ "$WORKERS" = 0 ]; then
    databases=("$DB")
    parallel=(-p no:xdist)
else
    # a worker's database is named after it (tests/conftest.py: DB_NAME); whole files go to one
    # worker (they share class fixtures and scratch databases), the slowest first (SLOW_FILES)
    databases=()
    for ((i = 0; i < WORKERS; i++)); do databases+=("${DB}_gw$i"); done
    parallel=(-n "$WORKERS" --dist loadfile --no-loadscope-reorder)
fi
if [ "${SMTP_INVOICING_REUSE_DB:-0}" != 1 ]; then
    # installed once per addon and Odoo version (ensure_template_db), then copied in seconds
    ensure_template_db "${DB}_template_base" "$DATA_DIR" "$BASE_MODULES" "" "$BASE_TEMPLATE_SCRIPT"
    ensure_template_db "${DB}_template" "$DATA_DIR" smtp_invoicing "${DB}_template_base" "$TEST_TEMPLATE_SCRIPT"
    for database in "${databases[@]}"; do
        log "creating database $database as a copy of ${DB}_template"
        copy_template_db "${DB}_template" "$database" "$DATA_DIR"
    done
fi

cd "$ROOT"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -o "testpaths=tests" "${parallel[@]}" "$@"
