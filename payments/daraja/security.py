"""Credentials Daraja asks for: the STK Password and Timestamp, and the SecurityCredential."""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .dates import NAIROBI
from .errors import DarajaConfigurationError


def stk_timestamp(now: datetime | None = None) -> str:
    """``YYYYMMDDHHmmss`` in Nairobi time, whatever the server's zone (API.md §2.1)."""
    moment = (now or datetime.now(NAIROBI)).astimezone(NAIROBI)
    return moment.strftime("%Y%m%d%H%M%S")


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """base64(BusinessShortCode + Passkey + Timestamp): plain concatenation, then Base64."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


def security_credential(initiator_password: str, certificate: bytes) -> str:
    """RSA PKCS#1 v1.5 encryption of the plain initiator password, Base64 (API.md §9.1).

    ``certificate`` is the M-Pesa certificate, PEM or DER. PKCS#1 v1.5 is randomised, so every
    call gives a different, equally valid credential. Raises ValueError for a certificate
    without an RSA key, or a password too long for the key.
    """
    cipher = _public_key(certificate).encrypt(
        initiator_password.encode("utf-8"), padding.PKCS1v15()
    )
    return base64.b64encode(cipher).decode("ascii")


def read_certificate(path: str) -> bytes:
    """The M-Pesa certificate file at ``path`` (the certificate_path setting), checked.

    Raises DarajaConfigurationError naming the path when the file cannot be read or is not a
    PEM or DER X.509 certificate with an RSA key: a configuration error, found before any
    request is made.
    """
    try:
        certificate = Path(path).read_bytes()
    except OSError as exc:
        raise DarajaConfigurationError(
            f"cannot read the M-Pesa certificate at {path} (certificate_path): {exc.strerror}"
        ) from None
    try:
        _public_key(certificate)
    except ValueError as exc:
        raise DarajaConfigurationError(
            f"the M-Pesa certificate at {path} (certificate_path) is unusable: {exc}"
        ) from None
    return certificate


def _public_key(certificate: bytes) -> rsa.RSAPublicKey:
    # The portal's .cer files are PEM (API.md §9.2); a DER export of one is read too.
    pem = certificate.lstrip().startswith(b"-----BEGIN")
    load = x509.load_pem_x509_certificate if pem else x509.load_der_x509_certificate
    try:
        public_key = load(certificate).public_key()
    except (ValueError, UnsupportedAlgorithm):
        # cryptography's own message is about PEM framing and links to its FAQ.
        raise ValueError("not a PEM or DER X.509 certificate") from None
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise ValueError("the certificate does not hold an RSA public key")
    return public_key
