"""The survival suite's fixtures, and the app tests' it reuses."""

from tests.payments.conftest import (  # noqa: F401 (fixtures)
    money_signals,
    post_result,
)
from tests.survival.api_requests import finance, post  # noqa: F401 (fixtures)
