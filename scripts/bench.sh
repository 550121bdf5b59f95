#!/usr/bin/env bash
# Run one benchmark: scripts/bench.sh verify|send|limit|bounces
# The module is installed once in a template database (again whenever the addon
# changes); every run starts from a fresh copy of it, named smtp_invoicing_bench.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

NAME="${1:-}"
case "$NAME" in
    verify|send|limit|bounces) ;;
    *) echo "usage: $0 verify|send|limit|bounces" >&2; exit 2 ;;
esac
bootstrap

DB="${SMTP_INVOICING_BENCH_DB:-smtp_invoicing_bench}"
TEMPLATE="${DB}_template"
DATA_DIR="${SMTP_INVOICING_BENCH_DATA_DIR:-/var/tmp/smtp_invoicing_bench}"
export SMTP_INVOICING_BENCH_DB="$DB" SMTP_INVOICING_BENCH_DATA_DIR="$DATA_DIR" ODOO_SRC
mkdir -p "$DATA_DIR"

stamp="$(cd "$ROOT" && find smtp_invoicing -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
if [ "$(cat "$DATA_DIR/$TEMPLATE.stamp" 2>/dev/null)" != "$stamp" ] \
        || ! psql -h 127.0.0.1 -U root -d "$TEMPLATE" -tAc 'select 1' >/dev/null 2>&1; then
    log "creating template database $TEMPLATE with smtp_invoicing installed"
    dropdb -h 127.0.0.1 -U root --if-exists "$TEMPLATE"
    rm -rf "$DATA_DIR/filestore/$TEMPLATE"
    "$VENV/bin/python" "$ODOO_SRC/odoo-bin" \
        --addons-path "$ODOO_SRC/odoo/addons,$ROOT" \
        --db_host 127.0.0.1 --db_user root --data-dir "$DATA_DIR" \
        -d "$TEMPLATE" -i smtp_invoicing --without-demo=all --stop-after-init \
        --log-level=warn --max-cron-threads=0 --http-port=0 2>&1 \
        | grep -v "Running as user 'root'" || true
    psql -h 127.0.0.1 -U root -d "$TEMPLATE" -tAc \
        "select state from ir_module_module where name='smtp_invoicing'" | grep -qx installed \
        || { log "installation of smtp_invoicing failed"; exit 1; }
    echo "$stamp" >"$DATA_DIR/$TEMPLATE.stamp"
fi

dropdb -h 127.0.0.1 -U root --if-exists "$DB"
createdb -h 127.0.0.1 -U root -T "$TEMPLATE" "$DB"
rm -rf "$DATA_DIR/filestore/$DB"
if [ -d "$DATA_DIR/filestore/$TEMPLATE" ]; then
    cp -r "$DATA_DIR/filestore/$TEMPLATE" "$DATA_DIR/filestore/$DB"
fi

cd "$ROOT"
exec "$VENV/bin/python" "bench/$NAME.py"
