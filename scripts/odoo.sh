#!/usr/bin/env bash
# Run odoo-bin from the project's venv with this repository on the addons path.
# Usage: scripts/odoo.sh [odoo-bin arguments...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
bootstrap
exec "$VENV/bin/python" "$ODOO_SRC/odoo-bin" \
    --addons-path "$ODOO_SRC/odoo/addons,$ROOT" \
    --db_host 127.0.0.1 --db_user root \
    "$@"
