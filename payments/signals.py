"""Signals the app sends, always after the database transaction that caused them commits.

Receivers get ``sender=Transaction`` and ``transaction=<Transaction>``.
"""

from django.dispatch import Signal

payment_succeeded = Signal()
payment_failed = Signal()
