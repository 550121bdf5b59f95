"""The one way the product takes rows of its mailboxes for a while (verification and mailbox reading
leases, sending budgets): a short transaction that locks them first, retried on serialization failures."""

from datetime import timedelta

import psycopg2

# A session (sending or verification) that finds every connection slot of its mailbox taken
# tries again this much later.
SLOT_WAIT = timedelta(seconds=30)


def locking_select(cr, query, params, attempts=3, whole_rows=False):
    """Run a ``SELECT id ... FOR [NO KEY] UPDATE`` at the start of ``cr``'s transaction; return the ids
    (the rows with ``whole_rows``).

    Under REPEATABLE READ, a row another worker updated and committed after this
    transaction's snapshot raises a serialization failure instead of being locked: the
    transaction is then started again, with a snapshot where that update is visible.
    """
    for attempt in range(attempts):
        try:
            cr.execute(query, params, log_exceptions=False)
            rows = cr.fetchall()
            return rows if whole_rows else [row[0] for row in rows]
        except psycopg2.errors.SerializationFailure:
            cr.rollback()
            if attempt == attempts - 1:
                raise
    return []
