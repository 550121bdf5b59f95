"""Lint gates: the pre-commit hooks of .pre-commit-config.yaml, run offline on the repository.

ruff (pyproject.toml), pylint with pylint-odoo and OCA's mandatory checks (.pylintrc) and the
XML checks of scripts/check_xml.py: one configuration, used by contributors' commit hooks and
by this test alike. Hooks see the files under git control, as in CI.
"""

import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
ADDON_DIR = os.path.join(ROOT, "smtp_invoicing")
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import check_xml  # noqa: E402

with open(os.path.join(ROOT, ".pre-commit-config.yaml"), encoding="utf-8") as _handle:
    CONFIG = yaml.safe_load(_handle)
HOOKS = [hook for repo in CONFIG["repos"] for hook in repo["hooks"]]
CLOSED = "http://127.0.0.1:9"  # the discard port: any download attempt fails at once


@pytest.fixture(scope="module")
def pre_commit_env(tmp_path_factory):
    env = dict(os.environ)
    env.update(
        PRE_COMMIT_HOME=str(tmp_path_factory.mktemp("pre_commit_home")),
        SMTP_INVOICING_VENV=os.path.dirname(BIN),
        http_proxy=CLOSED,
        https_proxy=CLOSED,
        HTTP_PROXY=CLOSED,
        HTTPS_PROXY=CLOSED,
        PIP_NO_INDEX="1",
    )
    return env


def test_pre_commit_hooks_are_local():
    """Every hook is a local one running the project venv's tools: pre-commit needs no download."""
    assert [repo["repo"] for repo in CONFIG["repos"]] == ["local"]
    assert {hook["language"] for hook in HOOKS} == {"system"}
    assert all(hook["entry"].startswith("scripts/venv_tool.sh ") for hook in HOOKS)
    assert [hook["id"] for hook in HOOKS] == ["ruff-check", "ruff-format", "pylint-odoo", "xml-checks"]


@pytest.mark.parametrize("hook", [hook["id"] for hook in HOOKS])
def test_lint(hook, pre_commit_env):
    """`pre-commit run --all-files` passes, offline, hook by hook (ruff, ruff-format, pylint-odoo, XML)."""
    result = subprocess.run(
        [os.path.join(BIN, "pre-commit"), "run", "--all-files", "--color=never", hook],
        cwd=ROOT,
        env=pre_commit_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"pre-commit hook {hook} failed:\n{result.stdout}\n{result.stderr}"


def test_xml_files():
    """XML files are listed in the manifest, well formed, free of deprecated syntax, with unique ids."""
    listed, on_disk = check_xml.xml_files(ADDON_DIR)
    assert sorted(listed) == on_disk, "every XML file is declared once in the manifest (file-not-used)"
    problems = check_xml.file_problems(ADDON_DIR, listed)
    assert not problems, "\n".join(problems)


def test_xml_checks_find_deprecated_syntax(tmp_path):
    """The XML checks report deprecated 18.0 syntax, a wrong header and a file the manifest does not list."""
    addon = tmp_path / "smtp_invoicing"
    (addon / "views").mkdir(parents=True)
    (addon / "__manifest__.py").write_text("{'data': ['views/a.xml'], 'demo': []}")
    (addon / "views" / "a.xml").write_text(
        "<?xml version='1.0'?>\n<odoo><data><record id='smtp_invoicing.x' model='ir.ui.view'>"
        "<field name='arch' type='xml'><tree attrs='{}'/></field></record></data></odoo>"
    )
    (addon / "views" / "b.xml").write_text(check_xml.XML_HEADER.decode() + "\n<odoo/>")
    text = "\n".join(check_xml.check(str(addon)))
    for expected in (
        "file-not-used",
        "xml-header-wrong",
        "xml-deprecated-data-node",
        "xml-deprecated-tree-attribute",
        "xml-deprecated-attribute",
        "xml-redundant-module-name",
    ):
        assert expected in text, expected
    assert check_xml.main([str(addon)]) == 1
