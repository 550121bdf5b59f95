"""Real odoo-bin runs on scratch databases, for the tests that need whole processes and databases."""

import json
import os
import subprocess
import sys

import odoo

from conftest import ODOO_SRC, ROOT, RUN_DB

# the run's templates, as scripts/test.sh names them (shared by its workers)
BASE_TEMPLATE = f"{RUN_DB}_template_base"  # Odoo with the module's dependencies
INSTALLED_TEMPLATE = f"{RUN_DB}_template"  # the same with smtp_invoicing installed
PGUSER = os.environ.get("PGUSER", "root")


def _odoo_command(command, data_dir, addons_root=ROOT):
    """``odoo-bin COMMAND`` with ``addons_root`` (this checkout) on the addons path and the scratch
    databases' server."""
    return [
        sys.executable,
        os.path.join(ODOO_SRC, "odoo-bin"),
        *command,
        "--addons-path",
        f"{ODOO_SRC}/odoo/addons,{addons_root}",
        "--db_host",
        "127.0.0.1",
        "--db_user",
        PGUSER,
        "--data-dir",
        data_dir,
    ]


def odoo_bin(db, data_dir, *args, stdin=None, addons_root=ROOT):
    """Run ``odoo-bin [command] ... -d db`` (the first of ``args`` may be a command) and return its output."""
    command = [
        *_odoo_command(args[:1], data_dir, addons_root=addons_root),
        "-d",
        db,
        "--without-demo",
        "all",
        "--log-level",
        "warn",
        "--max-cron-threads",
        "0",
        "--http-port",
        "0",
        *args[1:],
    ]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def shell(db, data_dir, script, addons_root=ROOT):
    """Run ``script`` in ``odoo-bin shell`` on ``db``, commit, and return what it printed as ``RESULT:{json}``."""
    output = odoo_bin(
        db,
        data_dir,
        "shell",
        "--no-http",
        stdin="import json\n" + script + "\nenv.cr.commit()\n",
        addons_root=addons_root,
    )
    results = [line for line in output.splitlines() if line.startswith("RESULT:")]
    assert results, output[-3000:]
    return json.loads(results[-1][len("RESULT:") :])


def dropdb(db):
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", PGUSER, "--if-exists", db], check=True, capture_output=True)


def from_template(template, db, data_dir):
    """Create ``db`` as a copy of the cached ``template`` (built first if missing or outdated)."""
    template_data_dir = odoo.tools.config["data_dir"]  # where scripts/test.sh keeps the templates
    ensure = 'ensure_template_db "$2" "$3" "$BASE_MODULES" "" "$BASE_TEMPLATE_SCRIPT"'
    if template == INSTALLED_TEMPLATE:
        ensure = f'{ensure} && ensure_template_db "$6" "$3" smtp_invoicing "$2" "$TEST_TEMPLATE_SCRIPT"'
        base = BASE_TEMPLATE
    else:
        base = template
    done = subprocess.run(
        [
            "bash",
            "-c",
            # one build at a time: workers that find a template outdated (SMTP_INVOICING_REUSE_DB=1
            # after an addon change) would otherwise rebuild it side by side
            f'source "$1" && exec 9>"$3/templates.lock" && flock 9 && {ensure} && copy_template_db "$7" "$4" "$3" "$5"',
            "_",
            os.path.join(ROOT, "scripts", "bootstrap.sh"),
            base,
            template_data_dir,
            db,
            data_dir,
            INSTALLED_TEMPLATE,
            template,
        ],
        env={**os.environ, "ODOO_SRC": ODOO_SRC, "SMTP_INVOICING_VENV": sys.prefix},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def odoo_db(*args, data_dir):
    """Run Odoo's database manager command line, ``odoo-bin db ... ARGS`` (duplicate, rename...)."""
    command = [*_odoo_command(["db"], data_dir), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def previous_release(target):
    """Unpack the addon as it was at its last 18.0.1.2.0 commit (the parent of the commit that bumped the
    manifest to 18.0.2.0.0) into ``target``; return the addons folder."""
    bump = subprocess.run(
        ["git", "-C", ROOT, "log", "-n1", "--format=%H", "-G", '"version": "18.0.2.0.0"', "--", "smtp_invoicing"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert bump, "the commit that bumped the manifest to 18.0.2.0.0 is in this checkout's history"
    archive = subprocess.run(
        ["git", "-C", ROOT, "archive", f"{bump}^", "smtp_invoicing"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    with open(os.path.join(target, "smtp_invoicing", "__manifest__.py"), encoding="utf-8") as manifest:
        assert '"version": "18.0.1.2.0"' in manifest.read()
    return target
