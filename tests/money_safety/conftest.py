"""The issue-9 regression tests reuse the app tests' fixtures."""

from tests.payments.conftest import (  # noqa: F401 (fixtures)
    other_user,
    post_result,
    staff_user,
    user,
)
