"""Host C2B validators for the tests, named by dotted path in PAYMENTS["C2B_VALIDATOR"]."""

from __future__ import annotations

from payments.daraja.callbacks import C2BNotification
from payments.services.c2b import C2BValidationResult


def invoices_only(notification: C2BNotification) -> C2BValidationResult:
    """Accept payments to an invoice account ("INV..."), echoing an order id; reject the rest."""
    if notification.bill_ref_number.upper().startswith("INV"):
        return C2BValidationResult(third_party_trans_id=f"order-{notification.bill_ref_number}")
    return C2BValidationResult("C2B00012", "Rejected")


def crashing(notification: C2BNotification) -> C2BValidationResult:
    raise RuntimeError("the host's invoice lookup is broken")


def answers_a_dict(notification: C2BNotification) -> dict:
    return {"ResultCode": "0", "ResultDesc": "Accepted"}


def answers_an_unknown_code(notification: C2BNotification) -> C2BValidationResult:
    return C2BValidationResult("C2B00099", "Rejected")
