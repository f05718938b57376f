"""The issue-9 regression tests reuse the app tests' fixtures."""

import pytest

from payments import signals
from tests.payments.conftest import (  # noqa: F401 (fixtures)
    other_user,
    post_result,
    staff_user,
    user,
)

SIGNAL_NAMES = (
    "payment_succeeded",
    "payment_failed",
    "c2b_payment_received",
    "payout_completed",
    "payout_failed",
    "reversal_completed",
    "reversal_failed",
)


@pytest.fixture
def sent_signals():
    """(signal name, transaction id) of every money signal sent, in order."""
    received: list[tuple[str, object]] = []
    receivers = {}
    for name in SIGNAL_NAMES:

        def receiver(sender, transaction, _name=name, **kwargs):
            received.append((_name, transaction.pk))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver)
    yield received
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)
