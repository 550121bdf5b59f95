#!/usr/bin/env bash
# Run one benchmark: scripts/bench.sh verify|send|limit|bounces
# The module is installed once in a template database (again whenever the addon or Odoo
# changes, see ensure_template_db in bootstrap.sh); every run starts from a fresh copy
# of it, named smtp_invoicing_bench.
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

ensure_template_db "${TEMPLATE}_base" "$DATA_DIR" "$BASE_MODULES"
ensure_template_db "$TEMPLATE" "$DATA_DIR" smtp_invoicing "${TEMPLATE}_base"
copy_template_db "$TEMPLATE" "$DB" "$DATA_DIR"

cd "$ROOT"
exec "$VENV/bin/python" "bench/$NAME.py"
