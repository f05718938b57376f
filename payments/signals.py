"""Signals the app sends, always after the database transaction that caused them commits.

Every signal is sent with ``sender=Transaction`` (``BalanceSnapshot`` for ``balance_updated``).

- ``payment_succeeded`` / ``payment_failed``: ``transaction`` — an STK Push settled.
- ``c2b_payment_received``: ``transaction`` — a C2B payment was confirmed (once per TransID).
- ``payout_completed`` / ``payout_failed``: ``transaction`` — a B2C payout settled.
- ``reversal_completed`` / ``reversal_failed``: ``transaction`` (the reversal) and ``original``
  (the payment it refunds).
- ``balance_updated``: ``snapshots`` — the BalanceSnapshot rows of one balance result.
"""

from django.dispatch import Signal

payment_succeeded = Signal()
payment_failed = Signal()
c2b_payment_received = Signal()
payout_completed = Signal()
payout_failed = Signal()
reversal_completed = Signal()
reversal_failed = Signal()
balance_updated = Signal()
