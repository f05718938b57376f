"""Daraja's HTTP surface, simulated: the same paths, checks, answers and error envelopes.

mpesa_site.urls mounts them only on a DEBUG server in simulator mode; each view also answers
404 unless PAYMENTS["ENVIRONMENT"] is "simulator" (settings changed while the site runs).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from payments.conf import payments_settings
from payments.daraja.config import banned_url_words
from payments.daraja.dates import NAIROBI, PULL_REQUEST_FORMAT
from payments.daraja.jsontext import loads_bounded
from payments.statement_file import TIME_FORMATS
from simulator import engine, statement
from simulator.models import C2BRegistration, PullRegistration, SimulatedRequest, SimulatedToken

# [0-9], not \d or str.isdigit(), which take any script's digits: like our client, the double
# refuses numbers written in them.
DIGITS = re.compile(r"[0-9]+")
MSISDN = re.compile(r"254[17][0-9]{8}")
TIMESTAMP = re.compile(r"[0-9]{14}")


class DarajaFault(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def bad_request(field: str) -> DarajaFault:
    return DarajaFault(400, "400.002.02", f"Bad Request - Invalid {field}")


def envelope(status: int, code: str, message: str) -> JsonResponse:
    request_id = f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(8)}"
    return JsonResponse(
        {"requestId": request_id, "errorCode": code, "errorMessage": message}, status=status
    )


def simulator_only(view: Callable) -> Callable:
    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any):
        if payments_settings.ENVIRONMENT != "simulator":
            raise Http404("the Daraja simulator runs only in simulator mode")
        try:
            return view(request, *args, **kwargs)
        except DarajaFault as fault:
            return envelope(fault.status, fault.code, fault.message)

    return wrapper


def daraja_post(view: Callable) -> Callable:
    """POST only, a valid bearer token, and a JSON object body (as Daraja)."""

    @simulator_only
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any):
        if request.method != "POST":
            raise DarajaFault(405, "405.001", "Method Not Allowed")
        _check_bearer(request)
        try:
            payload = loads_bounded(request.body or b"")
        except ValueError:
            raise DarajaFault(400, "400.002.05", "Invalid Request Payload") from None
        if not isinstance(payload, dict):
            raise DarajaFault(400, "400.002.05", "Invalid Request Payload")
        return view(request, payload, *args, **kwargs)

    return wrapper


# -- OAuth -------------------------------------------------------------------------------------


@simulator_only
def oauth_generate(request: HttpRequest) -> JsonResponse:
    if request.GET.get("grant_type") != "client_credentials":
        raise DarajaFault(400, "400.008.02", "Invalid grant type passed")
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        raise DarajaFault(400, "400.008.01", "Invalid authentication type passed")
    try:
        key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise DarajaFault(400, "400.008.01", "Invalid authentication type passed") from None
    expected = (str(payments_settings.CONSUMER_KEY), str(payments_settings.CONSUMER_SECRET))
    if not (
        secrets.compare_digest(key, expected[0]) and secrets.compare_digest(secret, expected[1])
    ):
        # Daraja answers wrong credentials with HTTP 400 and a blank message (API.md §1.2).
        raise DarajaFault(400, "", "")
    lifetime = int(engine.config("TOKEN_LIFETIME", 3599))
    token = SimulatedToken.objects.create(
        token=secrets.token_urlsafe(21)[:28],
        expires_at=timezone.now() + timedelta(seconds=lifetime),
    )
    return JsonResponse({"access_token": token.token, "expires_in": str(lifetime)})


def _check_bearer(request: HttpRequest) -> None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise DarajaFault(404, "404.001.04", "Invalid Authentication Header")
    if not SimulatedToken.objects.filter(
        token=header[7:].strip(), expires_at__gt=timezone.now()
    ).exists():
        raise DarajaFault(404, "404.001.03", "Invalid Access Token")


# -- STK Push ----------------------------------------------------------------------------------


def _check_stk_credentials(payload: dict) -> str:
    shortcode = str(payload.get("BusinessShortCode", ""))
    if shortcode != str(payments_settings.SHORTCODE):
        raise bad_request("BusinessShortCode")
    timestamp = str(payload.get("Timestamp", ""))
    if not TIMESTAMP.fullmatch(timestamp) or not _is_real_time(timestamp):
        raise bad_request("Timestamp")
    expected = base64.b64encode(
        f"{shortcode}{payments_settings.PASSKEY}{timestamp}".encode()
    ).decode()
    if not secrets.compare_digest(str(payload.get("Password", "")), expected):
        raise DarajaFault(500, "500.001.1001", "Wrong credentials")
    return shortcode


def _is_real_time(timestamp: str) -> bool:
    try:
        datetime.strptime(timestamp, "%Y%m%d%H%M%S")
    except ValueError:
        return False
    return True


def _whole_amount(value: Any, *, minimum: int, maximum: int) -> int:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise bad_request("Amount") from None
    if isinstance(value, bool) or amount != amount.to_integral_value():
        raise bad_request("Amount")
    if not minimum <= amount <= maximum:
        raise bad_request("Amount")
    return int(amount)


def _msisdn(payload: dict, field: str) -> str:
    value = str(payload.get(field, ""))
    if not MSISDN.fullmatch(value):
        raise bad_request(field)
    return value


def _url(payload: dict, field: str) -> str:
    value = str(payload.get(field, ""))
    if not re.match(r"https?://[^\s/]+", value):
        raise bad_request(field)
    return value


@daraja_post
def stk_push(request: HttpRequest, payload: dict) -> JsonResponse:
    shortcode = _check_stk_credentials(payload)
    transaction_type = payload.get("TransactionType")
    if transaction_type not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
        raise bad_request("TransactionType")
    _whole_amount(payload.get("Amount"), minimum=1, maximum=250_000)
    phone = _msisdn(payload, "PhoneNumber")
    _msisdn(payload, "PartyA")
    party_b = str(payload.get("PartyB", ""))
    if transaction_type == "CustomerPayBillOnline" and party_b != shortcode:
        raise bad_request("PartyB")
    if not DIGITS.fullmatch(party_b):
        raise bad_request("PartyB")
    _url(payload, "CallBackURL")
    if not 1 <= len(str(payload.get("AccountReference", ""))) <= 12:
        raise bad_request("AccountReference")
    if len(str(payload.get("TransactionDesc", ""))) > 13:
        raise bad_request("TransactionDesc")
    if SimulatedRequest.objects.filter(
        kind="stk", phone_number=phone, completes_at__gt=timezone.now()
    ).exists():
        raise DarajaFault(
            500,
            "500.001.1001",
            "Unable to lock subscriber, a transaction is already in process for the current "
            "subscriber",
        )
    accepted = engine.stk_accept(payload, shortcode=shortcode)
    message = "Success. Request accepted for processing"
    return JsonResponse(
        {
            "MerchantRequestID": accepted.conversation_id,
            "CheckoutRequestID": accepted.checkout_request_id,
            "ResponseCode": "0",
            "ResponseDescription": message,
            "CustomerMessage": message,
        }
    )


@daraja_post
def stk_query(request: HttpRequest, payload: dict) -> JsonResponse:
    _check_stk_credentials(payload)
    push = SimulatedRequest.objects.filter(
        kind="stk", checkout_request_id=str(payload.get("CheckoutRequestID", ""))
    ).first()
    if push is None:
        raise bad_request("CheckoutRequestID")
    if push.completes_at > timezone.now():
        raise DarajaFault(500, "500.001.1001", "The transaction is being processed")
    return JsonResponse(
        {
            "ResponseCode": "0",
            "ResponseDescription": "The service request has been accepted successsfully",
            "MerchantRequestID": push.conversation_id,
            "CheckoutRequestID": push.checkout_request_id,
            "ResultCode": push.result_code,
            "ResultDesc": push.result_desc,
        }
    )


# -- C2B ---------------------------------------------------------------------------------------


@daraja_post
def c2b_register(request: HttpRequest, payload: dict, version: str) -> JsonResponse:
    shortcode = str(payload.get("ShortCode", ""))
    if not DIGITS.fullmatch(shortcode):
        raise bad_request("ShortCode")
    if payload.get("ResponseType") not in ("Completed", "Cancelled"):
        raise bad_request("ResponseType")
    urls = {}
    for field in ("ValidationURL", "ConfirmationURL"):
        urls[field] = _url(payload, field)
        if banned_url_words(urls[field]):
            raise bad_request(field)
    C2BRegistration.objects.update_or_create(
        shortcode=shortcode,
        defaults={
            "validation_url": urls["ValidationURL"],
            "confirmation_url": urls["ConfirmationURL"],
            "response_type": payload["ResponseType"],
            "api_version": version,
        },
    )
    return JsonResponse(
        {
            "OriginatorCoversationID": f"{secrets.randbelow(10**4)}-{secrets.randbelow(10**8)}-1",
            "ResponseCode": "0",
            "ResponseDescription": "Success",
        }
    )


@daraja_post
def c2b_simulate(request: HttpRequest, payload: dict, version: str) -> JsonResponse:
    if not DIGITS.fullmatch(str(payload.get("ShortCode", ""))):
        raise bad_request("ShortCode")
    if payload.get("CommandID") not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
        raise bad_request("CommandID")
    _whole_amount(payload.get("Amount"), minimum=1, maximum=250_000)
    _msisdn(payload, "Msisdn")
    accepted = engine.c2b_simulate_accept(payload)
    return JsonResponse(
        {
            "OriginatorCoversationID": accepted.originator_conversation_id,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        }
    )


# -- Initiator operations ----------------------------------------------------------------------


def _initiator(payload: dict, field: str) -> bool:
    """Check the initiator fields; say whether the SecurityCredential is the expected one.

    A wrong credential is not refused here: like Daraja, the result says 2001 (API.md §9.1).
    """
    if not str(payload.get(field, "")).strip():
        raise bad_request(field)
    credential = str(payload.get("SecurityCredential", ""))
    if not credential:
        raise bad_request("SecurityCredential")
    expected = str(
        engine.config("SECURITY_CREDENTIAL", "") or payments_settings.SECURITY_CREDENTIAL
    )
    return not expected or secrets.compare_digest(credential, expected)


def _remarks(payload: dict) -> None:
    if not 2 <= len(str(payload.get("Remarks", ""))) <= 100:
        raise bad_request("Remarks")


def _acknowledge(accepted: SimulatedRequest) -> JsonResponse:
    return JsonResponse(
        {
            "OriginatorConversationID": accepted.originator_conversation_id,
            "ConversationID": accepted.conversation_id,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        }
    )


@daraja_post
def b2c_payment(request: HttpRequest, payload: dict) -> JsonResponse:
    originator_id = str(payload.get("OriginatorConversationID", ""))
    if not originator_id:
        raise bad_request("OriginatorConversationID")
    if SimulatedRequest.objects.filter(
        kind="b2c", originator_conversation_id=originator_id
    ).exists():
        raise DarajaFault(500, "500.002.1001", "Duplicate OriginatorConversationID.")
    credential_ok = _initiator(payload, "InitiatorName")
    if payload.get("CommandID") not in ("BusinessPayment", "SalaryPayment", "PromotionPayment"):
        raise bad_request("CommandID")
    _whole_amount(payload.get("Amount"), minimum=10, maximum=250_000)
    shortcode = str(payload.get("PartyA", ""))
    if shortcode != str(payments_settings.B2C_SHORTCODE):
        raise bad_request("PartyA")
    _msisdn(payload, "PartyB")
    _remarks(payload)
    _url(payload, "ResultURL")
    _url(payload, "QueueTimeOutURL")
    accepted = engine.b2c_accept(payload, shortcode=shortcode, credential_ok=credential_ok)
    return _acknowledge(accepted)


@daraja_post
def reversal(request: HttpRequest, payload: dict) -> JsonResponse:
    credential_ok = _initiator(payload, "Initiator")
    if payload.get("CommandID") != "TransactionReversal":
        raise bad_request("CommandID")
    if "RecieverIdentifierType" not in payload:
        raise bad_request("RecieverIdentifierType")
    if not str(payload.get("TransactionID", "")):
        raise bad_request("TransactionID")
    _whole_amount(payload.get("Amount"), minimum=1, maximum=250_000)
    _remarks(payload)
    _url(payload, "ResultURL")
    _url(payload, "QueueTimeOutURL")
    shortcode = str(payload.get("ReceiverParty", ""))
    accepted = engine.reversal_accept(payload, shortcode=shortcode, credential_ok=credential_ok)
    return _acknowledge(accepted)


@daraja_post
def account_balance(request: HttpRequest, payload: dict) -> JsonResponse:
    credential_ok = _initiator(payload, "Initiator")
    if payload.get("CommandID") != "AccountBalance":
        raise bad_request("CommandID")
    shortcode = str(payload.get("PartyA", ""))
    if not DIGITS.fullmatch(shortcode):
        raise bad_request("PartyA")
    _url(payload, "ResultURL")
    _url(payload, "QueueTimeOutURL")
    accepted = engine.balance_accept(payload, shortcode=shortcode, credential_ok=credential_ok)
    return _acknowledge(accepted)


@daraja_post
def transaction_status(request: HttpRequest, payload: dict) -> JsonResponse:
    credential_ok = _initiator(payload, "Initiator")
    if payload.get("CommandID") != "TransactionStatusQuery":
        raise bad_request("CommandID")
    if not (payload.get("TransactionID") or payload.get("OriginalConversationID")):
        raise bad_request("TransactionID")
    _url(payload, "ResultURL")
    _url(payload, "QueueTimeOutURL")
    accepted = engine.status_accept(payload, credential_ok=credential_ok)
    return _acknowledge(accepted)


# -- the org portal's statement ----------------------------------------------------------------


@simulator_only
def statement_csv(request: HttpRequest) -> HttpResponse:
    """``GET statement.csv[?shortcode=&from=&to=]``: the Utility account's statement, as the org
    portal exports it; by default the shortcode's Kenyan day so far."""
    if request.method != "GET":
        raise DarajaFault(405, "405.001", "Method Not Allowed")
    now = timezone.now()
    shortcode = request.GET.get("shortcode") or str(payments_settings.SHORTCODE)
    if not DIGITS.fullmatch(shortcode):
        raise bad_request("shortcode")
    today = now.astimezone(NAIROBI).replace(hour=0, minute=0, second=0, microsecond=0)
    start = _statement_time(request, "from", today)
    end = min(_statement_time(request, "to", now), now)
    body = statement.statement_text(shortcode=shortcode, start=start, end=end)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    name = f"ORG_{shortcode}_Utility Account_Completed_{engine.compact_time(now)}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _statement_time(request: HttpRequest, name: str, default: datetime) -> datetime:
    text = request.GET.get(name, "").strip()
    if not text:
        return default
    for time_format in (*TIME_FORMATS, "%d-%m-%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, time_format).replace(tzinfo=NAIROBI)
        except ValueError:
            continue
    raise bad_request(name)


# -- Pull Transactions (API.md §13: register once, then query pages of the last 48 hours) ------


@daraja_post
def pull_register(request: HttpRequest, payload: dict) -> JsonResponse:
    shortcode = str(payload.get("ShortCode", ""))
    if not DIGITS.fullmatch(shortcode):
        raise bad_request("ShortCode")
    if payload.get("RequestType") != "Pull":
        raise bad_request("RequestType")
    nominated = _msisdn(payload, "NominatedNumber")
    url = _url(payload, "CallBackURL")
    if banned_url_words(url):
        raise bad_request("CallBackURL")
    _, created = PullRegistration.objects.update_or_create(
        shortcode=shortcode, defaults={"nominated_number": nominated, "callback_url": url}
    )
    status, description = (
        ("1000", "ShortCode Registered Successfully")
        if created
        else ("1001", "ShortCode already Registered")
    )
    return JsonResponse(
        {
            "ResponseRefID": _ref_id(),
            "ResponseStatus": status,
            "ShortCode": shortcode,
            "ResponseDescription": description,
        }
    )


@daraja_post
def pull_query(request: HttpRequest, payload: dict) -> JsonResponse:
    # Unlike Daraja, any shortcode may be queried without registering first: make run's demo
    # can then pull without a production shortcode.
    shortcode = str(payload.get("ShortCode", ""))
    if not DIGITS.fullmatch(shortcode):
        raise bad_request("ShortCode")
    start, end = _pull_time(payload, "StartDate"), _pull_time(payload, "EndDate")
    if start >= end:
        raise bad_request("EndDate")
    offset = str(payload.get("OffSetValue", ""))
    if not DIGITS.fullmatch(offset):
        raise bad_request("OffSetValue")
    size = int(engine.config("PULL_PAGE_SIZE", 100))
    rows = engine.pull_rows(shortcode, start, end)[int(offset) : int(offset) + size]
    if not rows:
        return JsonResponse(
            {
                "ResponseRefID": _ref_id(),
                "ResponseCode": "1001",
                "ResponseMessage": "No transactions found for the period",
                "Response": [[]],
            }
        )
    return JsonResponse(
        {
            "ResponseRefID": _ref_id(),
            "ResponseCode": "1000",
            "ResponseMessage": "Success",
            "Response": [rows],
        }
    )


def _pull_time(payload: dict, field: str) -> datetime:
    try:
        naive = datetime.strptime(str(payload.get(field, "")), PULL_REQUEST_FORMAT)
    except ValueError:
        raise bad_request(field) from None
    return naive.replace(tzinfo=NAIROBI)


def _ref_id() -> str:
    return f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(8)}"
