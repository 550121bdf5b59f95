#!/usr/bin/env bash
# Run the product: Odoo 18.0 with smtp_invoicing on a demo database, plus an
# embedded local SMTP sink (STARTTLS 127.0.0.1:2525, SSL 127.0.0.1:2465) that
# Odoo trusts, so "Verify settings" and Send work out of the box.
# Open http://127.0.0.1:8069 (admin / admin). Extra arguments go to odoo-bin.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap

DB="${SMTP_INVOICING_DEMO_DB:-smtp_invoicing_demo}"
STATE="${SMTP_INVOICING_DEMO_DIR:-/var/tmp/smtp_invoicing_demo}"
HTTP_PORT="${HTTP_PORT:-8069}"
mkdir -p "$STATE"
# Odoo's own default server (activity notifications, chatter) is the sink too, as a
# platform's relay would be: the demo's other mails are delivered, not failed.
odoo_args=(--addons-path "$ODOO_SRC/odoo/addons,$ROOT" --db_host 127.0.0.1 --db_user root
           --data-dir "$STATE/data" -d "$DB"
           --smtp 127.0.0.1 --smtp-port "${SMTP_SINK_PORT:-2525}" --smtp-ssl)

rm -f "$STATE/sink-ca.pem"
"$VENV/bin/python" "$ROOT/scripts/smtp_sink.py" "$STATE" &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [ -s "$STATE/sink-ca.pem" ] && break; sleep 0.2; done

# Odoo trusts the system's CAs plus the sink's own CA (TLS stays verified).
SYSTEM_CAS="$("$VENV/bin/python" -c 'import ssl; print(ssl.get_default_verify_paths().openssl_cafile)')"
cat "$SYSTEM_CAS" "$STATE/sink-ca.pem" >"$STATE/ca-bundle.pem" 2>/dev/null || cp "$STATE/sink-ca.pem" "$STATE/ca-bundle.pem"
export SSL_CERT_FILE="$STATE/ca-bundle.pem"

if ! psql -h 127.0.0.1 -U root -d postgres -tAc "select 1 from pg_database where datname='$DB'" | grep -q 1; then
    log "creating demo database $DB (a few minutes the first time)"
    "$VENV/bin/python" "$ODOO_SRC/odoo-bin" "${odoo_args[@]}" -i smtp_invoicing --stop-after-init \
        --log-level=warn
else
    "$VENV/bin/python" "$ODOO_SRC/odoo-bin" "${odoo_args[@]}" -u smtp_invoicing --stop-after-init \
        --log-level=warn
fi
"$VENV/bin/python" "$ODOO_SRC/odoo-bin" shell "${odoo_args[@]}" --log-level=warn \
    <"$ROOT/scripts/demo_setup.py"

log "Odoo on http://127.0.0.1:$HTTP_PORT (admin / admin); sink mails in $STATE/mails"
"$VENV/bin/python" "$ODOO_SRC/odoo-bin" "${odoo_args[@]}" --http-interface 127.0.0.1 \
    --http-port "$HTTP_PORT" --max-cron-threads 1 "$@"
