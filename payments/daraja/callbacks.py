"""Parse the bodies Daraja POSTs to our callback URLs into frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from .callback_values import (
    CallbackBody,
    Pairs,
    amount_of,
    decimal_of,
    first_wins,
    identifier_of,
    load_object,
    normalised,
    pairs_of,
    receipt_of,
    required,
    result_code_of,
    text_of,
    yes_no,
)
from .dates import parse_daraja_datetime
from .errors import DarajaCallbackError


def party_name(public_name: str | None) -> str | None:
    """The name in Daraja's "254708374149 - John Doe" party strings, or None."""
    if public_name is None or " - " not in public_name:
        return None
    return public_name.split(" - ", 1)[1].strip() or None


# --- STK Push callback (API.md §2.3) ------------------------------------------------------------


@dataclass(frozen=True)
class StkCallback:
    """The outcome of an STK Push, POSTed to its CallBackURL."""

    merchant_request_id: str | None
    checkout_request_id: str
    result_code: str
    result_desc: str
    amount: Decimal | None
    mpesa_receipt_number: str | None
    transaction_date: datetime | None
    phone_number: str | None = field(repr=False)  # personal data stays out of logs
    balance: Decimal | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_success(self) -> bool:
        """True when the customer paid (ResultCode 0)."""
        return self.result_code == "0"


def parse_stk_callback(body: CallbackBody) -> StkCallback:
    """Parse an STK callback; raise DarajaCallbackError without CheckoutRequestID or ResultCode."""
    data = load_object(body)
    envelope = data.get("Body")
    callback = envelope.get("stkCallback") if isinstance(envelope, dict) else None
    if not isinstance(callback, dict):
        raise DarajaCallbackError("missing Body.stkCallback", raw=data)
    callback = normalised(callback)
    metadata = callback.get("CallbackMetadata")
    # Present only on success; look items up by Name, their order is not guaranteed.
    items = first_wins(
        pairs_of(metadata.get("Item") if isinstance(metadata, dict) else None, "Name")
    )
    return StkCallback(
        merchant_request_id=identifier_of(
            callback.get("MerchantRequestID"), "MerchantRequestID", data
        ),
        checkout_request_id=required(
            identifier_of(callback.get("CheckoutRequestID"), "CheckoutRequestID", data),
            "CheckoutRequestID",
            data,
        ),
        result_code=required(result_code_of(callback.get("ResultCode")), "ResultCode", data),
        result_desc=text_of(callback.get("ResultDesc")) or "",
        amount=amount_of(items.get("Amount"), "Amount", data),
        mpesa_receipt_number=receipt_of(items.get("MpesaReceiptNumber")),
        transaction_date=parse_daraja_datetime(items.get("TransactionDate")),
        phone_number=text_of(items.get("PhoneNumber")),
        # Usually absent or without a Value; one SDK reports a "{Amount={BasicAmount=...}}"
        # string, which we do not guess at: it stays in raw.
        balance=decimal_of(items.get("Balance")),
        raw=data,
    )


# --- C2B validation and confirmation (API.md §4.2) ----------------------------------------------


@dataclass(frozen=True)
class C2BNotification:
    """A C2B payment, POSTed to the ValidationURL (before) or ConfirmationURL (after)."""

    transaction_type: str
    trans_id: str
    trans_time: datetime | None
    trans_amount: Decimal
    business_shortcode: str
    bill_ref_number: str
    invoice_number: str
    org_account_balance: Decimal | None
    third_party_trans_id: str
    msisdn: str = field(repr=False)  # personal data stays out of logs
    first_name: str = field(repr=False)
    middle_name: str = field(repr=False)
    last_name: str = field(repr=False)
    raw: dict[str, Any] = field(repr=False)


def parse_c2b_notification(body: CallbackBody) -> C2BNotification:
    """Parse a C2B validation or confirmation body; raise without TransID or TransAmount."""
    data = load_object(body)
    values = normalised(data)

    def text(name: str) -> str:
        return text_of(values.get(name)) or ""

    msisdn = values.get("MSISDN")
    return C2BNotification(
        transaction_type=text("TransactionType"),
        trans_id=required(receipt_of(values.get("TransID")), "TransID", data),
        trans_time=parse_daraja_datetime(values.get("TransTime")),
        trans_amount=required(
            amount_of(values.get("TransAmount"), "TransAmount", data), "TransAmount", data
        ),
        business_shortcode=text("BusinessShortCode"),
        bill_ref_number=text("BillRefNumber"),
        invoice_number=text("InvoiceNumber"),
        # Blank in validation requests: the money has not landed yet.
        org_account_balance=decimal_of(values.get("OrgAccountBalance")),
        third_party_trans_id=text("ThirdPartyTransID"),
        # Masked ("2547 ***** 126") in v2, a SHA-256 hash in v1: an opaque token, kept as sent.
        msisdn=msisdn if isinstance(msisdn, str) else ("" if msisdn is None else str(msisdn)),
        first_name=text("FirstName"),
        middle_name=text("MiddleName"),
        last_name=text("LastName"),
        raw=data,
    )


# --- Result envelopes: B2C, reversal, account balance, transaction status (API.md §5.3-8) -------


@dataclass(frozen=True)
class AccountBalance:
    """One account of an AccountBalance string. The amount labels are as implementers read them."""

    name: str
    currency: str | None
    current: Decimal | None
    available: Decimal | None
    reserved: Decimal | None
    uncleared: Decimal | None


def parse_account_balances(value: str) -> tuple[AccountBalance, ...]:
    """Parse "Name|Currency|current|available|reserved|uncleared&..." (API.md §6.1).

    Accounts are told apart by name, never by position. Missing or non-numeric amounts become
    None; chunks without a name are skipped; values may be negative (Charges Paid Account).
    """
    if not isinstance(value, str):
        return ()
    accounts = []
    for chunk in value.split("&"):
        parts = [part.strip() for part in chunk.split("|")]
        if not parts[0]:
            continue
        currency, *amounts = (parts[1:] + [""] * 5)[:5]
        current, available, reserved, uncleared = (decimal_of(amount) for amount in amounts)
        accounts.append(
            AccountBalance(
                name=parts[0],
                currency=currency or None,
                current=current,
                available=available,
                reserved=reserved,
                uncleared=uncleared,
            )
        )
    return tuple(accounts)


@dataclass(frozen=True)
class ResultBody:
    """A {"Result": {...}} body POSTed to a ResultURL (or QueueTimeOutURL).

    ``parameters`` maps each ResultParameter key, spaces removed, to its Value (None when the
    item has none); when a key repeats, the first occurrence wins.
    """

    result_type: str
    result_code: str
    result_desc: str
    originator_conversation_id: str | None
    conversation_id: str | None
    transaction_id: str | None
    parameters: dict[str, Any]
    reference_data: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_success(self) -> bool:
        """True when Daraja reports the request as carried out (ResultCode 0)."""
        return self.result_code == "0"


def _result_parameter_items(result: dict[str, Any]) -> Any:
    parameters = result.get("ResultParameters")
    if isinstance(parameters, dict):
        return parameters.get("ResultParameter")
    if isinstance(parameters, list):  # flat list, as some SDKs model it
        return parameters
    # mpesakit's example inverts the nesting: ResultParameter.ResultParameters[].
    inverted = result.get("ResultParameter")
    if isinstance(inverted, dict):
        return inverted.get("ResultParameters", inverted)
    return inverted


def _parse_envelope(body: CallbackBody, *, lenient: bool = False) -> tuple[ResultBody, Pairs]:
    """The shared fields, plus the parameters as ordered pairs (keys may repeat)."""
    data = load_object(body)
    result = data.get("Result")
    if not isinstance(result, dict):
        if not lenient:
            raise DarajaCallbackError("missing Result object", raw=data)
        result = data
    values = normalised(result)
    originator_id = identifier_of(
        values.get("OriginatorConversationID"), "OriginatorConversationID", data
    )
    conversation_id = identifier_of(values.get("ConversationID"), "ConversationID", data)
    if lenient:
        top = normalised(data)
        originator_id = originator_id or identifier_of(
            top.get("OriginatorConversationID"), "OriginatorConversationID", data
        )
        conversation_id = conversation_id or identifier_of(
            top.get("ConversationID"), "ConversationID", data
        )
    result_code = result_code_of(values.get("ResultCode"))
    if result_code is None and lenient and (originator_id or conversation_id):
        result_code = ""
    pairs = pairs_of(_result_parameter_items(values), "Key")
    reference = values.get("ReferenceData")
    reference_items = reference.get("ReferenceItem") if isinstance(reference, dict) else None
    base = ResultBody(
        result_type=text_of(values.get("ResultType")) or "",
        result_code=required(result_code, "ResultCode", data),
        result_desc=text_of(values.get("ResultDesc")) or "",
        originator_conversation_id=originator_id,
        conversation_id=conversation_id,
        transaction_id=receipt_of(values.get("TransactionID")),
        parameters=first_wins(pairs),
        reference_data=first_wins(pairs_of(reference_items, "Key")),
        raw=data,
    )
    return base, pairs


_R = TypeVar("_R", bound=ResultBody)


def _extend(cls: type[_R], base: ResultBody, **extra: Any) -> _R:
    shared = {f.name: getattr(base, f.name) for f in fields(ResultBody)}
    return cls(**shared, **extra)


def parse_result(body: CallbackBody) -> ResultBody:
    """Parse any {"Result": {...}} body; raise DarajaCallbackError without Result.ResultCode."""
    return _parse_envelope(body)[0]


def parse_queue_timeout(body: CallbackBody) -> ResultBody:
    """Parse a QueueTimeOutURL body, whose shape Safaricom does not document (API.md §5.3).

    Assumes the Result envelope but accepts a body without ResultCode (result_code is then "")
    as long as it carries an OriginatorConversationID or ConversationID, inside Result or at the
    top level. A timeout is not a failure: check with Transaction Status before acting.
    """
    return _parse_envelope(body, lenient=True)[0]


@dataclass(frozen=True)
class B2CResult(ResultBody):
    """A B2C payout result (API.md §5.3)."""

    receipt_number: str | None
    amount: Decimal | None
    receiver_public_name: str | None = field(repr=False)
    recipient_name: str | None = field(repr=False)
    completed_at: datetime | None
    utility_account_balance: Decimal | None
    working_account_balance: Decimal | None
    charges_paid_account_balance: Decimal | None
    recipient_is_registered: bool | None


def parse_b2c_result(body: CallbackBody) -> B2CResult:
    """Parse a B2C result; the parameters are absent on failure, so their fields are None."""
    base, _ = _parse_envelope(body)
    params = base.parameters
    receipt = receipt_of(params.get("TransactionReceipt"))
    if receipt is None and base.is_success:
        receipt = base.transaction_id
    public_name = text_of(params.get("ReceiverPartyPublicName"))
    return _extend(
        B2CResult,
        base,
        receipt_number=receipt,
        amount=amount_of(params.get("TransactionAmount"), "TransactionAmount", base.raw),
        receiver_public_name=public_name,
        recipient_name=party_name(public_name),
        completed_at=parse_daraja_datetime(params.get("TransactionCompletedDateTime")),
        utility_account_balance=decimal_of(params.get("B2CUtilityAccountAvailableFunds")),
        working_account_balance=decimal_of(params.get("B2CWorkingAccountAvailableFunds")),
        charges_paid_account_balance=decimal_of(params.get("B2CChargesPaidAccountAvailableFunds")),
        recipient_is_registered=yes_no(params.get("B2CRecipientIsRegisteredCustomer")),
    )


@dataclass(frozen=True)
class ReversalResult(ResultBody):
    """A reversal result (API.md §8)."""

    amount: Decimal | None
    original_transaction_id: str | None
    completed_at: datetime | None
    charge: Decimal | None
    credit_party_public_name: str | None = field(repr=False)
    debit_party_public_name: str | None
    debit_account_balance: AccountBalance | None


def parse_reversal_result(body: CallbackBody) -> ReversalResult:
    """Parse a reversal result; failures carry codes such as "R000002" and no parameters."""
    base, _ = _parse_envelope(body)
    params = base.parameters
    balances = parse_account_balances(params.get("DebitAccountBalance"))
    return _extend(
        ReversalResult,
        base,
        amount=amount_of(params.get("Amount"), "Amount", base.raw),
        original_transaction_id=text_of(params.get("OriginalTransactionID")),
        completed_at=parse_daraja_datetime(params.get("TransCompletedTime")),
        charge=decimal_of(params.get("Charge")),
        credit_party_public_name=text_of(params.get("CreditPartyPublicName")),
        debit_party_public_name=text_of(params.get("DebitPartyPublicName")),
        debit_account_balance=balances[0] if balances else None,
    )


@dataclass(frozen=True)
class AccountBalanceResult(ResultBody):
    """An Account Balance result (API.md §6); ``accounts`` is empty on failure."""

    accounts: tuple[AccountBalance, ...]
    completed_at: datetime | None

    def account(self, name: str) -> AccountBalance | None:
        """The account called ``name`` (e.g. "Utility Account"), ignoring case, or None."""
        wanted = name.strip().casefold()
        return next((a for a in self.accounts if a.name.casefold() == wanted), None)


def parse_account_balance_result(body: CallbackBody) -> AccountBalanceResult:
    """Parse an Account Balance result; BOCompletedTime may be a string or a number."""
    base, _ = _parse_envelope(body)
    params = base.parameters
    return _extend(
        AccountBalanceResult,
        base,
        accounts=parse_account_balances(params.get("AccountBalance")),
        completed_at=parse_daraja_datetime(params.get("BOCompletedTime")),
    )


@dataclass(frozen=True)
class TransactionStatusResult(ResultBody):
    """A Transaction Status result (API.md §7), describing the queried transaction.

    The top-level ids belong to the status query itself; ``original_conversation_id`` and
    ``original_transaction_conversation_id`` are the OriginatorConversationID and
    ConversationID of the queried transaction. The top-level TransactionID can be a
    placeholder ("MBN0000000"): use ``receipt_number``.
    """

    receipt_number: str | None
    transaction_status: str | None
    amount: Decimal | None
    initiated_at: datetime | None
    finalised_at: datetime | None
    debit_party_name: str | None
    credit_party_name: str | None = field(repr=False)
    debit_account_type: str | None
    debit_party_charges: str | None
    reason_type: str | None
    original_conversation_id: str | None
    original_transaction_conversation_id: str | None


def parse_transaction_status_result(body: CallbackBody) -> TransactionStatusResult:
    """Parse a Transaction Status result; see TransactionStatusResult for the ids."""
    base, pairs = _parse_envelope(body)
    params = base.parameters
    credit_party = text_of(params.get("CreditPartyName"))
    debit_parties = [value for name, value in pairs if name == "DebitPartyName"]
    if credit_party is None and len(debit_parties) > 1:
        # Safaricom's sample lists DebitPartyName twice, the second holding the customer.
        credit_party = text_of(debit_parties[1])
    return _extend(
        TransactionStatusResult,
        base,
        receipt_number=receipt_of(params.get("ReceiptNo")),
        transaction_status=text_of(params.get("TransactionStatus")),
        amount=amount_of(params.get("Amount"), "Amount", base.raw),
        initiated_at=parse_daraja_datetime(params.get("InitiatedTime")),
        # The 2017 samples spell it FinalizedTime.
        finalised_at=parse_daraja_datetime(
            params.get("FinalisedTime") or params.get("FinalizedTime")
        ),
        debit_party_name=text_of(params.get("DebitPartyName")),
        credit_party_name=credit_party,
        debit_account_type=text_of(params.get("DebitAccountType")),
        debit_party_charges=text_of(params.get("DebitPartyCharges")),
        reason_type=text_of(params.get("ReasonType")),
        original_conversation_id=text_of(params.get("OriginatorConversationID")),
        original_transaction_conversation_id=text_of(params.get("ConversationID")),
    )
