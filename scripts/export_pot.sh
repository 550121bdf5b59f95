#!/usr/bin/env bash
# Regenerate smtp_invoicing/i18n/smtp_invoicing.pot with Odoo's own exporter, then
# merge it into every smtp_invoicing/i18n/*.po: translations of unchanged terms are
# kept, new terms are added untranslated, vanished terms are dropped. Re-run after
# merging branches that add strings, then fill the empty msgstr of the .po files.
#
# Uses database $SMTP_INVOICING_I18N_DB (default smtp_invoicing_i18n), created
# without demo data when missing and updated otherwise, with its own data dir.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap

DB="${SMTP_INVOICING_I18N_DB:-smtp_invoicing_i18n}"
DATA_DIR="${SMTP_INVOICING_I18N_DATA_DIR:-/var/tmp/${DB}_data}"
I18N="$ROOT/smtp_invoicing/i18n"
mkdir -p "$I18N" "$DATA_DIR"
odoo=("$VENV/bin/python" "$ODOO_SRC/odoo-bin" --addons-path "$ODOO_SRC/odoo/addons,$ROOT"
      --db_host 127.0.0.1 --db_user root --data-dir "$DATA_DIR" -d "$DB"
      --log-level=warn --max-cron-threads=0 --http-port=0 --stop-after-init)

if psql -h 127.0.0.1 -U root -d postgres -tAc "select 1 from pg_database where datname='$DB'" | grep -q 1; then
    log "updating smtp_invoicing in $DB"
    "${odoo[@]}" -u smtp_invoicing
else
    log "creating $DB with smtp_invoicing installed (no demo data)"
    "${odoo[@]}" -i smtp_invoicing --without-demo=all
fi
log "exporting $I18N/smtp_invoicing.pot"
"${odoo[@]}" --modules=smtp_invoicing --i18n-export="$I18N/smtp_invoicing.pot"
"$VENV/bin/python" "$ROOT/scripts/i18n_merge.py" "$I18N"
