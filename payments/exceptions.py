"""Domain errors raised by services; interfaces turn them into answers."""

from __future__ import annotations


class PaymentsError(Exception):
    """Base class. ``code`` is a stable, machine-readable word for API clients."""

    code = "payments_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class InvalidTransitionError(PaymentsError):
    code = "invalid_transition"

    def __init__(self, current: str, new: str) -> None:
        super().__init__(f"a transaction cannot move from {current} to {new}")
        self.current = current
        self.new = new


class PaymentValidationError(PaymentsError):
    """Input we refuse before anything is stored or sent. ``field`` names the culprit."""

    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class PaymentsNotConfiguredError(PaymentsError):
    code = "not_configured"
