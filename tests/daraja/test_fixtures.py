"""Every published Daraja body under tests/fixtures/daraja/ is read by the code meant for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from payments.daraja import callbacks
from payments.daraja.auth import parse_expires_in
from payments.daraja.client import decode_response
from payments.daraja.errors import DarajaAuthError, DarajaRequestError, DarajaServerError
from payments.daraja.responses import (
    AsyncRequestAcknowledgement,
    C2BResponse,
    StkPushResponse,
    StkQueryResponse,
)

from .conftest import FIXTURES, load_fixture


def _error_response(body: dict, status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    return response


def _decodes_to(error_class, status):
    def read(body):
        with pytest.raises(error_class) as excinfo:
            decode_response(_error_response(body, status), operation="sample")
        assert excinfo.value.error_code == body["errorCode"]
        assert excinfo.value.request_id == body["requestId"]
        return excinfo.value

    return read


def _request_sample(body):
    # Requests are what we send; test_client.py compares our bodies' keys with these samples.
    assert isinstance(body, dict) and body
    return body


def _ack(body):
    return AsyncRequestAcknowledgement.from_body(body, operation="sample")


def _stk_query(body):
    return StkQueryResponse.from_body(body, checkout_request_id="unused")


READERS = {
    "oauth/oauth_token_response.portal.json": lambda b: parse_expires_in(b["expires_in"]),
    "oauth/oauth_token_response.string_expires_in.php-mpesa.json": lambda b: parse_expires_in(
        b["expires_in"]
    ),
    "stk/stk_push_request.portal.json": _request_sample,
    "stk/stk_push_response_accepted.portal.json": StkPushResponse.from_body,
    "stk/stk_query_request.portal.json": _request_sample,
    "stk/stk_query_response_success.portal.json": _stk_query,
    "stk/stk_query_response_cancelled_1032.2017.php-mpesa.json": _stk_query,
    "stk/stk_callback_success.portal.json": callbacks.parse_stk_callback,
    "stk/stk_callback_cancelled_1032.portal.json": callbacks.parse_stk_callback,
    "stk/stk_callback_cancelled_1032.2017.php-mpesa.json": callbacks.parse_stk_callback,
    "stk/stk_callback_cancelled_1032.2019.django-daraja.json": callbacks.parse_stk_callback,
    "stk/stk_callback_success_with_empty_balance_item.2017.php-mpesa.json": (
        callbacks.parse_stk_callback
    ),
    "stk/stk_callback_success_with_empty_balance_item.2019.django-daraja.json": (
        callbacks.parse_stk_callback
    ),
    "stk/stk_callback_timeout_1036_smsc_ack.2019.django-daraja.json": (
        callbacks.parse_stk_callback
    ),
    "stk/stk_callback_wrong_pin_2001.2019.django-daraja.json": callbacks.parse_stk_callback,
    "c2b/c2b_register_url_request.portal.json": _request_sample,
    "c2b/c2b_register_url_response.portal.json": C2BResponse.from_body,
    "c2b/c2b_register_url_response.registerurl_page.portal.json": C2BResponse.from_body,
    "c2b/c2b_simulate_request.portal.json": _request_sample,
    "c2b/c2b_simulate_response.portal.json": C2BResponse.from_body,
    "c2b/c2b_validation_or_confirmation_masked_msisdn.portal.json": (
        callbacks.parse_c2b_notification
    ),
    "c2b/c2b_validation_request.2017.php-mpesa.json": callbacks.parse_c2b_notification,
    "c2b/c2b_confirmation_request.2017.php-mpesa.json": callbacks.parse_c2b_notification,
    # What our validation URL answers; the C2B issue builds these bodies and compares.
    "c2b/c2b_validation_response_accept.portal.json": _request_sample,
    "c2b/c2b_validation_response_reject.portal.json": _request_sample,
    "b2c/b2c_request_v3.portal.json": _request_sample,
    "b2c/b2c_response_accepted.portal.json": _ack,
    "b2c/b2c_result_success.portal.json": callbacks.parse_b2c_result,
    "b2c/b2c_result_success.2017.php-mpesa.json": callbacks.parse_b2c_result,
    "b2c/b2c_result_failure_2001.portal.json": callbacks.parse_b2c_result,
    "reversal/reversal_request.portal.json": _request_sample,
    "reversal/reversal_response_accepted.portal.json": _ack,
    "reversal/reversal_result_success.portal.json": callbacks.parse_reversal_result,
    "reversal/reversal_result_success.2017.php-mpesa.json": callbacks.parse_reversal_result,
    "reversal/reversal_result_failure_R000002.portal.json": callbacks.parse_reversal_result,
    "balance/account_balance_request.portal.json": _request_sample,
    "balance/account_balance_response_accepted.portal.json": _ack,
    "balance/account_balance_result_success.portal.json": (callbacks.parse_account_balance_result),
    "balance/account_balance_result_success.2017.php-mpesa.json": (
        callbacks.parse_account_balance_result
    ),
    "transaction_status/transaction_status_request.portal.json": _request_sample,
    "transaction_status/transaction_status_response_accepted.portal.json": _ack,
    "transaction_status/transaction_status_result_success.portal.json": (
        callbacks.parse_transaction_status_result
    ),
    "transaction_status/transaction_status_result_success.2017.php-mpesa.json": (
        callbacks.parse_transaction_status_result
    ),
    "errors/error_400.002.02_invalid_businessshortcode.portal.json": _decodes_to(
        DarajaRequestError, 400
    ),
    "errors/error_400.002.02_invalid_phonenumber.issue-osen-wc-mpesa-65.json": _decodes_to(
        DarajaRequestError, 400
    ),
    "errors/error_400.002.02_invalid_transactionid_reversal.portal.json": _decodes_to(
        DarajaRequestError, 400
    ),
    "errors/error_404.001.03_invalid_access_token.issue-LNMOnlineAndroidSample-11.json": (
        _decodes_to(DarajaAuthError, 404)
    ),
    "errors/error_500.001.1001_stk_query_transaction_being_processed"
    ".issue-LNMOnlineAndroidSample-13.json": _decodes_to(DarajaServerError, 500),
    "errors/error_500.001.1001_wrong_credentials.issue-django-daraja-3.json": _decodes_to(
        DarajaServerError, 500
    ),
    "errors/error_500.002.1001_duplicate_originatorconversationid.portal.json": _decodes_to(
        DarajaServerError, 500
    ),
}


def test_every_sample_file_has_a_reader():
    on_disk = {str(p.relative_to(FIXTURES)) for p in Path(FIXTURES).rglob("*.json")}
    assert len(on_disk) == 50
    assert on_disk == set(READERS)


@pytest.mark.parametrize("name", sorted(READERS))
def test_sample_is_read(name):
    body = load_fixture(name)
    assert READERS[name](body) is not None
