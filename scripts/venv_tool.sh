#!/bin/sh
# Run a tool of the project's venv (built by scripts/bootstrap.sh; SMTP_INVOICING_VENV to use
# another), e.g. scripts/venv_tool.sh ruff check . -- the pre-commit hooks run the pinned
# ruff, pylint and lxml this way, offline.
set -eu
tool="$1"
shift
exec "${SMTP_INVOICING_VENV:-/opt/smtp_invoicing/venv}/bin/$tool" "$@"
