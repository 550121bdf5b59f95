"""The addon as integrators deploy it: a wheel built by whool from a fresh clone, installed next to Odoo.

The wheel is built from a fresh ``git clone`` of this checkout (its tracked files, committed
or not: ``git stash create``), installed with pip into a new virtual environment that sees
Odoo's requirements through the project venv's site-packages, then ``odoo-bin -i
smtp_invoicing`` runs with only Odoo's own addons on the addons path: the module can only
come from the wheel's ``odoo/addons`` namespace. A mailbox created in ``odoo-bin shell`` is
then verified against a loopback server by the scheduled action, outside test mode.

The scratch database is a copy of a template with ``account`` installed, kept between runs
(``<test database>_wheel_tpl_<key>``, rebuilt when the Odoo source changes, about 35 s);
the scratch database and the virtual environment are dropped at the end.
"""

import ast
import hashlib
import json
import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
import zipfile

import pytest

from conftest import DB_NAME, ODOO_SRC, ROOT, RUN_DB
from smtp_servers import Pki, SmtpServer

ADDON = "smtp_invoicing"
SCRATCH_DB = f"{DB_NAME}_wheel"
TEMPLATE_PREFIX = f"{RUN_DB}_wheel_tpl_"  # shared by the run's workers
TEMPLATES_DIR = os.environ.get("SMTP_INVOICING_TEST_DATA_DIR", "/var/tmp/smtp_invoicing_test_data") + "_wheel_templates"
PGUSER = os.environ.get("PGUSER", "root")
LOGIN = "billing@wheel.test"
PASSWORD = "wheel-pass-8Hq3"
WHEEL_NAME = re.compile(r"odoo_addon_smtp_invoicing-18\.0\.\d+\.\d+\.\d+(\.\d+)*-py3-none-any\.whl")

VERIFY = """
import json, odoo
user = env["res.users"].create({"name": "Billing", "login": LOGIN, "email": LOGIN,
                                "groups_id": [(6, 0, [env.ref("base.group_user").id])]})
env["ir.config_parameter"].set_param("smtp_invoicing.verify_timeout", "5")
mailbox = env["smtp_invoicing.mailbox"].create({
    "name": "Wheel mailbox", "sender_name": "Wheel Billing",
    "sender_email": LOGIN, "smtp_user": LOGIN, "smtp_pass": PASSWORD, "smtp_host": HOST, "smtp_port": PORT,
    "smtp_encryption": "starttls", "smtp_authentication": "login", "smtp_invoicing_ca_cert": CA,
})
env.cr.commit()
mailbox.action_verify()
env.cr.commit()
env["smtp_invoicing.mailbox"]._cron_verify_mail_servers()
env.cr.commit()
env.cr.execute("SELECT verification_state, verification_message FROM smtp_invoicing_mailbox WHERE id = %s",
               [mailbox.id])
state, message = env.cr.fetchone()
print("RESULT:" + json.dumps({"state": state, "message": message,
                               "module_path": odoo.modules.module.get_module_path("smtp_invoicing")}))
"""


def run(command, **kwargs):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, env=env, **kwargs)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def odoo_bin(python, data_dir, database, *args, stdin=None):
    return run(
        [
            python,
            os.path.join(ODOO_SRC, "odoo-bin"),
            *args[:1],
            f"--addons-path={ODOO_SRC}/odoo/addons",
            "--db_host=127.0.0.1",
            f"--db_user={PGUSER}",
            f"--data-dir={data_dir}",
            f"--database={database}",
            "--without-demo=all",
            "--log-level=warn",
            "--max-cron-threads=0",
            "--http-port=0",
            *args[1:],
        ],
        input=stdin,
        cwd=data_dir,
    )


def psql(query, database="postgres"):
    return run(["psql", "-h", "127.0.0.1", "-U", PGUSER, "-d", database, "-tAc", query]).split()


def dropdb(name):
    run(["dropdb", "-h", "127.0.0.1", "-U", PGUSER, "--if-exists", name])


def template_key():
    """Changes when the Odoo source or the project venv does: the template is then rebuilt."""
    stamps = [os.path.realpath(ODOO_SRC), sys.executable]
    for path in ("odoo/release.py", "odoo/addons/base/__manifest__.py", "addons/account/__manifest__.py"):
        full = os.path.join(ODOO_SRC, path)
        if not os.path.exists(full):
            full = os.path.join(ODOO_SRC, "odoo", path)
        stat = os.stat(full)
        stamps.append(f"{path}:{stat.st_mtime_ns}:{stat.st_size}")
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()[:10]


@pytest.fixture(scope="module")
def template():
    """A database with account installed, and its filestore: built once, then reused."""
    name = TEMPLATE_PREFIX + template_key()
    data_dir = os.path.join(TEMPLATES_DIR, name)
    existing = psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{TEMPLATE_PREFIX}%'")
    for stale in existing:
        if stale != name:
            dropdb(stale)
            shutil.rmtree(os.path.join(TEMPLATES_DIR, stale), ignore_errors=True)
    if name not in existing or not os.path.isdir(os.path.join(data_dir, "filestore", name)):
        dropdb(name)
        shutil.rmtree(data_dir, ignore_errors=True)
        os.makedirs(data_dir)
        odoo_bin(sys.executable, data_dir, name, "--stop-after-init", "-i", "account")
        assert psql("SELECT state FROM ir_module_module WHERE name = 'account'", name) == ["installed"]
    return name, data_dir


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="smtp_invoicing_wheel_")
    dropdb(SCRATCH_DB)
    try:
        yield path
    finally:
        dropdb(SCRATCH_DB)
        shutil.rmtree(path, ignore_errors=True)


def build_wheel_from_a_fresh_clone(workdir):
    # the checkout's tracked files as they are now, committed or not
    commit = run(["git", "stash", "create"], cwd=ROOT).strip() or "HEAD"
    commit = run(["git", "rev-parse", commit], cwd=ROOT).strip()
    clone = os.path.join(workdir, "clone")
    run(["git", "clone", "--quiet", "--no-checkout", ROOT, clone])
    run(["git", "checkout", "--quiet", "--detach", commit], cwd=clone)
    dist = os.path.join(workdir, "dist")
    run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, "."],
        cwd=os.path.join(clone, ADDON),
    )
    [wheel] = os.listdir(dist)
    return os.path.join(dist, wheel)


def make_venv(workdir):
    """A new virtual environment that also sees the project venv's packages (Odoo's requirements)."""
    venv = os.path.join(workdir, "venv")
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = os.path.join(venv, "bin", "python")
    [purelib] = json.loads(run([python, "-c", "import json, site; print(json.dumps(site.getsitepackages()))"]))
    project_site_packages = site.getsitepackages()[0]
    with open(os.path.join(purelib, "smtp_invoicing_project_venv.pth"), "w", encoding="utf-8") as handle:
        # after the new venv's own packages, as a second site directory (its .pth files apply)
        handle.write(f"import site; site.addsitedir({project_site_packages!r})\n")
    return python, purelib


def test_wheel_installs_next_to_odoo_and_verifies_a_mailbox(template, workdir):
    """The whool wheel of a fresh clone installs with pip, odoo-bin installs the module from it, a mailbox verifies."""
    wheel = build_wheel_from_a_fresh_clone(workdir)
    assert WHEEL_NAME.fullmatch(os.path.basename(wheel)), wheel
    with open(os.path.join(ROOT, ADDON, "__manifest__.py"), encoding="utf-8") as handle:
        manifest = ast.literal_eval(handle.read())
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [metadata] = [name for name in names if name.endswith(".dist-info/METADATA")]
        requires = re.findall(r"^Requires-Dist: (\S+)", archive.read(metadata).decode(), re.MULTILINE)
    prefix = f"odoo/addons/{ADDON}/"
    for path in ["__manifest__.py", "__init__.py", *manifest["data"], *manifest["demo"]]:
        assert prefix + path in names, path
    assert prefix + "pyproject.toml" not in names
    assert not [name for name in names if not name.startswith(prefix) and ".dist-info/" not in name]
    assert sorted(requires) == sorted(["odoo==18.0.*", *manifest["external_dependencies"]["python"]])

    python, purelib = make_venv(workdir)
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-index", "--no-deps", wheel])
    assert os.path.isfile(os.path.join(purelib, "odoo", "addons", ADDON, "__manifest__.py"))
    # what pip would pull from PyPI is already there: Odoo's requirements (odoo itself runs from source)
    missing = run(
        [
            python,
            "-c",
            "from importlib import metadata\n"
            "from packaging.requirements import Requirement\n"
            f"for text in metadata.requires('odoo-addon-{ADDON}'):\n"
            "    req = Requirement(text)\n"
            "    if req.name != 'odoo':\n"
            "        try:\n"
            "            assert metadata.version(req.name) in req.specifier\n"
            "        except (metadata.PackageNotFoundError, AssertionError):\n"
            "            print(text)\n",
        ]
    )
    assert not missing.strip(), missing

    template_name, template_data = template
    data_dir = os.path.join(workdir, "data")
    run(["createdb", "-h", "127.0.0.1", "-U", PGUSER, "-T", template_name, SCRATCH_DB])
    shutil.copytree(
        os.path.join(template_data, "filestore", template_name), os.path.join(data_dir, "filestore", SCRATCH_DB)
    )
    odoo_bin(python, data_dir, SCRATCH_DB, "--stop-after-init", "-i", ADDON)
    assert psql(f"SELECT state FROM ir_module_module WHERE name = '{ADDON}'", SCRATCH_DB) == ["installed"]

    with Pki() as pki, SmtpServer(mode="starttls", cert=pki.leaf(), users={LOGIN: PASSWORD}) as server:
        script = "\n".join(
            f"{name} = {value!r}"
            for name, value in (
                ("LOGIN", LOGIN),
                ("PASSWORD", PASSWORD),
                ("HOST", server.host),
                ("PORT", server.port),
                ("CA", pki.ca_pem),
            )
        )
        output = odoo_bin(python, data_dir, SCRATCH_DB, "shell", "--no-http", stdin=script + VERIFY)
    [result] = [json.loads(line[len("RESULT:") :]) for line in output.splitlines() if line.startswith("RESULT:")]
    assert result["module_path"] == os.path.join(purelib, "odoo", "addons", ADDON)
    assert result["state"] == "verified", result["message"]
    assert [attempt[1:] for attempt in server.auth_attempts] == [(LOGIN, PASSWORD)]
    assert server.messages == []
