"""Credentials Daraja asks for: the STK Password and Timestamp, and the SecurityCredential."""

from __future__ import annotations

import base64
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .dates import NAIROBI


def stk_timestamp(now: datetime | None = None) -> str:
    """``YYYYMMDDHHmmss`` in Nairobi time, whatever the server's zone (API.md §2.1)."""
    moment = (now or datetime.now(NAIROBI)).astimezone(NAIROBI)
    return moment.strftime("%Y%m%d%H%M%S")


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """base64(BusinessShortCode + Passkey + Timestamp): plain concatenation, then Base64."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


def security_credential(initiator_password: str, certificate_pem: bytes) -> str:
    """RSA PKCS#1 v1.5 encryption of the plain initiator password, Base64 (API.md §9.1).

    PKCS#1 v1.5 is randomised, so every call gives a different, equally valid credential.
    """
    public_key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("the M-Pesa certificate must hold an RSA public key")
    cipher = public_key.encrypt(initiator_password.encode("utf-8"), padding.PKCS1v15())
    return base64.b64encode(cipher).decode("ascii")
