"""No secret reaches a log line, an exception message or a repr, on success or failure."""

from __future__ import annotations

import base64
import logging

import pytest
import requests

from payments.daraja.errors import DarajaError

from .conftest import SANDBOX, SECRETS, load_fixture

CALLBACK = "https://pay.example.co.ke/cb/1"


def forbidden_strings(config) -> list[str]:
    basic = base64.b64encode(f"{config.consumer_key}:{config.consumer_secret}".encode()).decode()
    stk_password = base64.b64encode(f"174379{config.passkey}20160216165627".encode()).decode()
    return [*SECRETS.values(), basic, stk_password]


def every_operation(client):
    yield lambda: client.stk_push(
        phone_number="0708374149",
        amount=1,
        account_reference="A",
        transaction_desc="A",
        callback_url=CALLBACK,
    )
    yield lambda: client.stk_query(checkout_request_id="ws_CO_1")
    yield lambda: client.register_c2b_urls(confirmation_url=CALLBACK, validation_url=CALLBACK)
    yield lambda: client.c2b_simulate(phone_number="0708374149", amount=1)
    yield lambda: client.b2c_payment(
        originator_conversation_id="b2c-1",
        phone_number="0708374149",
        amount=10,
        remarks="Payout",
        result_url=CALLBACK,
        queue_timeout_url=CALLBACK,
    )
    yield lambda: client.account_balance(result_url=CALLBACK, queue_timeout_url=CALLBACK)
    yield lambda: client.transaction_status(
        transaction_id="NLJ7RT61SV", result_url=CALLBACK, queue_timeout_url=CALLBACK
    )
    yield lambda: client.reversal(
        transaction_id="NLJ7RT61SV",
        amount=1,
        remarks="Refund",
        result_url=CALLBACK,
        queue_timeout_url=CALLBACK,
    )


PATHS = [
    "/mpesa/stkpush/v1/processrequest",
    "/mpesa/stkpushquery/v1/query",
    "/mpesa/c2b/v2/registerurl",
    "/mpesa/c2b/v1/simulate",
    "/mpesa/b2c/v3/paymentrequest",
    "/mpesa/accountbalance/v1/query",
    "/mpesa/transactionstatus/v1/query",
    "/mpesa/reversal/v1/request",
]


@pytest.mark.parametrize(
    "answer",
    [
        {
            "json": load_fixture("errors/error_400.002.02_invalid_businessshortcode.portal.json"),
            "status": 400,
        },
        {"body": "<html>oops</html>", "status": 503},
        {"body": requests.ReadTimeout("read timed out")},
        {
            "json": load_fixture(
                "errors/error_404.001.03_invalid_access_token.issue-LNMOnlineAndroidSample-11.json"
            ),
            "status": 404,
        },
    ],
    ids=["refused", "server-error", "timeout", "invalid-token"],
)
def test_failures_print_no_secret(client, config, daraja, caplog, answer):
    caplog.set_level(logging.DEBUG)
    for path in PATHS:
        daraja.post(f"{SANDBOX}{path}", **answer)
    texts = [repr(config), repr(client)]
    for operation in every_operation(client):
        with pytest.raises(DarajaError) as excinfo:
            operation()
        texts += [str(excinfo.value), repr(excinfo.value)]
    texts.append(caplog.text)
    assert caplog.records, "the client should log its calls"
    everything = "\n".join(texts)
    for secret in forbidden_strings(config):
        assert secret not in everything


def test_successes_print_no_secret(client, config, daraja, caplog):
    caplog.set_level(logging.DEBUG)
    daraja.post(
        f"{SANDBOX}/mpesa/stkpush/v1/processrequest",
        json=load_fixture("stk/stk_push_response_accepted.portal.json"),
    )
    daraja.post(
        f"{SANDBOX}/mpesa/b2c/v3/paymentrequest",
        json=load_fixture("b2c/b2c_response_accepted.portal.json"),
    )
    operations = list(every_operation(client))
    results = [operations[0](), operations[4]()]
    everything = "\n".join([caplog.text, *map(repr, results)])
    assert "processrequest" in caplog.text or "stk_push" in caplog.text
    for secret in forbidden_strings(config):
        assert secret not in everything
    # Full phone numbers stay out of the logs too.
    assert "254708374149" not in caplog.text
