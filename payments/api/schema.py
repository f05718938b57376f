"""OpenAPI generation hooks."""

from __future__ import annotations


def document_paths_without_trailing_slash(endpoints, **kwargs):
    """Our routes accept both forms; the contract with the app spells them without a slash."""
    return [
        (path.rstrip("/") or "/", path_regex, method, callback)
        for path, path_regex, method, callback in endpoints
    ]


def document_blank_query_parameters(result, generator, request, public):
    """An empty query parameter (``?status=``) counts as not given, as django-filter and DRF's
    pagination take it: the schema says so, or it would call ``?created_after=`` invalid."""
    blank = {"type": "string", "maxLength": 0}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                if parameter["in"] == "query" and set(schema) - {"type", "description"}:
                    parameter["schema"] = {"anyOf": [schema, blank]}
    return result
