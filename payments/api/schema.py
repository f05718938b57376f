"""OpenAPI generation hooks."""

from __future__ import annotations


def document_paths_without_trailing_slash(endpoints, **kwargs):
    """Our routes accept both forms; the contract with the app spells them without a slash."""
    return [
        (path.rstrip("/") or "/", path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
    ]
