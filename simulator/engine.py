"""What the simulated Daraja decides and posts back: results, ledger moves, C2B notifications.

Bodies follow the shapes in shared/daraja/API.md (and the published samples), including
Daraja's key spellings, so that our parsers meet the same quirks they meet in production.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction as db_transaction
from django.db.models import F, Sum
from django.utils import timezone

from payments.daraja.dates import NAIROBI
from simulator import outbox
from simulator.models import C2BRegistration, LedgerAccount, OutboxCallback, SimulatedRequest
from simulator.outcomes import SUCCESS, Outcome, outcome_for

UTILITY = "Utility Account"
WORKING = "Working Account"
CHARGES = "Charges Paid Account"
OPENING_BALANCES = {WORKING: Decimal("500000.00"), UTILITY: Decimal("1000000.00"), CHARGES: 0}
# Outcomes that only a customer's PIN prompt can have.
STK_ONLY_CODES = frozenset({"1032", "1037"})
QUEUE_TIMEOUT_REFERENCE = "https://simulator.invalid/results/v1/submit"


def config(name: str, default: Any) -> Any:
    return getattr(settings, "DARAJA_SIMULATOR", {}).get(name, default)


def json_code(code: str) -> int | str:
    """Daraja sends numeric result codes as JSON numbers in callbacks (API.md §0.1)."""
    return int(code) if code.isdigit() else code


def new_receipt() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    return "S" + "".join(secrets.choice(alphabet) for _ in range(9))


def new_conversation_id() -> str:
    return f"AG_{timezone.now().astimezone(NAIROBI):%Y%m%d}_{secrets.token_hex(10)}"


def compact_time(moment: datetime) -> str:
    return moment.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


# -- ledger ------------------------------------------------------------------------------------


def ledger(shortcode: str) -> dict[str, LedgerAccount]:
    accounts = {}
    for name, opening in OPENING_BALANCES.items():
        account, _ = LedgerAccount.objects.get_or_create(
            shortcode=shortcode, name=name, defaults={"balance": opening}
        )
        accounts[name] = account
    return accounts


def ledger_move(shortcode: str, account: str, amount: Decimal | int) -> None:
    ledger(shortcode)
    LedgerAccount.objects.filter(shortcode=shortcode, name=account).update(
        balance=F("balance") + Decimal(amount)
    )


def balance_string(shortcode: str) -> str:
    parts = []
    for name, account in ledger(shortcode).items():
        account.refresh_from_db()
        value = f"{account.balance:.2f}"
        parts.append(f"{name}|KES|{value}|{value}|0.00|0.00")
    return "&".join(parts)


# -- STK Push ----------------------------------------------------------------------------------


def stk_accept(payload: dict, *, shortcode: str) -> SimulatedRequest:
    """Record an accepted push, decide its outcome, move the ledger and queue its callback."""
    phone = str(payload["PhoneNumber"])
    amount = int(Decimal(str(payload["Amount"])))
    outcome = outcome_for(phone)
    delay = outbox.callback_delay("late" if outcome.late else "normal")
    now = timezone.now()
    request = SimulatedRequest.objects.create(
        kind="stk",
        checkout_request_id=f"ws_CO_{compact_time(now)}{secrets.randbelow(10**9):09d}",
        conversation_id=f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(8)}",
        receipt=new_receipt() if outcome.is_success else "",
        amount=amount,
        phone_number=phone,
        result_code=outcome.result_code,
        result_desc=outcome.result_desc,
        completes_at=now + timedelta(seconds=delay),
        payload=payload,
    )
    if outcome.is_success:
        ledger_move(shortcode, UTILITY, amount)
    if not outcome.silent:
        body = stk_callback_body(request)
        copies = 2 if outcome.duplicate else 1
        for _ in range(copies):
            outbox.schedule(payload["CallBackURL"], body, delay=delay)
    return request


def stk_callback_body(request: SimulatedRequest) -> dict:
    callback: dict[str, Any] = {
        "MerchantRequestID": request.conversation_id,
        "CheckoutRequestID": request.checkout_request_id,
        "ResultCode": int(request.result_code)
        if request.result_code.isdigit()
        else request.result_code,
        "ResultDesc": request.result_desc,
    }
    if request.result_code == "0":
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": float(request.amount)},
                {"Name": "MpesaReceiptNumber", "Value": request.receipt},
                {"Name": "Balance"},
                {"Name": "TransactionDate", "Value": int(compact_time(request.completes_at))},
                {"Name": "PhoneNumber", "Value": int(request.phone_number)},
            ]
        }
    return {"Body": {"stkCallback": callback}}


# -- B2C, reversal, balance, status ------------------------------------------------------------


def result_envelope(
    request: SimulatedRequest, parameters: list[dict] | None, *, transaction_id: str
) -> dict:
    result: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": int(request.result_code)
        if request.result_code.isdigit()
        else request.result_code,
        "ResultDesc": request.result_desc,
        "OriginatorConversationID": request.originator_conversation_id,
        "ConversationID": request.conversation_id,
        "TransactionID": transaction_id,
    }
    if parameters:
        result["ResultParameters"] = {"ResultParameter": parameters}
    result["ReferenceData"] = {
        "ReferenceItem": {"Key": "QueueTimeoutURL", "Value": QUEUE_TIMEOUT_REFERENCE}
    }
    return {"Result": result}


def queue_timeout_body(request: SimulatedRequest) -> dict:
    # Undocumented shape (API.md §5.3): the usual Result envelope with a timeout code.
    return {
        "Result": {
            "ResultType": 1,
            "ResultCode": "SVC0403",
            "ResultDesc": "The request timed out in the queue.",
            "OriginatorConversationID": request.originator_conversation_id,
            "ConversationID": request.conversation_id,
            "TransactionID": "",
        }
    }


def deliver_result(request: SimulatedRequest, outcome: Outcome, body: dict, payload: dict) -> None:
    """Queue the result (and the faults asked for) for the request's URLs."""
    if outcome.silent:
        return
    delay = outbox.callback_delay("late" if outcome.late else "normal")
    if outcome.queue_timeout_first:
        outbox.schedule(payload["QueueTimeOutURL"], queue_timeout_body(request), delay=delay)
        delay = outbox.callback_delay("late")
    for _ in range(2 if outcome.duplicate else 1):
        outbox.schedule(payload["ResultURL"], body, delay=delay)


def b2c_accept(payload: dict, *, shortcode: str, credential_ok: bool) -> SimulatedRequest:
    phone = str(payload["PartyB"])
    amount = int(Decimal(str(payload["Amount"])))
    outcome = outcome_for(phone)
    if outcome.result_code in STK_ONLY_CODES:
        outcome = SUCCESS  # a payout has no prompt to cancel or leave unanswered
    if not credential_ok:
        outcome = Outcome("2001", "The initiator information is invalid.")
    elif outcome.is_success and ledger(shortcode)[UTILITY].balance < amount:
        outcome = Outcome("1", "The balance is insufficient for the transaction.")
    return _accept_result_request(
        "b2c",
        payload,
        outcome,
        amount=amount,
        phone=phone,
        originator_id=str(payload["OriginatorConversationID"]),
        shortcode=shortcode,
        parameters=lambda request: b2c_parameters(request, shortcode),
        ledger_effect=lambda: ledger_move(shortcode, UTILITY, -amount),
    )


def b2c_parameters(request: SimulatedRequest, shortcode: str) -> list[dict]:
    accounts = ledger(shortcode)
    return [
        {"Key": "TransactionAmount", "Value": request.amount},
        {"Key": "TransactionReceipt", "Value": request.receipt},
        {"Key": "ReceiverPartyPublicName", "Value": f"{request.phone_number} - Simulated Customer"},
        {
            "Key": "TransactionCompletedDateTime",
            "Value": request.completes_at.astimezone(NAIROBI).strftime("%d.%m.%Y %H:%M:%S"),
        },
        {"Key": "B2CUtilityAccountAvailableFunds", "Value": float(accounts[UTILITY].balance)},
        {"Key": "B2CWorkingAccountAvailableFunds", "Value": float(accounts[WORKING].balance)},
        {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
        {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": float(accounts[CHARGES].balance)},
    ]


def reversal_accept(payload: dict, *, shortcode: str, credential_ok: bool) -> SimulatedRequest:
    receipt = str(payload["TransactionID"])
    amount = int(Decimal(str(payload["Amount"])))
    original = SimulatedRequest.objects.filter(
        receipt=receipt, kind__in=("stk", "c2b"), result_code="0"
    ).first()
    outcome = Outcome("0", "The service request is processed successfully.")
    if not credential_ok:
        outcome = Outcome("2001", "The initiator information is invalid.")
    elif original is None:
        outcome = Outcome("R000002", "The OriginalTransactionID is invalid.")
    else:
        reversed_before = (
            SimulatedRequest.objects.filter(
                kind="reversal", result_code="0", payload__TransactionID=receipt
            ).aggregate(total=Sum("amount"))["total"]
            or 0
        )
        if reversed_before + amount > original.amount:
            outcome = Outcome("R000001", "The transaction has already been reversed.")
        else:
            # Fault modes follow the paying phone number of the original payment.
            fault = outcome_for(original.phone_number)
            if not fault.is_success:
                fault = outcome
            outcome = Outcome(
                outcome.result_code,
                outcome.result_desc,
                duplicate=fault.duplicate,
                late=fault.late,
                silent=fault.silent,
                queue_timeout_first=fault.queue_timeout_first,
            )
    phone = original.phone_number if original else ""
    return _accept_result_request(
        "reversal",
        payload,
        outcome,
        amount=amount,
        phone=phone,
        originator_id=f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(8)}",
        shortcode=shortcode,
        parameters=lambda request: [
            {"Key": "DebitAccountBalance", "Value": _account_text(shortcode, UTILITY)},
            {"Key": "Amount", "Value": float(request.amount)},
            {"Key": "TransCompletedTime", "Value": int(compact_time(request.completes_at))},
            {"Key": "OriginalTransactionID", "Value": receipt},
            {"Key": "Charge", "Value": 0.0},
            {"Key": "CreditPartyPublicName", "Value": f"{phone} - Simulated Customer"},
            {"Key": "DebitPartyPublicName", "Value": f"{shortcode} - Simulated Business"},
        ],
        ledger_effect=lambda: ledger_move(shortcode, UTILITY, -amount),
    )


def balance_accept(payload: dict, *, shortcode: str, credential_ok: bool) -> SimulatedRequest:
    outcome = (
        Outcome("0", "The service request is processed successfully")
        if credential_ok
        else Outcome("2001", "The initiator information is invalid.")
    )
    return _accept_result_request(
        "balance",
        payload,
        outcome,
        amount=0,
        phone="",
        originator_id=f"{secrets.randbelow(10**5)}-{secrets.randbelow(10**8)}-1",
        shortcode=shortcode,
        parameters=lambda request: [
            {"Key": "AccountBalance", "Value": balance_string(shortcode)},
            {"Key": "BOCompletedTime", "Value": compact_time(request.completes_at)},
        ],
        ledger_effect=None,
        with_receipt=False,
    )


def status_accept(payload: dict, *, credential_ok: bool) -> SimulatedRequest:
    receipt = str(payload.get("TransactionID") or "")
    originator_id = str(payload.get("OriginalConversationID") or "")
    found = None
    if receipt:
        found = SimulatedRequest.objects.filter(receipt=receipt).exclude(kind="status").first()
    if found is None and originator_id:
        found = (
            SimulatedRequest.objects.filter(originator_conversation_id=originator_id)
            .exclude(kind="status")
            .first()
        )
    if not credential_ok:
        outcome = Outcome("2001", "The initiator information is invalid.")
    elif found is None:
        # What Daraja's sandbox has been seen answering about an id it does not know.
        outcome = Outcome("2032", "The transaction receipt number does not exist.")
    else:
        outcome = Outcome("0", "The service request is processed successfully.")

    def parameters(request: SimulatedRequest) -> list[dict]:
        if found is None:
            return []
        done = found.completes_at <= timezone.now()
        state = ("Completed" if found.result_code == "0" else "Failed") if done else "Pending"
        return [
            {"Key": "DebitPartyName", "Value": f"{payload.get('PartyA')} - Simulated Business"},
            {"Key": "CreditPartyName", "Value": f"{found.phone_number} - Simulated Customer"},
            {"Key": "OriginatorConversationID", "Value": found.originator_conversation_id},
            {"Key": "InitiatedTime", "Value": compact_time(found.created_at)},
            {"Key": "DebitAccountType", "Value": "Utility Account"},
            {"Key": "TransactionReason"},
            {"Key": "ReasonType", "Value": found.kind},
            {"Key": "TransactionStatus", "Value": state},
            {"Key": "FinalisedTime", "Value": compact_time(found.completes_at)},
            {"Key": "Amount", "Value": str(found.amount)},
            {"Key": "ConversationID", "Value": found.conversation_id},
            {"Key": "ReceiptNo", "Value": found.receipt},
        ]

    return _accept_result_request(
        "status",
        payload,
        outcome,
        amount=found.amount if found else 0,
        phone="",
        originator_id=f"{secrets.randbelow(10**5)}-{secrets.randbelow(10**8)}-2",
        shortcode=str(payload.get("PartyA", "")),
        parameters=parameters,
        ledger_effect=None,
        with_receipt=False,
    )


def _accept_result_request(
    kind: str,
    payload: dict,
    outcome: Outcome,
    *,
    amount: int,
    phone: str,
    originator_id: str,
    shortcode: str,
    parameters,
    ledger_effect,
    with_receipt: bool = True,
) -> SimulatedRequest:
    delay = outbox.callback_delay("late" if outcome.late else "normal")
    with db_transaction.atomic():
        request = SimulatedRequest.objects.create(
            kind=kind,
            conversation_id=new_conversation_id(),
            originator_conversation_id=originator_id,
            receipt=new_receipt() if outcome.is_success and with_receipt else "",
            amount=amount,
            phone_number=phone,
            result_code=outcome.result_code,
            result_desc=outcome.result_desc,
            completes_at=timezone.now() + timedelta(seconds=delay),
            payload=payload,
        )
        if outcome.is_success and ledger_effect:
            ledger_effect()
        placeholder = f"{request.receipt[:3] or 'SIM'}0000000"
        body = result_envelope(
            request,
            parameters(request) if outcome.is_success else None,
            transaction_id=request.receipt or placeholder,
        )
    deliver_result(request, outcome, body, payload)
    return request


def _account_text(shortcode: str, name: str) -> str:
    account = ledger(shortcode)[name]
    value = f"{account.balance:.2f}"
    return f"{name}|KES|{value}|{value}|0.00|0.00"


# -- C2B ---------------------------------------------------------------------------------------


def c2b_simulate_accept(payload: dict) -> SimulatedRequest:
    """A customer pays the shortcode: validation first (if registered), then confirmation."""
    shortcode = str(payload["ShortCode"])
    amount = int(Decimal(str(payload["Amount"])))
    phone = str(payload["Msisdn"])
    now = timezone.now()
    request = SimulatedRequest.objects.create(
        kind="c2b",
        conversation_id=new_conversation_id(),
        originator_conversation_id=f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(8)}",
        receipt=new_receipt(),
        amount=amount,
        phone_number=phone,
        result_code="0",
        result_desc="Completed",
        completes_at=now,
        payload=payload,
    )
    registration = C2BRegistration.objects.filter(shortcode=shortcode).first()
    if registration is None:
        ledger_move(shortcode, UTILITY, amount)  # no URLs: M-Pesa just completes the payment
        return request
    body = c2b_notification_body(request, registration)
    outbox.schedule(
        registration.validation_url,
        {**body, "OrgAccountBalance": ""},
        delay=outbox.callback_delay(),
        follow_up={"type": "c2b_confirm", "request_id": request.pk, "body": body},
    )
    return request


def c2b_notification_body(request: SimulatedRequest, registration: C2BRegistration) -> dict:
    payload = request.payload
    phone = request.phone_number
    # v2 masks the MSISDN (API.md §4.1); v1 would hash it.
    masked = f"{phone[:4]} ***** {phone[-3:]}"
    buy_goods = payload.get("CommandID") == "CustomerBuyGoodsOnline"
    return {
        "TransactionType": "Buy Goods" if buy_goods else "Pay Bill",
        "TransID": request.receipt,
        "TransTime": compact_time(request.created_at),
        "TransAmount": f"{request.amount:.2f}",
        "BusinessShortCode": registration.shortcode,
        "BillRefNumber": str(payload.get("BillRefNumber") or ""),
        "InvoiceNumber": "",
        "OrgAccountBalance": "",
        "ThirdPartyTransID": "",
        "MSISDN": masked,
        "FirstName": "SIMULATED",
        "MiddleName": "",
        "LastName": "CUSTOMER",
    }


def run_follow_up(row: OutboxCallback, response: Any) -> None:
    """After a validation call: confirm if accepted, or if unreachable and the default is
    Completed (API.md §4.3); otherwise the payment is cancelled."""
    follow_up = row.follow_up or {}
    if follow_up.get("type") != "c2b_confirm":
        return
    request = SimulatedRequest.objects.get(pk=follow_up["request_id"])
    registration = C2BRegistration.objects.get(shortcode=request.payload["ShortCode"].__str__())
    try:
        answer = response.json()
        accepted = str(answer.get("ResultCode")) == "0"
        third_party_id = str(answer.get("ThirdPartyTransID") or "")
    except (AttributeError, ValueError):
        # No usable answer (unreachable, too slow, not JSON): the registered default applies.
        accepted = registration.response_type == "Completed"
        third_party_id = ""
    if not accepted:
        SimulatedRequest.objects.filter(pk=request.pk).update(
            result_code="C2B00016", result_desc="Rejected by validation"
        )
        return
    ledger_move(registration.shortcode, UTILITY, request.amount)
    if outcome_for(request.phone_number).confirmation_lost:
        return
    body = dict(follow_up["body"])
    body["ThirdPartyTransID"] = third_party_id
    body["OrgAccountBalance"] = f"{ledger(registration.shortcode)[UTILITY].balance:.2f}"
    outbox.schedule(registration.confirmation_url, body, delay=0)


# -- Pull Transactions -------------------------------------------------------------------------

PULL_ROW_TYPES = {"CustomerBuyGoodsOnline": "c2b-buy-goods-debit"}


def pull_rows(shortcode: str, start: datetime, end: datetime) -> list[dict]:
    """The payments the shortcode received between ``start`` and ``end``, oldest first, as Pull
    Transactions lists them (API.md §13; the shapes as reported by SDKs): STK Pushes paid and
    C2B payments not refused by validation, with their lost confirmations."""
    paid = SimulatedRequest.objects.filter(
        kind__in=("stk", "c2b"), result_code="0", created_at__lte=end
    ).order_by("pk")
    rows = []
    for request in paid:
        payload = request.payload
        if request.kind == "stk":
            to_shortcode = str(payload.get("BusinessShortCode", ""))
            moment = request.completes_at
            reference = str(payload.get("AccountReference", ""))
            command = str(payload.get("TransactionType", ""))
        else:
            to_shortcode = str(payload.get("ShortCode", ""))
            moment = request.created_at
            reference = str(payload.get("BillRefNumber") or "")
            command = str(payload.get("CommandID", ""))
        if to_shortcode != shortcode or not start <= moment <= end or moment > timezone.now():
            continue
        rows.append(
            {
                "transactionId": request.receipt,
                "trxDate": moment.astimezone(NAIROBI).isoformat(timespec="seconds"),
                # A JSON number, and unmasked, in the reported samples.
                "msisdn": int(request.phone_number),
                "sender": "MPESA",
                "transactiontype": PULL_ROW_TYPES.get(command, "c2b-pay-bill-debit"),
                "billreference": reference,
                "amount": f"{request.amount}.0",
                "organizationname": "Simulated Business",
            }
        )
    return rows
