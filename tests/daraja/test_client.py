"""DarajaClient against Daraja mocked at the HTTP layer: URLs, headers, bodies, answers."""

from __future__ import annotations

import base64
import json

import pytest
import responses

from payments.daraja.config import DarajaConfig
from payments.daraja.errors import (
    DarajaConfigurationError,
    DarajaRequestError,
    DarajaServerError,
    InvalidFieldError,
    InvalidPhoneNumberError,
)
from payments.daraja.responses import AsyncRequestAcknowledgement, C2BResponse

from .conftest import SANDBOX, SECRETS, calls_to, load_fixture

CALLBACK = "https://pay.example.co.ke/api/v1/payments/callbacks/stk/abc123"
RESULT = "https://pay.example.co.ke/hooks/result/77aa"
TIMEOUT = "https://pay.example.co.ke/hooks/timeout/77aa"


def sent_json(call) -> dict:
    return json.loads(call.request.body)


def assert_bearer_json(call) -> None:
    assert call.request.headers["Authorization"] == f"Bearer {SECRETS['token']}"
    assert call.request.headers["Content-Type"] == "application/json"
    assert call.request.method == "POST"


class TestStkPush:
    def test_sends_the_documented_body_with_password_from_one_nairobi_timestamp(
        self, client, daraja
    ):
        daraja.post(
            f"{SANDBOX}/mpesa/stkpush/v1/processrequest",
            json=load_fixture("stk/stk_push_response_accepted.portal.json"),
        )

        result = client.stk_push(
            phone_number="0708 374 149",
            amount=10,
            account_reference="INV00042",
            transaction_desc="Payment for order 42 of many",
            callback_url=CALLBACK,
        )

        (call,) = calls_to(daraja, "/mpesa/stkpush/v1/processrequest")
        assert_bearer_json(call)
        body = sent_json(call)
        expected_password = base64.b64encode(
            f"174379{SECRETS['passkey']}20160216165627".encode()
        ).decode()
        assert body == {
            "BusinessShortCode": 174379,
            "Password": expected_password,
            "Timestamp": "20160216165627",
            "TransactionType": "CustomerPayBillOnline",
            "Amount": 10,
            "PartyA": 254708374149,
            "PartyB": 174379,
            "PhoneNumber": 254708374149,
            "CallBackURL": CALLBACK,
            "AccountReference": "INV00042",
            "TransactionDesc": "Payment for o",
        }
        sample = load_fixture("stk/stk_push_response_accepted.portal.json")
        assert result.checkout_request_id == sample["CheckoutRequestID"]
        assert result.merchant_request_id == sample["MerchantRequestID"]
        assert result.response_code == "0"
        assert result.customer_message == sample["CustomerMessage"]
        assert result.raw == sample

    def test_sent_fields_match_the_published_request_sample(self, client, daraja):
        daraja.post(
            f"{SANDBOX}/mpesa/stkpush/v1/processrequest",
            json=load_fixture("stk/stk_push_response_accepted.portal.json"),
        )
        client.stk_push(
            phone_number="254708374149",
            amount=1,
            account_reference="Test",
            transaction_desc="Test",
            callback_url=CALLBACK,
        )
        (call,) = daraja.calls[1:]
        assert set(sent_json(call)) == set(load_fixture("stk/stk_push_request.portal.json"))

    def test_buy_goods_sends_the_till_as_party_b_and_the_store_in_the_password(
        self, make_client, config, daraja
    ):
        till = DarajaConfig(
            **{
                **config.__dict__,
                "stk_transaction_type": "CustomerBuyGoodsOnline",
                "till_number": "5554321",
            }
        )
        daraja.post(
            f"{SANDBOX}/mpesa/stkpush/v1/processrequest",
            json=load_fixture("stk/stk_push_response_accepted.portal.json"),
        )
        make_client(till).stk_push(
            phone_number="0708374149",
            amount=5,
            account_reference="SHOP",
            transaction_desc="Shop",
            callback_url=CALLBACK,
        )
        body = sent_json(daraja.calls[1])
        assert body["TransactionType"] == "CustomerBuyGoodsOnline"
        assert body["PartyB"] == 5554321
        assert body["BusinessShortCode"] == 174379
        assert base64.b64decode(body["Password"]).decode().startswith("174379")

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"account_reference": "ABCDEFGHIJKLM"}, "account_reference"),
            ({"account_reference": ""}, "account_reference"),
            ({"amount": 10.5}, "amount"),
            ({"amount": "10.50"}, "amount"),
            ({"amount": 0}, "amount"),
            ({"amount": True}, "amount"),
            ({"phone_number": "0208374149"}, "phone_number"),
            ({"callback_url": "/relative"}, "callback_url"),
        ],
    )
    def test_bad_arguments_are_refused_before_anything_is_sent(self, client, daraja, kwargs, field):
        arguments = {
            "phone_number": "0708374149",
            "amount": 10,
            "account_reference": "INV1",
            "transaction_desc": "x",
            "callback_url": CALLBACK,
            **kwargs,
        }
        with pytest.raises(InvalidFieldError) as excinfo:
            client.stk_push(**arguments)
        assert excinfo.value.field == field
        assert len(daraja.calls) == 0

    def test_phone_error_lists_the_accepted_forms(self, client, daraja):
        with pytest.raises(InvalidPhoneNumberError, match=r"07XXXXXXXX.*\+2547XXXXXXXX"):
            client.stk_push(
                phone_number="12345",
                amount=1,
                account_reference="A",
                transaction_desc="A",
                callback_url=CALLBACK,
            )

    def test_a_refusal_in_daraja_error_envelope_is_a_request_error(self, client, daraja):
        envelope = load_fixture("errors/error_400.002.02_invalid_businessshortcode.portal.json")
        daraja.post(f"{SANDBOX}/mpesa/stkpush/v1/processrequest", json=envelope, status=400)
        with pytest.raises(DarajaRequestError) as excinfo:
            client.stk_push(
                phone_number="0708374149",
                amount=1,
                account_reference="A",
                transaction_desc="A",
                callback_url=CALLBACK,
            )
        error = excinfo.value
        assert error.http_status == 400
        assert error.error_code == "400.002.02"
        assert error.error_message == envelope["errorMessage"]
        assert error.request_id == envelope["requestId"]
        assert error.outcome_unknown is False
        assert envelope["requestId"] in str(error)

    def test_wrong_credentials_500_is_a_definite_refusal_not_an_unknown_outcome(
        self, client, daraja
    ):
        daraja.post(
            f"{SANDBOX}/mpesa/stkpush/v1/processrequest",
            json=load_fixture(
                "errors/error_500.001.1001_wrong_credentials.issue-django-daraja-3.json"
            ),
            status=500,
        )
        with pytest.raises(DarajaServerError) as excinfo:
            client.stk_push(
                phone_number="0708374149",
                amount=1,
                account_reference="A",
                transaction_desc="A",
                callback_url=CALLBACK,
            )
        assert excinfo.value.error_code == "500.001.1001"
        assert excinfo.value.outcome_unknown is False
        assert len(calls_to(daraja, "/processrequest")) == 1

    def test_a_non_zero_response_code_on_http_200_is_a_refusal(self, client, daraja):
        daraja.post(
            f"{SANDBOX}/mpesa/stkpush/v1/processrequest",
            json={"ResponseCode": "1", "ResponseDescription": "Rejected"},
        )
        with pytest.raises(DarajaRequestError) as excinfo:
            client.stk_push(
                phone_number="0708374149",
                amount=1,
                account_reference="A",
                transaction_desc="A",
                callback_url=CALLBACK,
            )
        assert excinfo.value.error_code == "1"

    def test_an_html_page_with_http_200_leaves_the_outcome_unknown(self, client, daraja):
        daraja.post(
            f"{SANDBOX}/mpesa/stkpush/v1/processrequest",
            body="<html>Apigee SPA Proxy</html>",
            content_type="text/html",
        )
        with pytest.raises(DarajaServerError) as excinfo:
            client.stk_push(
                phone_number="0708374149",
                amount=1,
                account_reference="A",
                transaction_desc="A",
                callback_url=CALLBACK,
            )
        assert excinfo.value.outcome_unknown is True

    def test_an_accepted_answer_without_checkout_request_id_leaves_the_outcome_unknown(
        self, client, daraja
    ):
        daraja.post(f"{SANDBOX}/mpesa/stkpush/v1/processrequest", json={"ResponseCode": "0"})
        with pytest.raises(DarajaServerError) as excinfo:
            client.stk_push(
                phone_number="0708374149",
                amount=1,
                account_reference="A",
                transaction_desc="A",
                callback_url=CALLBACK,
            )
        assert excinfo.value.outcome_unknown is True


class TestStkQuery:
    def test_sends_the_documented_body_and_reads_the_string_result_code(self, client, daraja):
        sample = load_fixture("stk/stk_query_response_cancelled_1032.2017.php-mpesa.json")
        daraja.post(f"{SANDBOX}/mpesa/stkpushquery/v1/query", json=sample)

        result = client.stk_query(checkout_request_id="ws_CO_13012021093521236557")

        (call,) = calls_to(daraja, "/mpesa/stkpushquery/v1/query")
        assert_bearer_json(call)
        body = sent_json(call)
        assert body == {
            "BusinessShortCode": 174379,
            "Password": base64.b64encode(
                f"174379{SECRETS['passkey']}20160216165627".encode()
            ).decode(),
            "Timestamp": "20160216165627",
            "CheckoutRequestID": "ws_CO_13012021093521236557",
        }
        assert set(body) == set(load_fixture("stk/stk_query_request.portal.json"))
        assert result.result_code == "1032"
        assert result.is_pending is False
        assert result.raw == sample

    def test_success_sample_parses(self, client, daraja):
        sample = load_fixture("stk/stk_query_response_success.portal.json")
        daraja.post(f"{SANDBOX}/mpesa/stkpushquery/v1/query", json=sample)
        result = client.stk_query(checkout_request_id=sample["CheckoutRequestID"])
        assert result.result_code == "0"
        assert result.checkout_request_id == sample["CheckoutRequestID"]

    def test_being_processed_is_a_pending_result_not_an_error(self, client, daraja):
        daraja.post(
            f"{SANDBOX}/mpesa/stkpushquery/v1/query",
            json=load_fixture(
                "errors/error_500.001.1001_stk_query_transaction_being_processed"
                ".issue-LNMOnlineAndroidSample-13.json"
            ),
            status=500,
        )
        result = client.stk_query(checkout_request_id="ws_CO_20022018230142206")
        assert result.is_pending is True
        assert result.result_code is None
        # An answer, not a transient failure: asked once, not retried.
        assert len(calls_to(daraja, "/query")) == 1

    def test_wrong_credentials_on_query_is_still_an_error(self, client, daraja):
        daraja.post(
            f"{SANDBOX}/mpesa/stkpushquery/v1/query",
            json=load_fixture(
                "errors/error_500.001.1001_wrong_credentials.issue-django-daraja-3.json"
            ),
            status=500,
        )
        with pytest.raises(DarajaServerError):
            client.stk_query(checkout_request_id="ws_CO_1")


class TestC2B:
    @pytest.mark.parametrize("version", ["v1", "v2"])
    def test_register_urls_uses_the_versioned_path_and_reads_the_misspelt_id(
        self, client, daraja, version
    ):
        sample = load_fixture("c2b/c2b_register_url_response.portal.json")
        daraja.post(f"{SANDBOX}/mpesa/c2b/{version}/registerurl", json=sample)

        result = client.register_c2b_urls(
            confirmation_url="https://pay.example.co.ke/c2b/s3cr3t/confirmation",
            validation_url="https://pay.example.co.ke/c2b/s3cr3t/validation",
            api_version=version,
            shortcode="600984",
        )

        (call,) = calls_to(daraja, f"/mpesa/c2b/{version}/registerurl")
        assert_bearer_json(call)
        assert sent_json(call) == {
            "ShortCode": 600984,
            "ResponseType": "Completed",
            "ConfirmationURL": "https://pay.example.co.ke/c2b/s3cr3t/confirmation",
            "ValidationURL": "https://pay.example.co.ke/c2b/s3cr3t/validation",
        }
        assert set(sent_json(call)) == set(load_fixture("c2b/c2b_register_url_request.portal.json"))
        assert isinstance(result, C2BResponse)
        assert result.originator_conversation_id == sample["OriginatorCoversationID"]
        assert result.response_code == "0"

    def test_register_urls_lower_case_success_sample_parses(self, client, daraja):
        sample = load_fixture("c2b/c2b_register_url_response.registerurl_page.portal.json")
        daraja.post(f"{SANDBOX}/mpesa/c2b/v2/registerurl", json=sample)
        result = client.register_c2b_urls(
            confirmation_url="https://a.co.ke/c", validation_url="https://a.co.ke/v"
        )
        assert result.response_description == "success"

    def test_register_urls_refuses_an_unknown_response_type(self, client, daraja):
        with pytest.raises(InvalidFieldError) as excinfo:
            client.register_c2b_urls(
                confirmation_url="https://a.co.ke/c",
                validation_url="https://a.co.ke/v",
                response_type="completed",
            )
        assert excinfo.value.field == "response_type"
        assert len(daraja.calls) == 0

    def test_simulate_sends_msisdn_in_mixed_case(self, client, daraja):
        sample = load_fixture("c2b/c2b_simulate_response.portal.json")
        daraja.post(f"{SANDBOX}/mpesa/c2b/v1/simulate", json=sample)

        result = client.c2b_simulate(
            phone_number="+254 708 374 149",
            amount=1,
            bill_ref_number="INV00042",
            shortcode="600984",
        )

        (call,) = calls_to(daraja, "/mpesa/c2b/v1/simulate")
        assert_bearer_json(call)
        assert sent_json(call) == {
            "ShortCode": 600984,
            "CommandID": "CustomerPayBillOnline",
            "Amount": 1,
            "Msisdn": 254708374149,
            "BillRefNumber": "INV00042",
        }
        assert set(sent_json(call)) == set(load_fixture("c2b/c2b_simulate_request.portal.json"))
        assert result.originator_conversation_id == sample["OriginatorCoversationID"]

    def test_simulate_is_refused_in_production(self, make_client, config, daraja):
        production = DarajaConfig(**{**config.__dict__, "environment": "production"})
        with pytest.raises(DarajaConfigurationError):
            make_client(production).c2b_simulate(phone_number="0708374149", amount=1)


class TestInitiatorOperations:
    def test_b2c_v3_sends_our_originator_conversation_id(self, client, daraja):
        sample = load_fixture("b2c/b2c_response_accepted.portal.json")
        daraja.post(f"{SANDBOX}/mpesa/b2c/v3/paymentrequest", json=sample)

        result = client.b2c_payment(
            originator_conversation_id="b2c-7c1e2f60",
            phone_number="0705912645",
            amount=10,
            remarks="Refund order 42",
            occasion="Refund",
            result_url=RESULT,
            queue_timeout_url=TIMEOUT,
        )

        (call,) = calls_to(daraja, "/mpesa/b2c/v3/paymentrequest")
        assert_bearer_json(call)
        assert sent_json(call) == {
            "OriginatorConversationID": "b2c-7c1e2f60",
            "InitiatorName": "testapi",
            "SecurityCredential": SECRETS["security_credential"],
            "CommandID": "BusinessPayment",
            "Amount": 10,
            "PartyA": 600992,
            "PartyB": 254705912645,
            "Remarks": "Refund order 42",
            "QueueTimeOutURL": TIMEOUT,
            "ResultURL": RESULT,
            "Occassion": "Refund",
        }
        assert set(sent_json(call)) == set(load_fixture("b2c/b2c_request_v3.portal.json"))
        assert isinstance(result, AsyncRequestAcknowledgement)
        assert result.conversation_id == sample["ConversationID"]
        assert result.originator_conversation_id == sample["OriginatorConversationID"]

    def test_b2c_without_occasion_omits_the_field(self, client, daraja):
        daraja.post(
            f"{SANDBOX}/mpesa/b2c/v3/paymentrequest",
            json=load_fixture("b2c/b2c_response_accepted.portal.json"),
        )
        client.b2c_payment(
            originator_conversation_id="b2c-1",
            phone_number="0705912645",
            amount=10,
            remarks="Salary",
            command_id="SalaryPayment",
            result_url=RESULT,
            queue_timeout_url=TIMEOUT,
        )
        body = sent_json(daraja.calls[1])
        assert "Occassion" not in body
        assert body["CommandID"] == "SalaryPayment"

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"command_id": "Payout"}, "command_id"),
            ({"remarks": "x"}, "remarks"),
            ({"originator_conversation_id": ""}, "originator_conversation_id"),
            ({"amount": 10.0}, "amount"),
        ],
    )
    def test_b2c_bad_arguments_are_refused_before_sending(self, client, daraja, kwargs, field):
        arguments = {
            "originator_conversation_id": "b2c-1",
            "phone_number": "0705912645",
            "amount": 10,
            "remarks": "Salary",
            "result_url": RESULT,
            "queue_timeout_url": TIMEOUT,
            **kwargs,
        }
        with pytest.raises(InvalidFieldError) as excinfo:
            client.b2c_payment(**arguments)
        assert excinfo.value.field == field
        assert len(daraja.calls) == 0

    def test_duplicate_originator_conversation_id_leaves_the_outcome_unknown(self, client, daraja):
        # We send each id once: a duplicate means an earlier copy reached Daraja.
        daraja.post(
            f"{SANDBOX}/mpesa/b2c/v3/paymentrequest",
            json=load_fixture(
                "errors/error_500.002.1001_duplicate_originatorconversationid.portal.json"
            ),
            status=500,
        )
        with pytest.raises(DarajaServerError) as excinfo:
            client.b2c_payment(
                originator_conversation_id="b2c-1",
                phone_number="0705912645",
                amount=10,
                remarks="Salary",
                result_url=RESULT,
                queue_timeout_url=TIMEOUT,
            )
        assert excinfo.value.error_code == "500.002.1001"
        assert excinfo.value.outcome_unknown is True

    def test_account_balance_sends_initiator_not_initiator_name(self, client, daraja):
        sample = load_fixture("balance/account_balance_response_accepted.portal.json")
        daraja.post(f"{SANDBOX}/mpesa/accountbalance/v1/query", json=sample)

        result = client.account_balance(
            result_url=RESULT, queue_timeout_url=TIMEOUT, shortcode="600000"
        )

        (call,) = calls_to(daraja, "/mpesa/accountbalance/v1/query")
        assert_bearer_json(call)
        assert sent_json(call) == {
            "Initiator": "testapi",
            "SecurityCredential": SECRETS["security_credential"],
            "CommandID": "AccountBalance",
            "PartyA": 600000,
            "IdentifierType": "4",
            "Remarks": "Account balance",
            "QueueTimeOutURL": TIMEOUT,
            "ResultURL": RESULT,
        }
        assert set(sent_json(call)) == set(
            load_fixture("balance/account_balance_request.portal.json")
        )
        assert result.conversation_id == sample["ConversationID"]

    def test_transaction_status_uses_original_conversation_id(self, client, daraja):
        sample = load_fixture("transaction_status/transaction_status_response_accepted.portal.json")
        daraja.post(f"{SANDBOX}/mpesa/transactionstatus/v1/query", json=sample)

        result = client.transaction_status(
            transaction_id="NEF61H8J60",
            original_conversation_id="b2c-7c1e2f60",
            occasion="recon",
            result_url=RESULT,
            queue_timeout_url=TIMEOUT,
        )

        (call,) = calls_to(daraja, "/mpesa/transactionstatus/v1/query")
        assert_bearer_json(call)
        assert sent_json(call) == {
            "Initiator": "testapi",
            "SecurityCredential": SECRETS["security_credential"],
            "CommandID": "TransactionStatusQuery",
            "PartyA": 174379,
            "IdentifierType": "4",
            "ResultURL": RESULT,
            "QueueTimeOutURL": TIMEOUT,
            "Remarks": "Transaction status",
            "TransactionID": "NEF61H8J60",
            "OriginalConversationID": "b2c-7c1e2f60",
            "Occasion": "recon",
        }
        # The published sample spells two keys with spaces; the real keys have none (API.md §0.1).
        published = {
            k.replace(" ", "")
            for k in load_fixture("transaction_status/transaction_status_request.portal.json")
        }
        assert set(sent_json(call)) - {"OriginalConversationID"} <= published
        assert result.conversation_id == sample["ConversationID"]

    def test_transaction_status_needs_a_receipt_or_a_conversation_id(self, client, daraja):
        with pytest.raises(InvalidFieldError):
            client.transaction_status(result_url=RESULT, queue_timeout_url=TIMEOUT)
        assert len(daraja.calls) == 0

    def test_reversal_spells_reciever_identifier_type_as_daraja_does(self, client, daraja):
        sample = load_fixture("reversal/reversal_response_accepted.portal.json")
        daraja.post(f"{SANDBOX}/mpesa/reversal/v1/request", json=sample)

        result = client.reversal(
            transaction_id="PDU91HIVIT",
            amount=200,
            remarks="Duplicate payment",
            occasion="refund",
            result_url=RESULT,
            queue_timeout_url=TIMEOUT,
        )

        (call,) = calls_to(daraja, "/mpesa/reversal/v1/request")
        assert_bearer_json(call)
        assert sent_json(call) == {
            "Initiator": "testapi",
            "SecurityCredential": SECRETS["security_credential"],
            "CommandID": "TransactionReversal",
            "TransactionID": "PDU91HIVIT",
            "Amount": 200,
            "ReceiverParty": 174379,
            "RecieverIdentifierType": "11",
            "ResultURL": RESULT,
            "QueueTimeOutURL": TIMEOUT,
            "Remarks": "Duplicate payment",
            "Occasion": "refund",
        }
        # Occasion is optional and absent from the published sample.
        assert set(sent_json(call)) - {"Occasion"} == set(
            load_fixture("reversal/reversal_request.portal.json")
        )
        assert result.conversation_id == sample["ConversationID"]

    def test_reversal_refusal_names_the_invalid_transaction(self, client, daraja):
        envelope = load_fixture(
            "errors/error_400.002.02_invalid_transactionid_reversal.portal.json"
        )
        daraja.post(f"{SANDBOX}/mpesa/reversal/v1/request", json=envelope, status=400)
        with pytest.raises(DarajaRequestError) as excinfo:
            client.reversal(
                transaction_id="X",
                amount=1,
                remarks="Refund",
                result_url=RESULT,
                queue_timeout_url=TIMEOUT,
            )
        assert excinfo.value.error_code == "400.002.02"

    def test_initiator_operation_without_credential_settings_is_refused(
        self, make_client, config, daraja
    ):
        bare = DarajaConfig(**{**config.__dict__, "security_credential": ""})
        with pytest.raises(DarajaConfigurationError, match="initiator_password"):
            make_client(bare).account_balance(result_url=RESULT, queue_timeout_url=TIMEOUT)
        assert calls_to(daraja, "/accountbalance/v1/query") == []


def test_a_base_url_override_points_every_call_at_that_server(make_client, config):
    local = DarajaConfig(**{**config.__dict__, "base_url": "http://127.0.0.1:8765/daraja/"})
    with responses.RequestsMock() as mock:
        mock.get(
            "http://127.0.0.1:8765/daraja/oauth/v1/generate",
            json={"access_token": "t", "expires_in": "3599"},
        )
        mock.post(
            "http://127.0.0.1:8765/daraja/mpesa/stkpushquery/v1/query",
            json=load_fixture("stk/stk_query_response_success.portal.json"),
        )
        assert make_client(local).stk_query(checkout_request_id="ws_CO_1").result_code == "0"


@pytest.mark.parametrize(
    "base_url", ["http://sandbox.example.co.ke", "ftp://127.0.0.1", "http://10.0.0.5:80"]
)
def test_plain_http_is_refused_for_non_loopback_hosts(make_client, config, base_url):
    with pytest.raises(ValueError, match="base URL"):
        make_client(DarajaConfig(**{**config.__dict__, "base_url": base_url}))


def test_every_call_carries_a_connect_and_read_timeout(client, daraja):
    daraja.post(
        f"{SANDBOX}/mpesa/stkpushquery/v1/query",
        json=load_fixture("stk/stk_query_response_success.portal.json"),
    )
    client.stk_query(checkout_request_id="ws_CO_1")
    assert [c.request.req_kwargs["timeout"] for c in daraja.calls] == [(1.5, 7.0), (1.5, 7.0)]
