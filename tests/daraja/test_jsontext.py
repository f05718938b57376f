"""JSON read within bounds, and text every database stores."""

from __future__ import annotations

import json

import pytest

from payments.daraja.jsontext import (
    MAX_JSON_DEPTH,
    JSONTooDeepError,
    has_unstorable_text,
    loads_bounded,
    storable,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_a_document_at_the_depth_limit_is_read():
    assert loads_bounded(nested(MAX_JSON_DEPTH)) is not None


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
def test_a_deeper_document_is_refused_before_parsing(depth):
    with pytest.raises(JSONTooDeepError):
        loads_bounded(nested(depth))


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"ResultDesc": "[" * 500 + '\\"{' * 200})
    assert loads_bounded(text) == json.loads(text)


def test_bytes_that_are_not_utf8_are_a_value_error():
    with pytest.raises(ValueError):
        loads_bounded(b'{"a": "\xff"}')


def test_nul_and_lone_surrogates_become_replacement_characters_keys_included():
    parsed = json.loads('{"a\\u0000": ["x\\udfffy", {"k": "\\ud800"}], "ok": "\\ud83d\\ude00"}')

    cleaned = storable(parsed)

    assert cleaned == {"a\ufffd": ["x\ufffdy", {"k": "\ufffd"}], "ok": "\U0001f600"}
    assert not has_unstorable_text(json.dumps(cleaned, ensure_ascii=False))
