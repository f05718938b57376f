"""The simulator's documented test inputs: which phone number gives which outcome or fault.

The README's table is generated from nothing else: keep both in step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    result_code: str
    result_desc: str
    # Fault modes: how the result is delivered.
    duplicate: bool = False  # the callback is delivered twice
    late: bool = False  # delivered after the late delay instead of the normal one
    silent: bool = False  # no callback at all (reconciliation must find the result)
    queue_timeout_first: bool = False  # a queue timeout, then the result (B2C, reversal)
    # A C2B payment is validated and lands, but its confirmation is never delivered: only Pull
    # Transactions (or the statement) shows it.
    confirmation_lost: bool = False

    @property
    def is_success(self) -> bool:
        return self.result_code == "0"


SUCCESS = Outcome("0", "The service request is processed successfully.")

# Phone numbers (normalised) that give a special outcome; every other number succeeds.
OUTCOMES_BY_PHONE: dict[str, Outcome] = {
    "254700000001": Outcome("1032", "Request cancelled by user"),
    "254700000002": Outcome("1037", "DS timeout user cannot be reached"),
    "254700000003": Outcome("2001", "The initiator information is invalid."),
    "254700000004": Outcome("1", "The balance is insufficient for the transaction."),
    "254700000011": Outcome(SUCCESS.result_code, SUCCESS.result_desc, duplicate=True),
    "254700000012": Outcome(SUCCESS.result_code, SUCCESS.result_desc, late=True),
    "254700000013": Outcome(SUCCESS.result_code, SUCCESS.result_desc, silent=True),
    "254700000014": Outcome(SUCCESS.result_code, SUCCESS.result_desc, queue_timeout_first=True),
    "254700000015": Outcome(SUCCESS.result_code, SUCCESS.result_desc, confirmation_lost=True),
}


def outcome_for(phone_number: str) -> Outcome:
    return OUTCOMES_BY_PHONE.get(phone_number, SUCCESS)
