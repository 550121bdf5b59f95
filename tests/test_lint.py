"""Lint gates: ruff, pylint with pylint-odoo (OCA mandatory checks), and XML checks.

pylint-odoo 10 no longer checks XML (OCA moved those checks to
oca-odoo-pre-commit-hooks, whose polib pin conflicts with Odoo 18's): the XML
checks OCA runs that matter here are below, on lxml.
"""

import ast
import glob
import os
import subprocess
import sys
from collections import Counter

import pytest
from lxml import etree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
ADDON = "smtp_invoicing"
XML_HEADER = b'<?xml version="1.0" encoding="UTF-8" ?>'


def run(*command):
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("pylint", "--rcfile=.pylintrc", ADDON),
    ],
    ids=["ruff-check", "ruff-format", "pylint-odoo"],
)
def test_lint(command):
    """The code passes the project's lint gates (configured in pyproject.toml and .pylintrc)."""
    result = run(os.path.join(BIN, command[0]), *command[1:])
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"


def _xml_files():
    with open(os.path.join(ROOT, ADDON, "__manifest__.py"), encoding="utf-8") as handle:
        manifest = ast.literal_eval(handle.read())
    listed = [path for path in manifest["data"] + manifest.get("demo", []) if path.endswith(".xml")]
    on_disk = sorted(
        os.path.relpath(path, os.path.join(ROOT, ADDON))
        for path in glob.glob(os.path.join(ROOT, ADDON, "**", "*.xml"), recursive=True)
    )
    return listed, on_disk


def _problems(path, tree):
    """OCA's xml-* checks that apply to 18.0 data files."""
    found = []
    root = tree.getroot()
    if root.tag != "odoo":
        found.append("root node must be <odoo> (xml-deprecated-openerp-node)")
    for node in root.iter(etree.Element):
        line = f"{path}:{node.sourceline}"
        if node.tag == "data" and node.getparent() is root:
            found.append(f"{line}: <data> inside <odoo> (xml-deprecated-data-node)")
        if node.tag == "tree":
            found.append(f"{line}: <tree> is <list> in 18.0 (xml-deprecated-tree-attribute)")
        for attribute in ("attrs", "states"):
            if attribute in node.attrib and node.tag not in ("record", "template"):
                found.append(f"{line}: '{attribute}' removed in 17.0 (xml-deprecated-attribute)")
        for directive in ("t-esc", "t-raw"):
            if directive in node.attrib:
                found.append(f"{line}: {directive} is t-out (xml-deprecated-qweb-directive-15)")
        if node.tag == "div" and "oe_chatter" in node.get("class", "").split():
            found.append(f"{line}: use <chatter/> (xml-deprecated-oe-chatter)")
        if node.tag == "field" and node.get("name") in ("numbercall", "doall"):
            found.append(f"{line}: cron field {node.get('name')} removed in 17.0")
        if node.tag == "field" and node.text and node.text.strip().isdigit() and not len(node):
            found.append(f"{line}: numeric value without eval (xml-field-numeric-without-eval)")
        if node.get("position") == "replace" and node.tag != "attribute":
            found.append(f"{line}: position='replace' (xml-view-dangerous-replace-low-priority)")
        if node.tag in ("record", "template", "menuitem") and "." in node.get("id", "").split(ADDON + ".", 1)[-1]:
            found.append(f"{line}: id {node.get('id')} of another module")
        if node.get("id", "").startswith(ADDON + "."):
            found.append(f"{line}: redundant module name in id (xml-redundant-module-name)")
    return found


def test_xml_files():
    """XML files are listed in the manifest, well formed, free of deprecated syntax, with unique ids."""
    listed, on_disk = _xml_files()
    assert sorted(listed) == on_disk, "every XML file is declared once in the manifest (file-not-used)"
    problems, ids = [], Counter()
    for path in listed:
        with open(os.path.join(ROOT, ADDON, path), "rb") as handle:
            content = handle.read()
        if not content.startswith(XML_HEADER):
            problems.append(f"{path}: header must be {XML_HEADER.decode()} (xml-header-wrong)")
        tree = etree.ElementTree(etree.fromstring(content, etree.XMLParser(remove_comments=True)))
        problems += _problems(path, tree)
        ids.update(node.get("id") for node in tree.iter("record", "template", "menuitem") if node.get("id"))
    problems += [f"duplicate xml id {xmlid} (xml-duplicate-record-id)" for xmlid, count in ids.items() if count > 1]
    assert not problems, "\n".join(problems)
