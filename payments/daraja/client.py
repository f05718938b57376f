"""DarajaClient: one keyword-only method per Daraja operation.

Each method validates what it can before anything leaves the machine, sends the request with
the operation's retry policy, and returns a frozen dataclass of the synchronous answer. The
client knows nothing of Django, models or HTTP requests to our own site.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from .auth import AccessTokenProvider, MemoryTokenStore, TokenStore
from .config import DarajaConfig
from .dates import NAIROBI, PULL_REQUEST_FORMAT
from .errors import (
    DarajaAuthError,
    DarajaConfigurationError,
    DarajaError,
    DarajaRequestError,
    DarajaServerError,
    InvalidFieldError,
)
from .jsontext import loads_bounded, storable, storable_text
from .phone import normalize_phone_number
from .responses import (
    PULL_ALREADY_REGISTERED,
    PULL_FOUND,
    PULL_NOTHING_FOUND,
    PULL_REGISTERED,
    AsyncRequestAcknowledgement,
    C2BResponse,
    PullRegisterResponse,
    PullTransactionsPage,
    StkPushResponse,
    StkQueryResponse,
)
from .security import read_certificate, security_credential, stk_password, stk_timestamp
from .transport import Transport, error_code_of, optional_text

logger = logging.getLogger(__name__)

STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"
C2B_REGISTER_PATHS = {"v1": "/mpesa/c2b/v1/registerurl", "v2": "/mpesa/c2b/v2/registerurl"}
C2B_SIMULATE_PATHS = {"v1": "/mpesa/c2b/v1/simulate", "v2": "/mpesa/c2b/v2/simulate"}
B2C_PATH = "/mpesa/b2c/v3/paymentrequest"
ACCOUNT_BALANCE_PATH = "/mpesa/accountbalance/v1/query"
TRANSACTION_STATUS_PATH = "/mpesa/transactionstatus/v1/query"
REVERSAL_PATH = "/mpesa/reversal/v1/request"
PULL_REGISTER_PATH = "/pulltransactions/v1/register"
PULL_QUERY_PATH = "/pulltransactions/v1/query"

ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13
B2C_COMMAND_IDS = ("BusinessPayment", "SalaryPayment", "PromotionPayment")
C2B_RESPONSE_TYPES = ("Completed", "Cancelled")
# Answers that mean "this token is no good": expired, revoked or from another environment.
INVALID_TOKEN_ERROR_CODES = frozenset({"404.001.03", "400.003.01"})
STK_QUERY_PENDING_CODE = "500.001.1001"


def decode_response(
    response: requests.Response, *, operation: str, ok_codes: tuple[str, ...] = ("0",)
) -> dict[str, Any]:
    """Turn an HTTP answer into its JSON body, or raise the matching DarajaError.

    A ``ResponseCode`` outside ``ok_codes`` is a refusal (Pull Transactions answers 1000/1001
    where every other API answers 0).

    The body is read within bounds and made storable: whatever Daraja (or something posing as
    it) answers ends up in the ledger, and a NUL there would fail the write after the request
    was accepted.
    """
    try:
        body = storable(loads_bounded(response.content))
    except ValueError:
        body = None
    envelope = body if isinstance(body, dict) else {}
    fields = {
        "http_status": response.status_code,
        "error_code": optional_text(envelope.get("errorCode")),
        "error_message": optional_text(envelope.get("errorMessage")),
        "request_id": optional_text(envelope.get("requestId")),
        "raw": body if body is not None else storable_text(response.text[:2000]),
    }
    status = response.status_code
    if status >= 500:
        raise DarajaServerError(
            f"Daraja {operation} failed with a server error", operation=operation, **fields
        )
    if status >= 400:
        if _is_invalid_token(status, fields["error_code"]):
            raise DarajaAuthError(f"Daraja refused the access token for {operation}", **fields)
        raise DarajaRequestError(f"Daraja refused the {operation} request", **fields)
    if not isinstance(body, dict):
        # A wrong host or path has answered 200 with an HTML page (API.md §10).
        raise DarajaServerError(
            f"Daraja {operation} answer is not a JSON object", operation=operation, **fields
        )
    response_code = optional_text(body.get("ResponseCode"))
    if response_code is not None and response_code not in ok_codes:
        raise DarajaRequestError(
            f"Daraja did not accept the {operation} request",
            http_status=status,
            error_code=response_code,
            error_message=optional_text(body.get("ResponseDescription")),
            raw=body,
        )
    return body


class DarajaClient:
    """A client for one Daraja app. Thread-safe; build one per process and reuse it."""

    def __init__(
        self,
        config: DarajaConfig,
        *,
        session: requests.Session | None = None,
        token_store: TokenStore | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self._transport = Transport(
            base_url=config.api_base_url,
            timeout=(config.connect_timeout, config.read_timeout),
            max_retries=config.max_retries,
            session=session,
            sleep=sleep,
            clock=clock,
        )
        self._tokens = AccessTokenProvider(
            transport=self._transport,
            consumer_key=config.consumer_key,
            consumer_secret=config.consumer_secret,
            store=token_store if token_store is not None else MemoryTokenStore(),
            expiry_margin=config.token_expiry_margin,
            sleep=sleep,
            clock=clock,
        )
        self._now = now or (lambda: datetime.now(NAIROBI))
        self._credential: str | None = None
        self._credential_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DarajaClient(environment={self.config.environment!r})"

    # -- M-Pesa Express (STK Push) -------------------------------------------------------------

    def stk_push(
        self,
        *,
        phone_number: str,
        amount: int | Decimal | str,
        account_reference: str,
        transaction_desc: str,
        callback_url: str,
    ) -> StkPushResponse:
        """Ask M-Pesa to show a PIN prompt. Sent once: never retried after it may have left."""
        config = self.config
        msisdn = normalize_phone_number(phone_number)
        whole_amount = _whole_shillings(amount, field="amount", minimum=1)
        reference = (account_reference or "").strip()
        if not reference:
            raise InvalidFieldError("account_reference", "is required")
        if len(reference) > ACCOUNT_REFERENCE_MAX:
            # It routes the money (the PayBill account number), so it is never cut.
            raise InvalidFieldError(
                "account_reference", f"must be at most {ACCOUNT_REFERENCE_MAX} characters"
            )
        _require(config, "shortcode", "passkey")
        buy_goods = config.stk_transaction_type == "CustomerBuyGoodsOnline"
        if buy_goods:
            _require(config, "till_number")
        timestamp = stk_timestamp(self._now())
        payload = {
            "BusinessShortCode": _as_number(config.shortcode),
            "Password": stk_password(config.shortcode, config.passkey, timestamp),
            "Timestamp": timestamp,
            "TransactionType": config.stk_transaction_type,
            "Amount": whole_amount,
            "PartyA": int(msisdn),
            "PartyB": _as_number(config.till_number if buy_goods else config.shortcode),
            "PhoneNumber": int(msisdn),
            "CallBackURL": _require_url(callback_url, "callback_url"),
            "AccountReference": reference,
            # Daraja's limit is 13 characters; callers keep their full description.
            "TransactionDesc": (transaction_desc or reference).strip()[:TRANSACTION_DESC_MAX],
        }
        body = self._post("stk_push", STK_PUSH_PATH, payload, retry_safe=False)
        return StkPushResponse.from_body(body)

    def stk_query(self, *, checkout_request_id: str) -> StkQueryResponse:
        """The state of an STK Push; "being processed" comes back as ``is_pending``."""
        config = self.config
        if not checkout_request_id:
            raise InvalidFieldError("checkout_request_id", "is required")
        _require(config, "shortcode", "passkey")
        timestamp = stk_timestamp(self._now())
        payload = {
            "BusinessShortCode": _as_number(config.shortcode),
            "Password": stk_password(config.shortcode, config.passkey, timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        }
        try:
            body = self._post("stk_query", STK_QUERY_PATH, payload, retry_safe=True)
        except DarajaError as exc:
            # 500.001.1001 is overloaded; only its "being processed" text means pending.
            if (
                exc.error_code == STK_QUERY_PENDING_CODE
                and "processed" in (exc.error_message or "").lower()
            ):
                raw = exc.raw if isinstance(exc.raw, dict) else {}
                return StkQueryResponse.pending(raw, checkout_request_id=checkout_request_id)
            raise
        return StkQueryResponse.from_body(body, checkout_request_id=checkout_request_id)

    # -- C2B -----------------------------------------------------------------------------------

    def register_c2b_urls(
        self,
        *,
        confirmation_url: str,
        validation_url: str,
        response_type: str = "Completed",
        api_version: str = "v2",
        shortcode: str | None = None,
    ) -> C2BResponse:
        """Register the URLs M-Pesa calls for payments made to the shortcode."""
        if response_type not in C2B_RESPONSE_TYPES:
            raise InvalidFieldError("response_type", "must be Completed or Cancelled")
        path = _versioned(C2B_REGISTER_PATHS, api_version)
        payload = {
            "ShortCode": self._shortcode(shortcode),
            "ResponseType": response_type,
            "ConfirmationURL": _require_url(confirmation_url, "confirmation_url"),
            "ValidationURL": _require_url(validation_url, "validation_url"),
        }
        body = self._post("register_c2b_urls", path, payload, retry_safe=False)
        return C2BResponse.from_body(body)

    def c2b_simulate(
        self,
        *,
        phone_number: str,
        amount: int | Decimal | str,
        bill_ref_number: str = "",
        command_id: str | None = None,
        shortcode: str | None = None,
        api_version: str = "v1",
    ) -> C2BResponse:
        """Simulate a customer paying the shortcode. Sandbox only."""
        if self.config.environment == "production":
            raise DarajaConfigurationError("c2b_simulate exists only in the sandbox")
        command = command_id or (
            "CustomerBuyGoodsOnline"
            if self.config.stk_transaction_type == "CustomerBuyGoodsOnline"
            else "CustomerPayBillOnline"
        )
        payload: dict[str, Any] = {
            "ShortCode": self._shortcode(shortcode),
            "CommandID": command,
            "Amount": _whole_shillings(amount, field="amount", minimum=1),
            "Msisdn": int(normalize_phone_number(phone_number)),
        }
        if bill_ref_number:
            payload["BillRefNumber"] = bill_ref_number
        path = _versioned(C2B_SIMULATE_PATHS, api_version)
        body = self._post("c2b_simulate", path, payload, retry_safe=False)
        return C2BResponse.from_body(body)

    # -- Initiator operations (B2C, balance, status, reversal) ---------------------------------

    def b2c_payment(
        self,
        *,
        originator_conversation_id: str,
        phone_number: str,
        amount: int | Decimal | str,
        remarks: str,
        result_url: str,
        queue_timeout_url: str,
        command_id: str = "BusinessPayment",
        occasion: str = "",
    ) -> AsyncRequestAcknowledgement:
        """Pay a customer from the B2C shortcode (v3). Sent once; reconcile on doubt.

        The caller chooses ``originator_conversation_id`` and stores it before calling: Daraja
        refuses a reused one, which is what prevents a double payout.
        """
        if not originator_conversation_id:
            raise InvalidFieldError("originator_conversation_id", "is required")
        if command_id not in B2C_COMMAND_IDS:
            raise InvalidFieldError("command_id", f"must be one of {', '.join(B2C_COMMAND_IDS)}")
        _require(self.config, "b2c_shortcode", "initiator_name")
        payload: dict[str, Any] = {
            "OriginatorConversationID": originator_conversation_id,
            "InitiatorName": self.config.initiator_name,
            "SecurityCredential": self.security_credential(),
            "CommandID": command_id,
            "Amount": _whole_shillings(amount, field="amount", minimum=1),
            "PartyA": _as_number(self.config.b2c_shortcode),
            "PartyB": int(normalize_phone_number(phone_number)),
            "Remarks": _remarks(remarks),
            "QueueTimeOutURL": _require_url(queue_timeout_url, "queue_timeout_url"),
            "ResultURL": _require_url(result_url, "result_url"),
        }
        if occasion:
            # Spelled as the v3 documentation spells it (API.md §5.1).
            payload["Occassion"] = occasion[:100]
        body = self._post("b2c_payment", B2C_PATH, payload, retry_safe=False)
        return AsyncRequestAcknowledgement.from_body(body, operation="b2c_payment")

    def account_balance(
        self,
        *,
        result_url: str,
        queue_timeout_url: str,
        remarks: str = "Account balance",
        shortcode: str | None = None,
        identifier_type: str = "4",
    ) -> AsyncRequestAcknowledgement:
        """Ask for the shortcode's account balances; they arrive at ``result_url``."""
        _require(self.config, "initiator_name")
        payload = {
            "Initiator": self.config.initiator_name,
            "SecurityCredential": self.security_credential(),
            "CommandID": "AccountBalance",
            "PartyA": self._shortcode(shortcode),
            "IdentifierType": identifier_type,
            "Remarks": _remarks(remarks),
            "QueueTimeOutURL": _require_url(queue_timeout_url, "queue_timeout_url"),
            "ResultURL": _require_url(result_url, "result_url"),
        }
        body = self._post("account_balance", ACCOUNT_BALANCE_PATH, payload, retry_safe=True)
        return AsyncRequestAcknowledgement.from_body(body, operation="account_balance")

    def transaction_status(
        self,
        *,
        result_url: str,
        queue_timeout_url: str,
        transaction_id: str = "",
        original_conversation_id: str = "",
        remarks: str = "Transaction status",
        occasion: str = "",
        shortcode: str | None = None,
        identifier_type: str = "4",
    ) -> AsyncRequestAcknowledgement:
        """Ask about one transaction, by M-Pesa receipt or by our OriginatorConversationID."""
        if not (transaction_id or original_conversation_id):
            raise InvalidFieldError(
                "transaction_id", "give a receipt or an original_conversation_id"
            )
        _require(self.config, "initiator_name")
        payload: dict[str, Any] = {
            "Initiator": self.config.initiator_name,
            "SecurityCredential": self.security_credential(),
            "CommandID": "TransactionStatusQuery",
            "PartyA": self._shortcode(shortcode),
            "IdentifierType": identifier_type,
            "ResultURL": _require_url(result_url, "result_url"),
            "QueueTimeOutURL": _require_url(queue_timeout_url, "queue_timeout_url"),
            "Remarks": _remarks(remarks),
        }
        if transaction_id:
            payload["TransactionID"] = transaction_id
        if original_conversation_id:
            # "Original", not "Originator" (API.md §7).
            payload["OriginalConversationID"] = original_conversation_id
        if occasion:
            payload["Occasion"] = occasion[:100]
        body = self._post("transaction_status", TRANSACTION_STATUS_PATH, payload, retry_safe=True)
        return AsyncRequestAcknowledgement.from_body(body, operation="transaction_status")

    def reversal(
        self,
        *,
        transaction_id: str,
        amount: int | Decimal | str,
        remarks: str,
        result_url: str,
        queue_timeout_url: str,
        occasion: str = "",
        receiver_party: str | None = None,
    ) -> AsyncRequestAcknowledgement:
        """Reverse a payment made to our shortcode. Sent once; reconcile on doubt."""
        if not transaction_id:
            raise InvalidFieldError("transaction_id", "is required")
        _require(self.config, "initiator_name")
        payload: dict[str, Any] = {
            "Initiator": self.config.initiator_name,
            "SecurityCredential": self.security_credential(),
            "CommandID": "TransactionReversal",
            "TransactionID": transaction_id,
            "Amount": _whole_shillings(amount, field="amount", minimum=1),
            "ReceiverParty": self._shortcode(receiver_party),
            # Daraja's spelling is mandatory: the correct one is refused (API.md §8).
            "RecieverIdentifierType": "11",
            "ResultURL": _require_url(result_url, "result_url"),
            "QueueTimeOutURL": _require_url(queue_timeout_url, "queue_timeout_url"),
            "Remarks": _remarks(remarks),
        }
        if occasion:
            payload["Occasion"] = occasion[:100]
        body = self._post("reversal", REVERSAL_PATH, payload, retry_safe=False)
        return AsyncRequestAcknowledgement.from_body(body, operation="reversal")

    # -- Pull Transactions (API.md §13) --------------------------------------------------------

    def pull_transactions_register(
        self, *, nominated_number: str, callback_url: str, shortcode: str | None = None
    ) -> PullRegisterResponse:
        """Register the shortcode for Pull Transactions (production shortcodes only).

        ``nominated_number`` is a Safaricom number that receives Daraja's notices about the
        registration. ``1001`` (already registered) is a success too.
        """
        payload = {
            "ShortCode": str(self._shortcode(shortcode)),
            "RequestType": "Pull",
            "NominatedNumber": normalize_phone_number(nominated_number, field="nominated_number"),
            "CallBackURL": _require_url(callback_url, "callback_url"),
        }
        # Registering again only answers 1001: safe to repeat.
        registered = (PULL_REGISTERED, PULL_ALREADY_REGISTERED)
        body = self._post(
            "pull_register", PULL_REGISTER_PATH, payload, retry_safe=True, ok_codes=registered
        )
        answer = PullRegisterResponse.from_body(body)
        if answer.response_status not in registered:
            raise DarajaRequestError(
                "Daraja did not register the shortcode for Pull Transactions",
                error_code=answer.response_status or None,
                error_message=answer.response_description or None,
                raw=body,
            )
        return answer

    def pull_transactions_query(
        self, *, start: datetime, end: datetime, offset: int = 0, shortcode: str | None = None
    ) -> PullTransactionsPage:
        """One page of the C2B payments to the shortcode between ``start`` and ``end``.

        Daraja keeps about the last 48 hours. Dates go out in Nairobi time; rows are paged with
        ``OffSetValue``, the number of rows already read. ``1001`` (nothing found) is an empty
        page, not an error. Rows are read by shape: one without a readable receipt or amount is
        returned in ``malformed``, never guessed at.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidFieldError("start", "start and end must be timezone-aware")
        if start >= end:
            raise InvalidFieldError("start", "must be before end")
        if offset < 0:
            raise InvalidFieldError("offset", "must be 0 or more")
        if end.microsecond:
            # Daraja takes whole seconds: the window widens to them rather than lose the end.
            end += timedelta(microseconds=1_000_000 - end.microsecond)
        payload = {
            "ShortCode": str(self._shortcode(shortcode)),
            "StartDate": start.astimezone(NAIROBI).strftime(PULL_REQUEST_FORMAT),
            "EndDate": end.astimezone(NAIROBI).strftime(PULL_REQUEST_FORMAT),
            # A string in every reported request.
            "OffSetValue": str(offset),
        }
        ok_codes = (PULL_FOUND, PULL_NOTHING_FOUND)
        try:
            # The portal page calls the query a GET but shows a JSON body; SDKs POST it
            # (unconfirmed which Daraja requires).
            body = self._post(
                "pull_query", PULL_QUERY_PATH, payload, retry_safe=True, ok_codes=ok_codes
            )
        except DarajaRequestError as exc:
            # In case "nothing found" comes with a 4xx: it is still only an empty page.
            raw = exc.raw if isinstance(exc.raw, dict) else {}
            if optional_text(raw.get("ResponseCode")) != PULL_NOTHING_FOUND:
                raise
            body = raw
        return PullTransactionsPage.from_body(body, offset=offset)

    # -- internals -----------------------------------------------------------------------------

    def _post(
        self,
        operation: str,
        path: str,
        payload: Mapping[str, Any],
        *,
        retry_safe: bool,
        ok_codes: tuple[str, ...] = ("0",),
    ) -> dict[str, Any]:
        """POST with a bearer token; on an invalid-token answer refresh once and repeat once.

        Repeating is safe even for money: a refused token stops the request at the gateway.
        All of it ends by the config's ``call_deadline``.
        """
        deadline = (
            self._clock() + self.config.call_deadline if self.config.call_deadline > 0 else None
        )
        token = self._token(operation, deadline)
        response = self._send(operation, path, payload, token, retry_safe, deadline)
        if _is_invalid_token(response.status_code, error_code_of(response)):
            logger.info("daraja %s: access token refused, refreshing once", operation)
            self._tokens.invalidate(token)
            token = self._token(operation, deadline)
            response = self._send(operation, path, payload, token, retry_safe, deadline)
        try:
            return decode_response(response, operation=operation, ok_codes=ok_codes)
        except DarajaError as exc:
            logger.warning(
                "daraja %s refused: %s",
                operation,
                exc,
                extra={
                    "operation": operation,
                    "error_code": exc.error_code,
                    "request_id": exc.request_id,
                },
            )
            raise

    def _token(self, operation: str, deadline: float | None) -> str:
        """A bearer token. Failing to get one means the operation itself was never sent."""
        try:
            return self._tokens.token(deadline=deadline)
        except DarajaAuthError:
            raise
        except DarajaError as exc:
            raise DarajaAuthError(
                f"Daraja {operation} not sent: no access token ({exc.message})",
                http_status=exc.http_status,
                error_code=exc.error_code,
                error_message=exc.error_message,
                request_id=exc.request_id,
            ) from exc

    def _send(
        self,
        operation: str,
        path: str,
        payload: Mapping[str, Any],
        token: str,
        retry_safe: bool,
        deadline: float | None,
    ) -> requests.Response:
        return self._transport.request(
            "POST",
            path,
            operation=operation,
            retry_safe=retry_safe,
            json=payload,
            headers={"Authorization": f"Bearer {token}"},
            deadline=deadline,
        )

    def security_credential(self) -> str:
        """The SecurityCredential: the configured one, else made once from the initiator
        password and the certificate (PEM or DER).

        Raises DarajaConfigurationError, naming the setting and the file but never the
        password, when it cannot be made: call it before recording a request that needs it.
        """
        if self.config.security_credential:
            return self.config.security_credential
        with self._credential_lock:
            if self._credential is None:
                _require(self.config, "initiator_password", "certificate_path")
                path = self.config.certificate_path
                certificate = read_certificate(path)
                try:
                    self._credential = security_credential(
                        self.config.initiator_password, certificate
                    )
                except ValueError as exc:  # a password too long for the key
                    raise DarajaConfigurationError(
                        f"cannot encrypt initiator_password with the certificate at {path}: {exc}"
                    ) from None
            return self._credential

    def _shortcode(self, shortcode: str | None) -> int | str:
        value = shortcode or self.config.shortcode
        if not value:
            raise DarajaConfigurationError("shortcode is not configured")
        return _as_number(value)


def _is_invalid_token(status: int, error_code: str | None) -> bool:
    return (
        status == 401
        or (error_code or "") in INVALID_TOKEN_ERROR_CODES
        or (error_code or "").startswith("401.")
    )


def _require(config: DarajaConfig, *names: str) -> None:
    missing = [name for name in names if not getattr(config, name)]
    if missing:
        raise DarajaConfigurationError(f"Daraja client is missing: {', '.join(missing)}")


def _require_url(url: str, field: str) -> str:
    if not url or not url.startswith(("https://", "http://")):
        raise InvalidFieldError(field, "must be an absolute http(s) URL")
    return url


def _versioned(paths: Mapping[str, str], api_version: str) -> str:
    try:
        return paths[api_version]
    except KeyError:
        raise InvalidFieldError("api_version", "must be v1 or v2") from None


def _remarks(remarks: str) -> str:
    text = (remarks or "").strip()
    if not 2 <= len(text) <= 100:
        raise InvalidFieldError("remarks", "must be 2 to 100 characters")
    return text


def _whole_shillings(value: int | Decimal | str, *, field: str, minimum: int) -> int:
    """Amounts are whole shillings; a fraction or a float is refused, never rounded."""
    if isinstance(value, bool | float):
        raise InvalidFieldError(field, "must be a whole number of shillings (int, not float)")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidFieldError(field, "must be a whole number of shillings") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise InvalidFieldError(field, "must be a whole number of shillings")
    if number < minimum:
        raise InvalidFieldError(field, f"must be at least {minimum}")
    return int(number)


def _as_number(value: str) -> int | str:
    """Shortcodes go out as JSON numbers, as in Safaricom's samples, when they are digits.

    ASCII digits only: int() reads any script's digits, so another script's would be sent as a
    number other than the text the caller gave (and stored).
    """
    text = str(value).strip()
    return int(text) if text.isascii() and text.isdigit() else text
