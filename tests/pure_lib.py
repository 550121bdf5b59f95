"""The addon's ``lib/`` package, loaded by path under another name for the pure tests.

Importing it as ``odoo.addons.smtp_invoicing.lib`` would import Odoo (the addon's
``__init__``); ``lib/`` itself imports nothing of Odoo.
"""

import importlib
import importlib.util
import os
import sys

LIB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "smtp_invoicing", "lib")
PACKAGE = "smtp_invoicing_lib"

if PACKAGE not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(LIB_DIR, "__init__.py"), submodule_search_locations=[LIB_DIR]
    )
    sys.modules[PACKAGE] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[PACKAGE])


def lib(name):
    """The module ``lib/<name>.py``."""
    return importlib.import_module(f"{PACKAGE}.{name}")
