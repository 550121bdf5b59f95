"""Encryption of SMTP passwords at rest, with a key kept outside the database.

Fernet gives authenticated encryption; MultiFernet gives key rotation: the
first key encrypts, every key decrypts. Each ciphertext is bound to the row
it belongs to, so a ciphertext copied into another row does not decrypt.
"""

import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE_NAME = "smtp_invoicing.key"
ENV_VARIABLE = "SMTP_INVOICING_KEY"
CONFIG_OPTION = "smtp_invoicing_key"

_SEPARATOR = b"\x00"


class SecretError(Exception):
    """The secret cannot be decrypted: missing key, wrong key or foreign row."""


def parse_keys(raw):
    """Return the Fernet keys of a comma-separated string, first one first."""
    keys = [key.strip().encode() for key in (raw or "").split(",") if key.strip()]
    for key in keys:
        # Fernet() validates the key format (32 url-safe base64-encoded bytes).
        Fernet(key)
    return keys


def key_file_keys(data_dir):
    """Return the keys of the key file in ``data_dir``, creating it once (mode 0600)."""
    path = os.path.join(data_dir, KEY_FILE_NAME)
    if not os.path.exists(path):
        os.makedirs(data_dir, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = None  # another worker created it first: use theirs
        if fd is not None:
            with os.fdopen(fd, "wb") as key_file:
                key_file.write(Fernet.generate_key() + b"\n")
    with open(path, "rb") as key_file:
        return parse_keys(key_file.read().decode())


class SecretBox:
    """Encrypt and decrypt short secrets bound to a context string."""

    def __init__(self, keys):
        if not keys:
            raise SecretError("no encryption key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self._primary = keys[0]

    @property
    def fingerprint(self):
        """A short non-secret identifier of the encrypting key, for diagnostics."""
        return hashlib.sha256(self._primary).hexdigest()[:12]

    def encrypt(self, plaintext, context):
        """Return the text token for ``plaintext`` bound to ``context`` (e.g. the row)."""
        payload = context.encode() + _SEPARATOR + plaintext.encode()
        return self._fernet.encrypt(payload).decode("ascii")

    def decrypt(self, token, context):
        """Return the plaintext of ``token``; SecretError if any check fails."""
        try:
            payload = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError, TypeError) as error:
            raise SecretError("invalid token or key") from error
        bound, _sep, plaintext = payload.partition(_SEPARATOR)
        if not _sep or bound != context.encode():
            raise SecretError("token belongs to another record")
        return plaintext.decode()

    def rotate(self, token):
        """Re-encrypt ``token`` with the first key, keeping its binding."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError, TypeError) as error:
            raise SecretError("invalid token or key") from error
