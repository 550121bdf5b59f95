"""Packaging: manifest, readme fragments kept in sync with the READMEs, app-store description."""

import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDON = os.path.join(ROOT, "smtp_invoicing")


def read(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as handle:
        return handle.read()


def manifest():
    return ast.literal_eval(read(ADDON, "__manifest__.py"))


def test_manifest_is_complete():
    """The manifest carries what the Apps store and OCA tooling read, and every file it lists exists."""
    info = manifest()
    for key in ("name", "summary", "version", "category", "license", "author", "website", "maintainers", "images"):
        assert info.get(key), key
    assert re.fullmatch(r"18\.0\.\d+\.\d+\.\d+", info["version"])
    for path in info["data"] + info["demo"] + info["images"]:
        assert os.path.isfile(os.path.join(ADDON, path)), path


def test_readmes_are_generated_from_the_fragments():
    """README.rst and the README.md section are up to date with smtp_invoicing/readme/*.md."""
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "gen_readme.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    readme = read(ROOT, "README.md")
    for name in ("DESCRIPTION", "CONFIGURE", "USAGE", "CONTRIBUTORS"):
        assert read(ADDON, "readme", f"{name}.md").strip() in readme, name


def test_app_store_description():
    """static/description has a PNG icon and an index.html whose images exist."""
    with open(os.path.join(ADDON, "static", "description", "icon.png"), "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    html = read(ADDON, "static", "description", "index.html")
    images = re.findall(r'src="([^"]+)"', html)
    assert images
    for image in images:
        assert os.path.isfile(os.path.join(ADDON, "static", "description", image)), image


def test_migration_scripts_match_the_manifest_version():
    """Each migrations/<version>/ folder is for an 18.0 version not newer than the manifest's."""

    def key(version):
        return tuple(int(part) for part in version.split("."))

    current = key(manifest()["version"])
    for version in os.listdir(os.path.join(ADDON, "migrations")):
        assert version.startswith("18.0.") and key(version) <= current, version
