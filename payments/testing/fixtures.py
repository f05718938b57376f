"""pytest fixtures for host projects; in the project's top-level conftest.py:

pytest_plugins = ["payments.testing.fixtures"]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from payments.testing import DarajaDouble
from payments.testing import daraja_double as _daraja_double


@pytest.fixture
def daraja_double(db) -> Iterator[DarajaDouble]:
    """Daraja answered in-process for the test: pushes and payouts are accepted, nothing is
    paid until a ``payments.testing`` helper delivers the outcome."""
    with _daraja_double() as double:
        yield double
