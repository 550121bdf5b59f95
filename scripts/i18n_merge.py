"""Merge smtp_invoicing.pot into every .po of an i18n folder (msgmerge-like, with polib).

Translations of msgids still in the .pot are kept, new msgids are added with an
empty msgstr, msgids no longer in the .pot are dropped; references and comments
follow the .pot. Prints how many entries of each language are translated.

    python scripts/i18n_merge.py smtp_invoicing/i18n
"""

import glob
import os
import sys

import polib


def merge(pot, po_path):
    po = polib.pofile(po_path, wrapwidth=78)
    known = {(entry.msgctxt, entry.msgid): entry for entry in po if not entry.obsolete}
    merged = polib.POFile(wrapwidth=78)
    merged.metadata = po.metadata
    merged.header = po.header
    for template in pot:
        old = known.get((template.msgctxt, template.msgid))
        entry = polib.POEntry(
            msgctxt=template.msgctxt,
            msgid=template.msgid,
            msgstr=old.msgstr if old else "",
            occurrences=template.occurrences,
            comment=template.comment,
            tcomment=old.tcomment if old else "",
            flags=[flag for flag in template.flags if flag != "fuzzy"],
        )
        merged.append(entry)
    merged.save(po_path)
    return merged


def main(folder):
    pot = polib.pofile(os.path.join(folder, "smtp_invoicing.pot"))
    for po_path in sorted(glob.glob(os.path.join(folder, "*.po"))):
        merged = merge(pot, po_path)
        done = sum(1 for entry in merged if entry.msgstr)
        print(f"{os.path.basename(po_path)}: {done}/{len(merged)} translated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "smtp_invoicing/i18n"))
