from . import models
from .hooks import _post_init_encrypt_passwords, _uninstall_restore_passwords
