"""Generate the addon's README.rst and the README.md section from smtp_invoicing/readme/*.md.

OCA keeps a module's description in readme/ fragments and generates README.rst from
them; this script does the same without network tools, and keeps the repository
README.md section between its markers in sync.

    python scripts/gen_readme.py          # write both files
    python scripts/gen_readme.py --check  # exit 1 when a file is out of date
"""

import ast
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDON = os.path.join(ROOT, "smtp_invoicing")
FRAGMENTS = [
    ("DESCRIPTION", None),
    ("CONFIGURE", "Configuration"),
    ("USAGE", "Usage"),
    ("CONTRIBUTORS", "Contributors"),
]
START = "<!-- generated from smtp_invoicing/readme/ by scripts/gen_readme.py: do not edit -->"
END = "<!-- end of generated section -->"


def fragments():
    result = []
    for name, title in FRAGMENTS:
        with open(os.path.join(ADDON, "readme", f"{name}.md"), encoding="utf-8") as handle:
            result.append((title, handle.read().strip()))
    return result


def manifest():
    with open(os.path.join(ADDON, "__manifest__.py"), encoding="utf-8") as handle:
        return ast.literal_eval(handle.read())


def md_to_rst(text):
    # the fragments only use paragraphs, lists, *emphasis*, **strong** and `code`
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


def readme_rst():
    info = manifest()
    title = info["name"]
    lines = ["=" * len(title), title, "=" * len(title), "", info["summary"], ""]
    lines += [f".. |license| image:: https://img.shields.io/badge/licence-{info['license']}-blue.png", ""]
    lines += [f"|license| Odoo {info['version'].split('.')[0]}.0 · version {info['version']}", ""]
    lines += [".. contents::", "   :local:", ""]
    for section, text in fragments():
        if section:
            lines += [section, "=" * len(section), ""]
        lines += [md_to_rst(text), ""]
    lines += ["Maintainers", "===========", "", ", ".join(info.get("maintainers", [])) or info["author"], ""]
    lines += [f"This module is part of {info['website']}.", ""]
    return "\n".join(lines)


def readme_md_section():
    lines = [START, "", "## The module in short", ""]
    for section, text in fragments():
        if section:
            lines += [f"### {section}", ""]
        lines += [text, ""]
    lines.append(END)
    return "\n".join(lines)


def updated_readme_md(current):
    section = readme_md_section()
    if START in current and END in current:
        before, rest = current.split(START, 1)
        after = rest.split(END, 1)[1]
        return before + section + after
    marker = "\n## What it does"
    return current.replace(marker, "\n" + section + "\n" + marker, 1)


def main(check=False):
    targets = {
        os.path.join(ADDON, "README.rst"): lambda current: readme_rst(),
        os.path.join(ROOT, "README.md"): updated_readme_md,
    }
    stale = []
    for path, build in targets.items():
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        wanted = build(current)
        if wanted != current:
            stale.append(os.path.relpath(path, ROOT))
            if not check:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(wanted)
    if check and stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/gen_readme.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv[1:]))
