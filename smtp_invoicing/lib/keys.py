"""Where the encryption keys of own mailboxes come from, outside the database.

In order: the ``SMTP_INVOICING_KEY`` environment variable, the ``smtp_invoicing_key``
option of the Odoo configuration file, else a 0600 key file in Odoo's data
directory, created on first use. Boxes are cached per key source: the key file is
read again only when it changes.
"""

import functools
import os

from . import crypto


def secret_box(config_value, data_dir):
    """Return the SecretBox of this Odoo server's keys."""
    raw = os.environ.get(crypto.ENV_VARIABLE) or config_value
    if raw:
        return _box_of_keys(raw)
    path = os.path.join(data_dir, crypto.KEY_FILE_NAME)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        crypto.key_file_keys(data_dir)  # creates it
        stat = os.stat(path)
    return _box_of_key_file(path, stat.st_ino, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _box_of_keys(raw):
    return crypto.SecretBox(crypto.parse_keys(raw))


@functools.lru_cache(maxsize=4)
def _box_of_key_file(path, inode, mtime_ns, size):
    return crypto.SecretBox(crypto.key_file_keys(os.path.dirname(path)))
