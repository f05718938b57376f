"""The issue-10 suite's fixtures."""

from tests.survival.api_requests import finance, post  # noqa: F401 (fixtures)
