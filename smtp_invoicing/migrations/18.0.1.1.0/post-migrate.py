"""18.0.1.0.0 → 18.0.1.1.0: nothing to migrate.

1.1.0 adds the SPF/DMARC deliverability hint (computed, not stored), translations
and demo data: no column, record or parameter changes. This script documents
that on purpose and is where a later 18.0.1.x data fix belongs (copy the folder,
rename it after the new manifest version). Odoo runs it on ``-u smtp_invoicing``
when the installed version is older than 18.0.1.1.0.
"""

import logging

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version:  # fresh install: migrations never run
        return
    _logger.info("smtp_invoicing: migrated from %s to 18.0.1.1.0, nothing to change", version)
