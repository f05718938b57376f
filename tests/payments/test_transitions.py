"""The two closed tables of the ledger: status transitions, and STK result codes to outcomes."""

from __future__ import annotations

import logging
from itertools import product

import pytest

from payments.daraja.callbacks import parse_stk_callback
from payments.enums import (
    STK_RESULT_OUTCOMES,
    TransactionStatus,
    TransactionType,
    can_transition,
    stk_result_outcome,
)
from payments.exceptions import InvalidTransitionError
from payments.models import Transaction

from .conftest import load_fixture

S = TransactionStatus

# Written out here, not read from the app: this is the contract the app must keep.
ALLOWED = {
    S.PENDING: {S.AWAITING_RECEIPT, S.SUCCESS, S.FAILED, S.CANCELLED, S.TIMEOUT, S.UNKNOWN},
    S.UNKNOWN: {S.PENDING, S.AWAITING_RECEIPT, S.SUCCESS, S.FAILED, S.CANCELLED, S.TIMEOUT},
    S.TIMEOUT: {S.AWAITING_RECEIPT, S.SUCCESS, S.FAILED, S.CANCELLED},
    S.AWAITING_RECEIPT: {S.SUCCESS},
    S.SUCCESS: {S.REVERSED},
    S.FAILED: set(),
    S.CANCELLED: set(),
    S.REVERSED: set(),
}
ALL_PAIRS = [
    pytest.param(current, new, new in ALLOWED[current], id=f"{current}->{new}")
    for current, new in product(S.values, repeat=2)
]
FORBIDDEN_PAIRS = [p for p in ALL_PAIRS if not p.values[2]]
ALLOWED_PAIRS = [p for p in ALL_PAIRS if p.values[2]]


def test_the_table_covers_every_status():
    assert set(ALLOWED) == set(S.values)
    assert len(ALL_PAIRS) == len(S.values) ** 2


@pytest.mark.parametrize(("current", "new", "allowed"), ALL_PAIRS)
def test_can_transition_allows_exactly_the_moves_in_the_table(current, new, allowed):
    assert can_transition(current, new) is allowed
    assert Transaction(status=current).can_transition_to(new) is allowed


@pytest.mark.parametrize(("current", "new", "allowed"), ALLOWED_PAIRS)
def test_an_allowed_move_changes_the_status(current, new, allowed):
    transaction = Transaction(status=current)
    transaction.transition_to(new)
    assert transaction.status == new


@pytest.mark.parametrize(("current", "new", "allowed"), FORBIDDEN_PAIRS)
def test_a_forbidden_move_raises_and_leaves_the_status_unchanged(current, new, allowed):
    transaction = Transaction(status=current)
    with pytest.raises(InvalidTransitionError) as raised:
        transaction.transition_to(new)
    assert transaction.status == current
    assert (raised.value.current, raised.value.new) == (current, new)


# --- STK result codes --------------------------------------------------------------------------

# One row per code Daraja may report, with the real sample body where one was published.
RESULT_CODE_ROWS = [
    ("0", S.SUCCESS, "Payment received. Thank you.", "stk/stk_callback_success.portal.json"),
    ("1", S.FAILED, "Your M-Pesa balance is not enough for this payment.", None),
    ("2", S.FAILED, "The amount is below the M-Pesa minimum.", None),
    ("3", S.FAILED, "The amount is above the M-Pesa maximum for one payment.", None),
    ("4", S.FAILED, "This payment would pass your daily M-Pesa limit.", None),
    ("8", S.FAILED, "The receiving account cannot take this amount.", None),
    (
        "17",
        S.FAILED,
        "A payment of the same amount was just made. Wait two minutes and try again.",
        None,
    ),
    ("26", S.FAILED, "M-Pesa is busy. Please try again in a few minutes.", None),
    (
        "1001",
        S.FAILED,
        "Another M-Pesa payment is in progress on your phone. Try again shortly.",
        None,
    ),
    ("1019", S.TIMEOUT, "The M-Pesa prompt expired before it was answered.", None),
    ("1025", S.FAILED, "M-Pesa could not send the prompt. Please try again.", None),
    ("1031", S.CANCELLED, "You cancelled the M-Pesa prompt.", None),
    (
        "1032",
        S.CANCELLED,
        "You cancelled the M-Pesa prompt.",
        "stk/stk_callback_cancelled_1032.portal.json",
    ),
    (
        "1036",
        S.TIMEOUT,
        "M-Pesa could not reach your phone. Please try again.",
        "stk/stk_callback_timeout_1036_smsc_ack.2019.django-daraja.json",
    ),
    (
        "1037",
        S.TIMEOUT,
        "M-Pesa could not reach your phone in time. Check it is on and try again.",
        None,
    ),
    (
        "2001",
        S.FAILED,
        "The M-Pesa PIN entered was wrong.",
        "stk/stk_callback_wrong_pin_2001.2019.django-daraja.json",
    ),
    ("2028", S.FAILED, "This payment is not allowed for this till or paybill.", None),
    ("8006", S.FAILED, "Your M-Pesa PIN is locked. Contact Safaricom to unlock it.", None),
    ("9999", S.FAILED, "M-Pesa could not send the prompt. Please try again.", None),
    ("SFC_IC0003", S.FAILED, "This payment is not allowed for this till or paybill.", None),
]
SAMPLE_ROWS = [row for row in RESULT_CODE_ROWS if row[3]]


def test_every_mapped_result_code_has_a_row_here():
    assert [row[0] for row in RESULT_CODE_ROWS] == list(STK_RESULT_OUTCOMES)


@pytest.mark.parametrize(
    ("code", "status", "message", "sample"), RESULT_CODE_ROWS, ids=[r[0] for r in RESULT_CODE_ROWS]
)
def test_result_code_maps_to_its_status_and_customer_message(code, status, message, sample):
    outcome = stk_result_outcome(code)
    assert (outcome.status, outcome.message) == (status, message)
    # The message a customer reads once the transaction carries this code.
    settled = Transaction(
        transaction_type=TransactionType.STK_PUSH, status=status, result_code=code
    )
    assert settled.customer_message == message


@pytest.mark.parametrize(
    ("code", "status", "message", "sample"), SAMPLE_ROWS, ids=[r[0] for r in SAMPLE_ROWS]
)
def test_published_callback_body_settles_as_its_code_says(code, status, message, sample):
    callback = parse_stk_callback(load_fixture(sample))
    assert callback.result_code == code
    outcome = stk_result_outcome(callback.result_code)
    assert (outcome.status, outcome.message) == (status, message)


def test_unknown_result_code_is_a_failure_and_logs_a_warning_naming_it(caplog):
    with caplog.at_level(logging.WARNING, logger="payments.enums"):
        outcome = stk_result_outcome("4242")
    assert outcome.status == S.FAILED
    assert outcome.message == "The M-Pesa payment did not go through."
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "4242" in warnings[0].getMessage()


def test_known_result_code_logs_no_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="payments.enums"):
        stk_result_outcome("1032")
    assert caplog.records == []
