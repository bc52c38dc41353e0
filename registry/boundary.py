"""What every request must be before any handler sees it.

The registry promises that anything it accepted it can serve again, and that bad input is a 4xx
naming the field, never a 500. Both break at the edge of the process, before any domain rule
runs: a body nested 10,000 levels deep exhausts the decoder's recursion, a body that is not UTF-8
or holds a lone surrogate or a NUL cannot be stored in PostgreSQL or encoded back into a JSON
answer, and an integer above 2^63-1 overflows both databases. So the checks live here, once, for
every route:

- `StrictRequest.json` decodes request bodies: UTF-8 only, at most `MAX_BODY_DEPTH` levels of
  arrays and objects, every string (keys included) a sequence of Unicode scalar values without
  NUL, every integer within a signed 64-bit column. The first offence is named by its JSON path
  (`field`: `overrides.seeds`, `signatures[0].sig`).
- `check_request_text` (a `before_request` hook) holds the path and every query string value to
  the same rules: percent-decoded bytes must be UTF-8 and free of NUL.
- `MAX_ID`, `MAX_OFFSET` and `MAX_LIMIT` are the bounds the controllers declare on integer
  parameters, so that they appear in the OpenAPI document as well as being enforced.

Statements inside envelopes are base64 payloads: their own limits (metadata depth, names) are
checked where statements are validated, not here.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Request
from litestar.types import Empty

from .errors import BadRequestError

# Database integer columns are signed 64-bit on both backends.
MAX_ID = 2**63 - 1
MIN_INT = -(2**63)
# Pagination: offsets beyond this are no listing anyone reads; kept far below MAX_ID so that
# offset + limit never overflows either database.
MAX_OFFSET = 2**31 - 1
MAX_LIMIT = 500
# Deepest array/object nesting in a request body. Envelopes, principals, keys and eval
# submissions need four or five levels; statement metadata has its own, lower limit.
MAX_BODY_DEPTH = 64


def _bad(message: str, field: str) -> BadRequestError:
    return BadRequestError(message, field=field)


def _printable_path(field: str) -> str:
    """`field` as it can be sent back: a key with a NUL or a lone surrogate, escaped."""
    return field.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _check_text(value: str, field: str, what: str) -> None:
    """Refuse NUL and lone surrogates (which no UTF-8 encoder or PostgreSQL text column takes)."""
    field = _printable_path(field)
    if "\x00" in value:
        raise _bad(f"{what} '{field}' contains a NUL character (U+0000)", field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _bad(
            f"{what} '{field}' contains a lone surrogate (U+{ord(value[exc.start]):04X}); only "
            "Unicode scalar values are accepted",
            field,
        ) from None


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def check_json_value(value: Any, *, max_depth: int = MAX_BODY_DEPTH) -> None:
    """Walk a decoded JSON value (iteratively: the depth is what is being checked).

    Raises:
        BadRequestError: naming the JSON path of the first value that is too deep, a string
            with NUL or a lone surrogate, or an integer outside a signed 64-bit column.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                where = _printable_path(where)
                raise _bad(
                    f"request body nests arrays/objects deeper than {max_depth} levels"
                    + (f" at {where!r}" if where else ""),
                    where or "body",
                )
            if isinstance(item, dict):
                for k, v in item.items():
                    child = _path(where, str(k))
                    _check_text(str(k), child, "key")
                    stack.append((v, child, depth + 1))
            else:
                stack.extend((v, _path(where, i), depth + 1) for i, v in enumerate(item))
        elif isinstance(item, str):
            _check_text(item, where or "body", "field")
        elif isinstance(item, float) and not math.isfinite(item):  # 1e400 decodes to inf
            where = _printable_path(where)
            raise _bad(f"field '{where or 'body'}': number out of range", where or "body")
        elif isinstance(item, int) and not isinstance(item, bool) and not MIN_INT <= item <= MAX_ID:
            where = _printable_path(where)
            raise _bad(
                f"field '{where or 'body'}': integer out of range (at most {MAX_ID})",
                where or "body",
            )


def decode_body(body: bytes) -> Any:
    """Decode a JSON request body under the boundary's rules (see the module docstring).

    Raises:
        BadRequestError: field `body` for bytes that are not UTF-8 JSON or nest too deeply,
            the offending JSON path otherwise.
    """
    if not body:
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(f"request body is not valid UTF-8 (byte {exc.start})", "body") from None
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise _bad(
            f"request body nests arrays/objects deeper than {MAX_BODY_DEPTH} levels", "body"
        ) from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        # msgspec refuses numbers beyond 64 bits or a double, and lone surrogate escapes
        # ("\ud800") as malformed; the standard library decodes all three, so that the
        # answer can name the field that holds one.
        value = _decode_leniently(body, exc)
    check_json_value(value)
    return value


def _decode_leniently(body: bytes, original: Exception) -> Any:
    import json

    try:
        # Only reached for bodies msgspec refused; its depth limit did not trip, and the
        # standard decoder's recursion is bounded by the same interpreter limit.
        return json.loads(body)
    except (ValueError, RecursionError):  # ints of over 4,300 digits are a ValueError too
        raise _bad(f"request body is not valid JSON: {original}", "body") from None


class StrictRequest(Request[Any, Any, Any]):
    """The app's request class: JSON bodies go through `decode_body`."""

    async def json(self) -> Any:
        """The decoded JSON body, cached per request as Litestar caches its own."""
        if self._json is Empty:
            if (cached := self._connection_state.json) is not Empty:
                self._json = cached
            else:
                self._json = self._connection_state.json = decode_body(await self.body())
        return self._json


def _decode_component(raw: bytes, field: str, what: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(f"{what} is not valid UTF-8 (byte {exc.start})", field) from None
    if "\x00" in text:
        raise _bad(f"{what} contains a NUL character (U+0000)", field)
    return text


def check_request_text(request: Request[Any, Any, Any]) -> None:
    """`before_request` hook: the path and every query parameter are UTF-8 without NUL.

    Raises:
        BadRequestError: naming the query parameter (or `path`).
    """
    # Servers give the path without the query; some test clients append it.
    raw_path = (request.scope.get("raw_path") or b"").partition(b"?")[0]
    if b"%" in raw_path or not raw_path.isascii():
        _decode_component(unquote_to_bytes(raw_path), "path", "the request path")
    if "\x00" in request.scope.get("path", ""):
        raise _bad("the request path contains a NUL character (U+0000)", "path")
    query = request.scope.get("query_string") or b""
    if not query:
        return
    for pair in query.split(b"&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition(b"=")
        key_bytes = unquote_to_bytes(raw_key.replace(b"+", b" "))
        key = key_bytes.decode("utf-8", "replace").replace("\x00", "\\x00")
        _decode_component(key_bytes, key, f"query parameter name {key!r}")
        value = unquote_to_bytes(raw_value.replace(b"+", b" "))
        _decode_component(value, key, f"query parameter {key!r}")
