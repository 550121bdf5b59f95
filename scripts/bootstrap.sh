#!/usr/bin/env bash
# Prepare everything the product and its tests need on a Debian machine:
# Odoo 18.0 source, system packages (Postfix and Dovecot for the mail tests),
# PostgreSQL, a Python venv.
# Idempotent: a second run only checks. Sourced by the other scripts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ODOO_SRC="${ODOO_SRC:-/opt/odoo/18.0}"
PYTHON="${PYTHON:-python3.11}"
VENV="${SMTP_INVOICING_VENV:-/opt/smtp_invoicing/venv}"
export ODOO_SRC VENV ROOT
# Bytecode is kept, outside the source trees: some machines set PYTHONDONTWRITEBYTECODE, and
# then every Odoo process (each test worker, each odoo-bin run) compiled about 880 modules
# again, about 3 s of CPU each.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="${PYTHONPYCACHEPREFIX:-/var/tmp/smtp_invoicing_pycache}"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

_apt_updated=0
apt_install() {
    if [ "$_apt_updated" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_odoo() {
    if [ -f "$ODOO_SRC/odoo-bin" ]; then
        return
    fi
    log "no Odoo at $ODOO_SRC: cloning Odoo 18.0"
    git clone --quiet --depth 1 --branch 18.0 https://github.com/odoo/odoo.git "$ODOO_SRC" || {
        log "cannot find or clone Odoo 18.0; set ODOO_SRC to an Odoo 18.0 source tree"
        exit 2
    }
}

ensure_system_packages() {
    local missing=()
    command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
    command -v chromium >/dev/null || missing+=(chromium)
    command -v wkhtmltopdf >/dev/null || missing+=(wkhtmltopdf)
    command -v "$PYTHON" >/dev/null || missing+=(python3 python3-venv python3-dev)
    [ -e /usr/include/libpq-fe.h ] || [ -e /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        apt_install "${missing[@]}" build-essential libxml2-dev libxslt1-dev libjpeg-dev \
            zlib1g-dev libldap2-dev libsasl2-dev fonts-dejavu-core
    fi
}

ensure_postgres() {
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        log "starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    if ! psql -h 127.0.0.1 -U root -d postgres -tAc 'select 1' >/dev/null 2>&1; then
        log "creating PostgreSQL role root"
        su postgres -c "psql -tAc \"create role root superuser login\"" >/dev/null
    fi
}

ensure_venv() {
    local stamp="$VENV/.smtp_invoicing-requirements"
    local want
    want="$(cat "$ODOO_SRC/requirements.txt" "$ROOT/requirements-dev.txt" | sha256sum | cut -c1-16)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    log "building Python environment in $VENV (first run takes a few minutes)"
    mkdir -p "$(dirname "$VENV")"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    local tmp
    tmp="$(mktemp -d)"
    # Some pinned Odoo requirements build from source and need an old setuptools.
    echo 'setuptools<70' >"$tmp/build-constraints.txt"
    # python-ldap needs system LDAP headers and is used by auth_ldap only.
    grep -v '^python-ldap' "$ODOO_SRC/requirements.txt" >"$tmp/odoo-requirements.txt"
    "$VENV/bin/pip" install -q --build-constraint "$tmp/build-constraints.txt" \
        -r "$tmp/odoo-requirements.txt" -r "$ROOT/requirements-dev.txt"
    rm -rf "$tmp"
    echo "$want" >"$stamp"
}

# Postfix and Dovecot for the mail tests (tests/mail_stack.py runs its own instances
# from a temporary folder; the machine's default configuration is never used).
ensure_mail_stack_packages() {
    local missing=()
    command -v postfix >/dev/null || missing+=(postfix)
    command -v dovecot >/dev/null && command -v doveadm >/dev/null || missing+=(dovecot-core)
    [ -e /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
    [ -e /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
    if [ "${#missing[@]}" = 0 ]; then
        return
    fi
    log "installing ${missing[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    # Keep the packages from starting the default services on standard ports (0.0.0.0:143/993/25).
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
    fi
    apt_install "${missing[@]}" || { [ "$own_policy" = 0 ] || rm -f "$policy"; return 1; }
    [ "$own_policy" = 0 ] || rm -f "$policy"
    # In case a service manager started them anyway.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now postfix dovecot >/dev/null 2>&1 || true
    fi
    postfix status >/dev/null 2>&1 && postfix stop >/dev/null 2>&1 || true
    [ -e /run/dovecot/master.pid ] && doveadm stop >/dev/null 2>&1 || true
}

# What a cached database depends on, as a short hash: the Odoo source tree (paths, sizes
# and dates: release.py names no nightly build), the install command and, for a database
# with smtp_invoicing, the content of the addon, and the script that finished it, if any.
# Usage: _template_key MODULES [FROM_KEY [SCRIPT]]
_template_key() {
    {
        printf '%s\n' "$1" "${2:-}" "--without-demo=all"
        [ -z "${3:-}" ] || sha256sum <"$3"
        (cd "$ODOO_SRC" && find . -name __pycache__ -prune -o -type f ! -name '*.pyc' -printf '%P %s %T@\n' \
            | LC_ALL=C sort)
        case ",$1," in
            *,smtp_invoicing,*)
                (cd "$ROOT" && find smtp_invoicing -name __pycache__ -prune -o -type f ! -name '*.pyc' -print0 \
                    | LC_ALL=C sort -z | xargs -0 sha256sum) ;;
        esac
    } | sha256sum | cut -c1-16
}

# copy_template_db TEMPLATE DB DATA_DIR [DB_DATA_DIR]
# DB becomes a fresh copy of TEMPLATE (createdb -T), and DB_DATA_DIR/filestore/DB (DB_DATA_DIR
# defaults to DATA_DIR) a copy of DATA_DIR/filestore/TEMPLATE: Odoo finds attachments by path.
copy_template_db() {
    local template="$1" db="$2" data_dir="$3" db_data_dir="${4:-$3}"
    PGOPTIONS="-c client_min_messages=warning" dropdb -h 127.0.0.1 -U root --if-exists "$db"
    createdb -h 127.0.0.1 -U root -T "$template" "$db"
    rm -rf "$db_data_dir/filestore/$db"
    mkdir -p "$db_data_dir/filestore"
    if [ -d "$data_dir/filestore/$template" ]; then
        cp -r "$data_dir/filestore/$template" "$db_data_dir/filestore/$db"
    fi
}

# ensure_template_db NAME DATA_DIR [MODULES [FROM [SCRIPT]]]
# Make NAME a database with MODULES (default smtp_invoicing) installed without demo data,
# its filestore in DATA_DIR, built on a copy of the template FROM (ensured first) when given,
# then finished by the Python SCRIPT in `odoo-bin shell` when given (it prints TEMPLATE SCRIPT
# DONE when it succeeded).
# DATA_DIR/NAME.stamp holds the key of what NAME was built from and a build id, and so does
# the database's comment: when both match the key, nothing is done or printed; otherwise NAME
# is rebuilt (a build elsewhere changes the comment, so a filestore never outlives its
# database). Callers derive NAME from their own database name: suites run side by side with
# different databases never share a template.
ensure_template_db() {
    local name="$1" data_dir="$2" modules="${3:-smtp_invoicing}" from="${4:-}" script="${5:-}" from_key="" key
    mkdir -p "$data_dir"
    if [ -n "$from" ]; then
        from_key="$(cat "$data_dir/$from.stamp" 2>/dev/null)" || {
            log "template $from is missing: ensure it before $name"
            return 1
        }
    fi
    key="$(_template_key "$modules" "$from_key" "$script")"
    local stamp
    stamp="$(cat "$data_dir/$name.stamp" 2>/dev/null)" || true
    if [ "${stamp%% *}" = "$key" ] && [ "$(psql -h 127.0.0.1 -U root -d postgres -tAc \
            "select shobj_description(oid, 'pg_database') from pg_database where datname = '$name'")" = "$stamp" ]; then
        return 0
    fi
    log "building template database $name: $modules installed${from:+ on a copy of $from}"
    rm -f "$data_dir/$name.stamp"
    if [ -n "$from" ]; then
        copy_template_db "$from" "$name" "$data_dir"
    else
        PGOPTIONS="-c client_min_messages=warning" dropdb -h 127.0.0.1 -U root --if-exists "$name"
        rm -rf "$data_dir/filestore/$name"
    fi
    "$VENV/bin/python" "$ODOO_SRC/odoo-bin" \
        --addons-path "$ODOO_SRC/odoo/addons,$ROOT" \
        --db_host 127.0.0.1 --db_user root --data-dir "$data_dir" \
        -d "$name" -i "$modules" --without-demo=all --stop-after-init \
        --log-level=warn --max-cron-threads=0 --http-port=0 2>&1 \
        | grep -v "Running as user 'root'" >&2 || true
    local wanted installed
    wanted="$(tr ',' '\n' <<<"$modules" | sort -u | wc -l)"
    installed="$(psql -h 127.0.0.1 -U root -d "$name" -tAc "select count(*) from ir_module_module
        where state = 'installed' and name = any(string_to_array('$modules', ','))" 2>/dev/null)" || true
    if [ "$installed" != "$wanted" ]; then
        log "installation of $modules in $name failed"
        return 1
    fi
    if [ -n "$script" ]; then
        local output
        output="$("$VENV/bin/python" "$ODOO_SRC/odoo-bin" shell --no-http \
            --addons-path "$ODOO_SRC/odoo/addons,$ROOT" \
            --db_host 127.0.0.1 --db_user root --data-dir "$data_dir" \
            -d "$name" --log-level=warn --max-cron-threads=0 <"$script" 2>&1)" || true
        if ! grep -q "^TEMPLATE SCRIPT DONE" <<<"$output"; then
            printf '%s\n' "$output" | tail -20 >&2
            log "$script failed on $name"
            return 1
        fi
    fi
    stamp="$key $(date +%s%N)-$$"
    psql -h 127.0.0.1 -U root -d postgres -qc "comment on database \"$name\" is '$stamp'"
    echo "$stamp" >"$data_dir/$name.stamp"
}

# What smtp_invoicing depends on: the database the upgrade test installs the module on, and
# the layer under the module's own template (an addon change reinstalls the module only).
BASE_MODULES="base,mail,account"
# What finishes the test templates (scripts/test.sh, tests/odoo_runs.py): the base layer
# (the product's languages) and the module's layer (compiled asset bundles).
BASE_TEMPLATE_SCRIPT="$ROOT/scripts/test_template_base.py"
TEST_TEMPLATE_SCRIPT="$ROOT/scripts/test_template.py"

bootstrap() {
    ensure_odoo
    ensure_system_packages
    ensure_mail_stack_packages
    ensure_postgres
    ensure_venv
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    bootstrap
fi
