"""The API's JSON parser: nesting is bounded before anything recursive reads the body."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils.json import strict_constant

from payments.daraja.jsontext import loads_bounded


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser, except that a document nested deeper than ``loads_bounded`` allows is
    refused (400) before it is parsed: json.load overflows the stack about a thousand levels
    down, which DRF does not catch (a 500 on every POST)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context=None) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
            return loads_bounded(text, parse_constant=strict_constant if self.strict else None)
        # LookupError: a charset Python knows but that is no text encoding ("rot13", "hex").
        except (ValueError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
