"""The survival suite reuses the app tests' fixtures."""

from tests.payments.conftest import (  # noqa: F401 (fixtures)
    money_signals,
    post_result,
)
