from . import controllers
from . import models
from .hooks import _uninstall_release_mailboxes
