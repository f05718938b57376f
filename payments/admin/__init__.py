"""The finance back office, one module per page family.

- ``ledger``: transactions (search, status queries, CSV export), audit records, balances
- ``payouts``: refunds, payouts and their maker-checker queues, the balance page
- ``callbacks``: the callback inbox
- ``reconciliation``: M-Pesa statement imports, their reports, booking what the ledger missed
- ``forms``: the money pages' forms; ``common``: what they all share; ``login``: the admin
  login form with failed logins limited
"""

from payments.admin import (  # noqa: F401 (registers the ModelAdmins)
    callbacks,
    ledger,
    payouts,
    reconciliation,
)
