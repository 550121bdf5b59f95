"""OCA's XML checks that apply to Odoo 18.0 data files, on lxml.

pylint-odoo 10 no longer checks XML (OCA moved those checks to oca-odoo-pre-commit-hooks,
whose polib pin conflicts with Odoo 18's): the ones that matter here are below. Run by the
pre-commit hook ``xml-checks`` and by tests/test_lint.py:

    venv/bin/python scripts/check_xml.py [ADDON_DIR]    # default: smtp_invoicing
"""

import ast
import glob
import os
import sys
from collections import Counter

from lxml import etree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XML_HEADER = b'<?xml version="1.0" encoding="UTF-8" ?>'
# Records of other modules the addon may write, and why. Each is given back by the uninstall hook.
FOREIGN_RECORDS = {
    # core's technical list of outgoing servers lists core's servers only; mailboxes have their own menu
    "base.action_ir_mail_server_list": "views/ir_mail_server_views.xml",
}


def xml_files(addon_dir):
    """Return the XML files the manifest lists (data, demo) and those on disk, relative to the addon."""
    with open(os.path.join(addon_dir, "__manifest__.py"), encoding="utf-8") as handle:
        manifest = ast.literal_eval(handle.read())
    listed = [path for path in manifest["data"] + manifest.get("demo", []) if path.endswith(".xml")]
    on_disk = sorted(
        os.path.relpath(path, addon_dir) for path in glob.glob(os.path.join(addon_dir, "**", "*.xml"), recursive=True)
    )
    return listed, on_disk


def tree_problems(path, tree, addon):
    """OCA's xml-* checks that apply to 18.0 data files, on one parsed file."""
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
        foreign = node.tag in ("record", "template", "menuitem") and "." in node.get("id", "").split(addon + ".", 1)[-1]
        if foreign and not path.endswith(FOREIGN_RECORDS.get(node.get("id"), "\0")):
            found.append(f"{line}: id {node.get('id')} of another module")
        if node.get("id", "").startswith(addon + "."):
            found.append(f"{line}: redundant module name in id (xml-redundant-module-name)")
    return found


def file_problems(addon_dir, paths):
    """Headers, well-formedness, the checks above and duplicate ids, over the given files."""
    addon = os.path.basename(os.path.normpath(addon_dir))
    problems, ids = [], Counter()
    for path in paths:
        with open(os.path.join(addon_dir, path), "rb") as handle:
            content = handle.read()
        if not content.startswith(XML_HEADER):
            problems.append(f"{path}: header must be {XML_HEADER.decode()} (xml-header-wrong)")
        try:
            tree = etree.ElementTree(etree.fromstring(content, etree.XMLParser(remove_comments=True)))
        except etree.XMLSyntaxError as error:
            problems.append(f"{path}: not well formed: {error}")
            continue
        problems += tree_problems(path, tree, addon)
        ids.update(node.get("id") for node in tree.iter("record", "template", "menuitem") if node.get("id"))
    problems += [f"duplicate xml id {xmlid} (xml-duplicate-record-id)" for xmlid, count in ids.items() if count > 1]
    return problems


def check(addon_dir):
    """Every problem of the addon's XML files, the manifest's list of them included."""
    listed, on_disk = xml_files(addon_dir)
    problems = []
    if sorted(listed) != on_disk:
        problems.append(
            "every XML file is declared once in the manifest (file-not-used): "
            f"listed {sorted(listed)}, on disk {on_disk}"
        )
    return problems + file_problems(addon_dir, [path for path in listed if path in on_disk])


def main(argv):
    addon_dir = argv[0] if argv else os.path.join(ROOT, "smtp_invoicing")
    problems = check(addon_dir)
    for problem in problems:
        sys.stderr.write(problem + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
