"""STK Password and Timestamp, and the SecurityCredential."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from payments.daraja.config import DarajaConfig
from payments.daraja.security import security_credential, stk_password, stk_timestamp

from .conftest import SANDBOX, load_fixture

# Safaricom's public sandbox passkey (API.md §9.3), which its published Password encodes.
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


def test_stk_password_matches_the_published_vector():
    assert stk_password("174379", SANDBOX_PASSKEY, "20160216165627") == (
        "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZi"
        "NzJhZGExZWQyYzkxOTIwMTYwMjE2MTY1NjI3"
    )


def test_stk_password_matches_the_password_in_the_published_request_sample():
    sample = load_fixture("stk/stk_push_request.portal.json")
    assert (
        stk_password(str(sample["BusinessShortCode"]), SANDBOX_PASSKEY, sample["Timestamp"])
        == sample["Password"]
    )


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (dt.datetime(2024, 6, 7, 9, 30, 45, tzinfo=dt.UTC), "20240607123045"),
        (dt.datetime(2024, 12, 31, 22, 0, 0, tzinfo=dt.UTC), "20250101010000"),
        (
            dt.datetime(2024, 6, 7, 5, 30, 45, tzinfo=dt.timezone(dt.timedelta(hours=-4))),
            "20240607123045",
        ),
    ],
)
def test_timestamp_is_nairobi_time_whatever_the_input_zone(moment, expected):
    assert stk_timestamp(moment) == expected


def test_push_password_and_timestamp_come_from_one_instant(make_client, config, daraja):
    instants = iter(
        [
            dt.datetime(2024, 6, 7, 12, 30, 45, tzinfo=dt.UTC),
            dt.datetime(2024, 6, 7, 12, 30, 46, tzinfo=dt.UTC),
        ]
    )
    client = make_client(config, now=lambda: next(instants))
    daraja.post(
        f"{SANDBOX}/mpesa/stkpush/v1/processrequest",
        json=load_fixture("stk/stk_push_response_accepted.portal.json"),
    )
    client.stk_push(
        phone_number="0708374149",
        amount=1,
        account_reference="A",
        transaction_desc="A",
        callback_url="https://pay.example.co.ke/cb/1",
    )

    body = json.loads(daraja.calls[1].request.body)
    assert body["Timestamp"] == "20240607153045"
    decoded = base64.b64decode(body["Password"]).decode()
    assert decoded == f"174379{config.passkey}20240607153045"


@pytest.fixture(scope="module")
def key_and_certificate(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "apicrypt.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("cert") / "test-cert.cer"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key, path


def test_security_credential_round_trips_through_the_private_key(key_and_certificate):
    key, path = key_and_certificate
    credential = security_credential("Safaricom999!*!", path.read_bytes())
    plain = key.decrypt(base64.b64decode(credential), padding.PKCS1v15())
    # The plain password is encrypted, not a base64 of it (API.md §9.1).
    assert plain == b"Safaricom999!*!"


def test_security_credential_is_randomised_pkcs1v15(key_and_certificate):
    _, path = key_and_certificate
    pem = path.read_bytes()
    assert security_credential("pw", pem) != security_credential("pw", pem)


def test_client_computes_the_credential_once_from_password_and_certificate(
    make_client, config, daraja, key_and_certificate
):
    key, path = key_and_certificate
    client = make_client(
        DarajaConfig(
            **{
                **config.__dict__,
                "security_credential": "",
                "initiator_password": "Safaricom999!*!",
                "certificate_path": str(path),
            }
        )
    )
    url = f"{SANDBOX}/mpesa/accountbalance/v1/query"
    daraja.post(url, json=load_fixture("balance/account_balance_response_accepted.portal.json"))
    callback = "https://pay.example.co.ke/r/1"
    client.account_balance(result_url=callback, queue_timeout_url=callback)
    client.account_balance(result_url=callback, queue_timeout_url=callback)

    sent = [
        json.loads(c.request.body)["SecurityCredential"]
        for c in daraja.calls
        if c.request.url == url
    ]
    assert sent[0] == sent[1]  # computed once, not per request
    assert key.decrypt(base64.b64decode(sent[0]), padding.PKCS1v15()) == b"Safaricom999!*!"


def test_a_configured_security_credential_wins(client, daraja):
    url = f"{SANDBOX}/mpesa/accountbalance/v1/query"
    daraja.post(url, json=load_fixture("balance/account_balance_response_accepted.portal.json"))
    client.account_balance(result_url="https://a.co.ke/r", queue_timeout_url="https://a.co.ke/t")

    assert json.loads(daraja.calls[1].request.body)["SecurityCredential"] == (
        client.config.security_credential
    )
