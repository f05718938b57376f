"""The ledger's vocabulary: transaction types and statuses, callback kinds and outcomes, and the
one closed table from Daraja result codes to statuses and customer messages."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import models

logger = logging.getLogger(__name__)


class TransactionType(models.TextChoices):
    STK_PUSH = "STK_PUSH", "STK Push"
    C2B = "C2B", "C2B payment"
    B2C = "B2C", "B2C payout"
    REVERSAL = "REVERSAL", "Reversal"


class TransactionStatus(models.TextChoices):
    """Part of the contract with the mobile app: values never change meaning."""

    PENDING = "pending", "Pending"  # Daraja accepted the request; awaiting the result
    UNKNOWN = "unknown", "Unknown"  # our request's fate is not known yet
    # An STK query said "paid" but carries no receipt or amount: not money on the ledger until
    # the callback or a C2B confirmation brings them.
    AWAITING_RECEIPT = "awaiting_receipt", "Paid, awaiting receipt"
    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMEOUT = "timeout", "Timed out"
    REVERSED = "reversed", "Reversed"


S = TransactionStatus

# Where each status may go. A final status never changes, except success -> reversed; a late
# genuine result can still settle unknown or timeout. A success learnt from a query waits for
# its receipt and can only become a success. Nothing else is allowed.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset(
        {S.AWAITING_RECEIPT, S.SUCCESS, S.FAILED, S.CANCELLED, S.TIMEOUT, S.UNKNOWN}
    ),
    S.UNKNOWN: frozenset(
        {S.PENDING, S.AWAITING_RECEIPT, S.SUCCESS, S.FAILED, S.CANCELLED, S.TIMEOUT}
    ),
    S.TIMEOUT: frozenset({S.AWAITING_RECEIPT, S.SUCCESS, S.FAILED, S.CANCELLED}),
    S.AWAITING_RECEIPT: frozenset({S.SUCCESS}),
    S.SUCCESS: frozenset({S.REVERSED}),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REVERSED: frozenset(),
}

# Statuses at which a client stops polling.
FINAL_STATUSES = frozenset({S.SUCCESS, S.FAILED, S.CANCELLED, S.TIMEOUT, S.REVERSED})


def can_transition(current: str, new: str) -> bool:
    return new in ALLOWED_TRANSITIONS[current]


class CallbackKind(models.TextChoices):
    STK = "stk", "STK Push result"
    B2C_RESULT = "b2c_result", "B2C result"
    B2C_TIMEOUT = "b2c_timeout", "B2C queue timeout"
    REVERSAL_RESULT = "reversal_result", "Reversal result"
    REVERSAL_TIMEOUT = "reversal_timeout", "Reversal queue timeout"
    BALANCE_RESULT = "balance_result", "Account balance result"
    BALANCE_TIMEOUT = "balance_timeout", "Account balance queue timeout"
    STATUS_RESULT = "status_result", "Transaction status result"
    STATUS_TIMEOUT = "status_timeout", "Transaction status queue timeout"
    C2B_VALIDATION = "c2b_validation", "C2B validation"
    C2B_CONFIRMATION = "c2b_confirmation", "C2B confirmation"
    # Whatever Daraja posts to the Pull Transactions registration's CallBackURL (undocumented).
    PULL_NOTICE = "pull_notice", "Pull Transactions notice"


class InquiryKind(models.TextChoices):
    BALANCE = "balance", "Account balance"
    STATUS = "status", "Transaction status"


class InquiryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # Daraja accepted it; awaiting the result
    UNKNOWN = "unknown", "Unknown"  # no answer yet, or a queue timeout
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class B2CCommand(models.TextChoices):
    BUSINESS_PAYMENT = "BusinessPayment", "Business payment"
    SALARY_PAYMENT = "SalaryPayment", "Salary payment"
    PROMOTION_PAYMENT = "PromotionPayment", "Promotion payment"


class CallbackOutcome(models.TextChoices):
    RECEIVED = "received", "Received"  # stored, not processed yet
    PROCESSED = "processed", "Processed"
    DUPLICATE = "duplicate", "Duplicate"
    UNMATCHED = "unmatched", "Unmatched"
    REJECTED = "rejected", "Rejected"
    ERROR = "error", "Error"
    # From a source outside PAYMENTS["CALLBACK_ALLOWED_NETWORKS"]: kept, never processed unless
    # a person re-processes it (a replay of failed events leaves it alone).
    REFUSED = "refused", "Refused (source address)"


class StatementCategory(models.TextChoices):
    """Where a line of the M-Pesa statement (or a payment of the ledger) stands, once held
    against the other side. The three in STATEMENT_MISMATCHES wait for a person."""

    MATCHED = "matched", "Matched"
    AMOUNT_DIFFERS = "amount_differs", "Amount differs"
    # Paid on M-Pesa, unknown to us: a confirmation we never received.
    MISSING_FROM_LEDGER = "missing_from_ledger", "On the statement, not on the ledger"
    # Paid according to us, absent from M-Pesa's own record of the period: the serious one.
    MISSING_FROM_STATEMENT = "missing_from_statement", "On the ledger, not on the statement"
    # Charges, transfers, settlements, lines that did not complete: not our customers' payments.
    NOT_OURS = "not_ours", "Not ours (charges, transfers)"


STATEMENT_MISMATCHES = (
    StatementCategory.AMOUNT_DIFFERS,
    StatementCategory.MISSING_FROM_LEDGER,
    StatementCategory.MISSING_FROM_STATEMENT,
)


@dataclass(frozen=True)
class ResultOutcome:
    status: str
    message: str


# STK result codes (API.md §2.4). Closed: a code not listed is a failure, logged as a warning.
STK_RESULT_OUTCOMES: dict[str, ResultOutcome] = {
    "0": ResultOutcome(S.SUCCESS, "Payment received. Thank you."),
    "1": ResultOutcome(S.FAILED, "Your M-Pesa balance is not enough for this payment."),
    "2": ResultOutcome(S.FAILED, "The amount is below the M-Pesa minimum."),
    "3": ResultOutcome(S.FAILED, "The amount is above the M-Pesa maximum for one payment."),
    "4": ResultOutcome(S.FAILED, "This payment would pass your daily M-Pesa limit."),
    "8": ResultOutcome(S.FAILED, "The receiving account cannot take this amount."),
    "17": ResultOutcome(
        S.FAILED, "A payment of the same amount was just made. Wait two minutes and try again."
    ),
    "26": ResultOutcome(S.FAILED, "M-Pesa is busy. Please try again in a few minutes."),
    "1001": ResultOutcome(
        S.FAILED, "Another M-Pesa payment is in progress on your phone. Try again shortly."
    ),
    "1019": ResultOutcome(S.TIMEOUT, "The M-Pesa prompt expired before it was answered."),
    "1025": ResultOutcome(S.FAILED, "M-Pesa could not send the prompt. Please try again."),
    "1031": ResultOutcome(S.CANCELLED, "You cancelled the M-Pesa prompt."),
    "1032": ResultOutcome(S.CANCELLED, "You cancelled the M-Pesa prompt."),
    "1036": ResultOutcome(S.TIMEOUT, "M-Pesa could not reach your phone. Please try again."),
    "1037": ResultOutcome(
        S.TIMEOUT, "M-Pesa could not reach your phone in time. Check it is on and try again."
    ),
    "2001": ResultOutcome(S.FAILED, "The M-Pesa PIN entered was wrong."),
    "2028": ResultOutcome(S.FAILED, "This payment is not allowed for this till or paybill."),
    "8006": ResultOutcome(S.FAILED, "Your M-Pesa PIN is locked. Contact Safaricom to unlock it."),
    "9999": ResultOutcome(S.FAILED, "M-Pesa could not send the prompt. Please try again."),
    "SFC_IC0003": ResultOutcome(S.FAILED, "This payment is not allowed for this till or paybill."),
}
UNKNOWN_RESULT_OUTCOME = ResultOutcome(S.FAILED, "The M-Pesa payment did not go through.")


def stk_result_outcome(result_code: str) -> ResultOutcome:
    """The status and customer message for an STK result code; unknown codes fail loudly."""
    outcome = STK_RESULT_OUTCOMES.get(str(result_code).strip())
    if outcome is None:
        logger.warning(
            "unclassified STK result code %s treated as failed",
            result_code,
            extra={"result_code": result_code},
        )
        return UNKNOWN_RESULT_OUTCOME
    return outcome


# Result codes of B2C, reversal, balance and transaction-status results (API.md §5.4, §8): only
# 0 is a success; these texts explain the others to finance staff. Unlisted codes are failures.
ASYNC_RESULT_MESSAGES: dict[str, str] = {
    "0": "Completed.",
    "1": "The paying account has insufficient funds.",
    "2": "The amount is below the minimum.",
    "3": "The amount is above the maximum.",
    "4": "The recipient's daily limit would be exceeded.",
    "8": "The recipient's maximum balance would be exceeded.",
    "11": "The paying account is not in a state that allows this.",
    "15": "Duplicate request (OriginatorConversationID seen before).",
    "17": "Internal failure at M-Pesa.",
    "21": "The initiator lacks the role for this API.",
    "26": "M-Pesa is too busy.",
    "2001": "The initiator name, password or certificate is wrong.",
    "2006": "The account status does not allow this transaction.",
    "2028": "The shortcode is not allowed this product.",
    "2040": "The recipient is not a registered M-Pesa customer.",
    "8006": "The initiator's security credential is locked.",
    "R000001": "The transaction was already reversed.",
    "R000002": "The original transaction id is invalid.",
    "SFC_IC0003": "The recipient does not exist.",
}


def async_result_message(result_code: str) -> str:
    code = str(result_code).strip()
    message = ASYNC_RESULT_MESSAGES.get(code)
    if message is None:
        logger.warning("unclassified result code %s treated as failed", code)
        return "M-Pesa reported a failure."
    return message


# What the customer reads while a transaction has no result code to explain it.
STATUS_MESSAGES: dict[str, str] = {
    S.PENDING: "Check your phone and enter your M-Pesa PIN to pay.",
    S.UNKNOWN: "We are confirming your payment with M-Pesa. Please wait.",
    S.AWAITING_RECEIPT: "M-Pesa reports your payment; we are waiting for its receipt.",
    S.SUCCESS: "Payment received. Thank you.",
    S.FAILED: "The M-Pesa payment did not go through.",
    S.CANCELLED: "You cancelled the M-Pesa prompt.",
    S.TIMEOUT: "The M-Pesa prompt was not answered in time.",
    S.REVERSED: "This payment was refunded to your M-Pesa.",
}
