"""JSON read within bounds, and text a database can store.

Bodies come from strangers: a JSON document nested a thousand deep makes every recursive walker
(ours, json's, a renderer's) overflow the stack, and JSON can spell characters no database
text column takes (an escaped NUL, a lone UTF-16 surrogate). Both are handled here, before any
other code sees the data.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Deeper than any body Daraja or our API documents (Daraja's are four or five levels deep).
MAX_JSON_DEPTH = 32
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")
# NUL, and UTF-16 surrogates that are not part of a pair (json.loads yields them from "\udfff").
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


class JSONTooDeepError(ValueError):
    """A JSON document nested deeper than allowed; refused before it is parsed."""


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the arrays and objects of ``text`` nest deeper than ``limit``, strings ignored."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def loads_bounded(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, **options: Any) -> Any:
    """``json.loads`` (given ``options``) that refuses a document nested deeper than ``max_depth``.

    Raises ValueError: JSONTooDeepError, json.JSONDecodeError, or UnicodeDecodeError for bytes
    that are not UTF-8.
    """
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    if json_depth_exceeds(text, max_depth):
        raise JSONTooDeepError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text, **options)


def storable_text(value: str) -> str:
    """``value`` with NUL and lone surrogates as U+FFFD: text every database column stores."""
    return _UNSTORABLE.sub(REPLACEMENT, value)


def has_unstorable_text(value: str) -> bool:
    return _UNSTORABLE.search(value) is not None


def storable(value: Any) -> Any:
    """A parsed JSON value with every key and string made storable (``storable_text``)."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value
