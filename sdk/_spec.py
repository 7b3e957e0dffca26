"""`MonitorSpec`: the static description of one monitored callable, shared by its events.

Built once per decorated callable. Its helpers split by thread: `given_prediction_id` runs
on the serving thread (it must never raise); the others run on the worker.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from . import _payload

_PLAIN_SCALARS = frozenset((int, float, str, bool, type(None)))


class MonitorSpec:
    """The static description of one monitored callable, shared by all its events."""

    __slots__ = (
        "model",
        "version",
        "environment",
        "tags",
        "device",
        "batch_size",
        "capture_inputs",
        "capture_outputs",
        "names",
        "skip_first",
        "prediction_arg",
        "prediction_index",
        "cuda",
    )

    def __init__(
        self,
        *,
        model: str,
        version: str,
        environment: str | None,
        tags: Mapping[str, Any],
        device: str | None,
        batch_size: int | Callable[..., int] | None,
        capture_inputs: bool,
        capture_outputs: bool,
        prediction_arg: str | None,
        cuda: bool | None,
    ) -> None:
        if not model or len(model) > 200:
            raise ValueError("model must be 1 to 200 characters")
        self.model = model
        self.version = str(version)
        self.environment = environment
        self.tags = {str(k): str(v) for k, v in tags.items()}
        self.device = device
        self.batch_size = batch_size
        self.capture_inputs = capture_inputs
        self.capture_outputs = capture_outputs
        self.names: tuple[str, ...] = ()
        self.skip_first = False
        self.prediction_arg = prediction_arg
        self.prediction_index: int | None = None
        self.cuda = cuda

    def bind_signature(self, fn: Callable[..., Any]) -> None:
        try:
            parameters = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return
        positional = [
            p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if positional and positional[0] in ("self", "cls"):
            self.skip_first = True
            positional = positional[1:]
        self.names = tuple(positional)
        if self.prediction_arg in positional:
            self.prediction_index = positional.index(self.prediction_arg) + int(self.skip_first)

    # Worker-side helpers -------------------------------------------------------------
    def inputs_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The value that stands for the call's inputs (named parameters become features)."""
        if self.skip_first:
            args = args[1:]
        if not kwargs:
            if len(args) == 1:
                return args[0]
            if not args:
                return None
        names = self.names
        named = {(names[i] if i < len(names) else f"arg{i}"): value for i, value in enumerate(args)}
        named.update(kwargs)
        if self.prediction_arg is not None:
            named.pop(self.prediction_arg, None)
        if len(named) == 1:
            return next(iter(named.values()))
        if all(_payload.is_scalar(value) for value in named.values()):
            return named
        for value in named.values():
            if not _payload.is_scalar(value):
                return value
        return named

    def scalar_row(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The inputs as one row when every argument is a plain, short scalar; else None.

        The worker's fast path: no payload inspection beyond one type check per argument.
        """
        if self.skip_first:
            args = args[1:]
        names = self.names
        if len(args) > len(names):
            return None
        row: dict[str, Any] = {}
        for name, value in zip(names, args, strict=False):
            kind = type(value)
            if kind not in _PLAIN_SCALARS or (kind is str and len(value) > 256):
                return None
            row[name] = value
        for name, value in kwargs.items():
            kind = type(value)
            if kind not in _PLAIN_SCALARS or (kind is str and len(value) > 256):
                return None
            row[name] = value
        if self.prediction_arg is not None:
            row.pop(self.prediction_arg, None)
        if not row:
            return None
        if len(row) == 1:  # a single value reads as "value", like any single input
            return {"value": next(iter(row.values()))}
        return row

    def batch_size_of(self, args: tuple[Any, ...], kwargs: dict[str, Any], inputs: Any) -> int:
        if isinstance(self.batch_size, int):
            return self.batch_size
        if callable(self.batch_size):
            return int(self.batch_size(*args, **kwargs))
        size = _payload.batch_size(inputs)
        return 1 if size is None else size

    # Hot-path helper ---------------------------------------------------------------
    def given_prediction_id(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The caller's own prediction id, from a named argument or a key of the input dict."""
        try:
            name = self.prediction_arg
            value = kwargs.get(name)
            if (
                value is None
                and self.prediction_index is not None
                and len(args) > self.prediction_index
            ):
                value = args[self.prediction_index]
            if value is None:
                first = args[int(self.skip_first)] if len(args) > int(self.skip_first) else None
                if isinstance(first, Mapping):
                    value = first.get(name)
            return None if value is None else str(value)
        except Exception:  # noqa: BLE001 - never break the call over an id
            return None
