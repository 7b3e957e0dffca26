"""JSON encoding of batches: orjson or msgspec when installed, the standard library otherwise.

Only the worker thread serialises, so the choice never touches the serving path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any


def _default(value: Any) -> Any:
    """Make what the fast encoders refuse JSON-able instead of failing the whole batch."""
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(
        _finite(value), default=_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _finite(value: Any) -> Any:
    """The standard encoder writes NaN, which is not JSON; orjson writes null. Match orjson."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _stdlib_dumps_plain(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _choose_plain(name: str, general: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """The encoder of columnar batches: their values are already plain and finite (the
    builder checked them column by column), so the standard library needs no `_finite` walk
    and orjson no fallback."""
    if name == "orjson":
        import orjson

        return orjson.dumps
    if name == "msgspec":
        return general
    return _stdlib_dumps_plain


def _choose_encoder() -> tuple[str, Callable[[Any], bytes]]:
    try:
        import orjson

        encode = orjson.dumps
        option = orjson.OPT_SERIALIZE_NUMPY
        lenient = option | orjson.OPT_NON_STR_KEYS  # twice as slow: only when needed

        def orjson_dumps(value: Any) -> bytes:
            try:
                return encode(value, default=_default, option=option)
            except TypeError:
                try:
                    return encode(value, default=_default, option=lenient)
                except TypeError:  # an integer beyond 64 bits, which only `json` writes
                    return _stdlib_dumps(value)

        return "orjson", orjson_dumps
    except ImportError:
        pass
    try:
        import msgspec

        encoder = msgspec.json.Encoder(enc_hook=_default)

        def msgspec_dumps(value: Any) -> bytes:
            try:
                return encoder.encode(value)
            except (TypeError, OverflowError):  # an integer beyond 64 bits
                return _stdlib_dumps(value)

        return "msgspec", msgspec_dumps
    except ImportError:
        return "json", _stdlib_dumps


ENCODER_NAME, dumps = _choose_encoder()
dumps_plain = _choose_plain(ENCODER_NAME, dumps)


def _choose_decoder() -> Callable[[bytes | str], Any]:
    try:
        import orjson

        return orjson.loads
    except ImportError:
        pass
    try:
        import msgspec

        return msgspec.json.decode
    except ImportError:
        return json.loads


loads = _choose_decoder()
"""Decode a batch (the in-memory transport, the HTTP transport's answers, tests): orjson or
msgspec when installed, the standard library otherwise."""
