"""`monitor`: the decorator / context manager that serving code puts around model calls.

The wrappers are the hot path. Unconfigured they cost one attribute read. Configured they
read the clock twice, take a prediction number, and append one tuple to the emitter's
queue, bounded by a length check — no locks, no serialisation, no I/O. Arguments and
results are kept by reference and summarised later on the worker thread: a caller that
mutates its inputs in place after the call may see the mutated values reported.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any, TypeVar

from . import _cuda, _payload, _state
from ._runtime import configure_from_environment

F = TypeVar("F", bound=Callable[..., Any])
_perf_counter_ns = time.perf_counter_ns
_PLAIN_SCALARS = frozenset((int, float, str, bool, type(None)))
_last_prediction: ContextVar[Any] = ContextVar("inferloop_last_prediction", default=None)


class CallExtras:
    """What a call adds beyond its arguments: explicit payloads, overrides, CUDA events."""

    __slots__ = ("inputs", "outputs", "batch_size", "device", "tags", "cuda")

    def __init__(self, cuda: tuple[Any, Any] | None = None) -> None:
        self.inputs: Any = _payload.UNSET
        self.outputs: Any = _payload.UNSET
        self.batch_size: int | None = None
        self.device: str | None = None
        self.tags: dict[str, str] | None = None
        self.cuda = cuda


def _format_prediction(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    emitter = _state.emitter
    prefix = emitter.prediction_prefix if emitter is not None else "local"
    return f"{prefix}-{value:x}"


def last_prediction_id() -> str | None:
    """Prediction id of the latest monitored call in this thread / asyncio task (or inside it).

    Pass it to `log_label(prediction_id, label)` when the ground truth arrives.
    """
    return _format_prediction(_last_prediction.get())


class MonitorSpec:
    """The static description of one monitored callable, shared by all its events."""

    __slots__ = (
        "model", "version", "environment", "tags", "device", "batch_size", "capture_inputs",
        "capture_outputs", "names", "skip_first", "prediction_arg", "prediction_index", "cuda",
    )

    def __init__(self, *, model: str, version: str, environment: str | None, tags: Mapping[str, Any],
                 device: str | None, batch_size: int | Callable[..., int] | None,
                 capture_inputs: bool, capture_outputs: bool, prediction_arg: str | None,
                 cuda: bool | None) -> None:
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
        positional = [p.name for p in parameters
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
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
            if value is None and self.prediction_index is not None and len(args) > self.prediction_index:
                value = args[self.prediction_index]
            if value is None:
                first = args[int(self.skip_first)] if len(args) > int(self.skip_first) else None
                if isinstance(first, Mapping):
                    value = first.get(name)
            return None if value is None else str(value)
        except Exception:  # noqa: BLE001 - never break the call over an id
            return None


def _sync_wrapper(fn: Callable[..., Any], spec: MonitorSpec) -> Callable[..., Any]:
    state = _state
    perf = _perf_counter_ns
    set_last = _last_prediction.set
    wants_given_id = spec.prediction_arg is not None

    @functools.wraps(fn)
    def monitored(*args: Any, **kwargs: Any) -> Any:
        emitter = state.emitter
        if emitter is None:
            return fn(*args, **kwargs)
        prediction = spec.given_prediction_id(args, kwargs) if wants_given_id else None
        if prediction is None:
            prediction = next(emitter.prediction_numbers)
        set_last(prediction)
        cuda = _cuda.begin() if spec.cuda or (spec.cuda is None and emitter.cuda_active) else None
        started = perf()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:
            latency = perf() - started
            _enqueue(emitter, spec, started, latency, error, args, kwargs, None, prediction, cuda)
            raise
        latency = perf() - started
        queue = emitter.queue
        if cuda is None and len(queue) < emitter.queue_limit:
            queue.append((spec, started, latency, None, args, kwargs, result, prediction, None))
            if len(queue) == emitter.wake_at:
                emitter.wake.set()
        elif cuda is None:
            emitter.drop_queue_full()
        else:
            _enqueue(emitter, spec, started, latency, None, args, kwargs, result, prediction, cuda)
        return result

    monitored.__inferloop_spec__ = spec  # type: ignore[attr-defined]
    return monitored


def _async_wrapper(fn: Callable[..., Any], spec: MonitorSpec) -> Callable[..., Any]:
    state = _state
    perf = _perf_counter_ns
    set_last = _last_prediction.set
    wants_given_id = spec.prediction_arg is not None

    @functools.wraps(fn)
    async def monitored(*args: Any, **kwargs: Any) -> Any:
        emitter = state.emitter
        if emitter is None:
            return await fn(*args, **kwargs)
        prediction = spec.given_prediction_id(args, kwargs) if wants_given_id else None
        if prediction is None:
            prediction = next(emitter.prediction_numbers)
        set_last(prediction)
        cuda = _cuda.begin() if spec.cuda or (spec.cuda is None and emitter.cuda_active) else None
        started = perf()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as error:
            latency = perf() - started
            _enqueue(emitter, spec, started, latency, error, args, kwargs, None, prediction, cuda)
            raise
        latency = perf() - started
        _enqueue(emitter, spec, started, latency, None, args, kwargs, result, prediction, cuda)
        return result

    monitored.__inferloop_spec__ = spec  # type: ignore[attr-defined]
    return monitored


def _enqueue(emitter: Any, spec: Any, started: int, latency: int, error: BaseException | None,
             args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, prediction: Any,
             cuda: Any, extras: CallExtras | None = None) -> None:
    if cuda is not None:
        pair = _cuda.end(cuda)
        if pair is not None:
            extras = extras or CallExtras()
            extras.cuda = pair
    queue = emitter.queue
    if len(queue) < emitter.queue_limit:
        queue.append((spec, started, latency, error, args, kwargs, result, prediction, extras))
        if len(queue) == emitter.wake_at:
            emitter.wake.set()
    else:
        emitter.drop_queue_full()


class Call:
    """One monitored block (context-manager form): set what the block's inputs/outputs are."""

    __slots__ = ("_emitter", "_prediction", "_started", "_cuda", "extras", "_token")

    def __init__(self, emitter: Any, prediction: Any) -> None:
        self._emitter = emitter
        self._prediction = prediction
        self._started = 0
        self._cuda: Any = None
        self.extras = CallExtras()
        self._token: Token[Any] | None = None

    @property
    def prediction_id(self) -> str:
        if self._prediction is None:  # unconfigured: still hand out a usable unique id
            self._prediction = uuid.uuid4().hex
        return _format_prediction(self._prediction)  # type: ignore[return-value]

    def set_inputs(self, value: Any) -> None:
        self.extras.inputs = value

    def set_outputs(self, value: Any) -> None:
        self.extras.outputs = value

    def set_batch_size(self, size: int) -> None:
        self.extras.batch_size = int(size)

    def set_device(self, device: str) -> None:
        self.extras.device = str(device)

    def tag(self, key: str, value: Any) -> None:
        if self.extras.tags is None:
            self.extras.tags = {}
        self.extras.tags[str(key)] = str(value)


class Monitor:
    """Returned by `monitor(...)`: decorates functions, methods and coroutines, wraps torch
    modules, and is a context manager for code that is not a single call."""

    def __init__(self, spec_kwargs: dict[str, Any]) -> None:
        self._spec_kwargs = spec_kwargs
        self._active: ContextVar[Call | None] = ContextVar("inferloop_active_call", default=None)
        self._block_spec: MonitorSpec | None = None

    def _spec_for(self, default_model: str) -> MonitorSpec:
        kwargs = dict(self._spec_kwargs)
        kwargs["model"] = kwargs.get("model") or default_model
        return MonitorSpec(**kwargs)

    def __call__(self, fn: F) -> F:
        spec = self._spec_for(getattr(fn, "__qualname__", None) or repr(fn))
        spec.bind_signature(fn)
        if inspect.iscoroutinefunction(fn):
            return _async_wrapper(fn, spec)  # type: ignore[return-value]
        return _sync_wrapper(fn, spec)  # type: ignore[return-value]

    def wrap(self, module: Any) -> Any:
        """Monitor a `torch.nn.Module`'s forward calls in place; returns the module."""
        spec = self._spec_for(type(module).__name__)
        forward = module.forward
        spec.bind_signature(forward)
        module.forward = _sync_wrapper(forward, spec)
        return module

    def __enter__(self) -> Call:
        emitter = _state.emitter
        if self._block_spec is None:
            self._block_spec = self._spec_for("block")
        if emitter is None:
            call = Call(None, None)
        else:
            prediction = next(emitter.prediction_numbers)
            _last_prediction.set(prediction)
            call = Call(emitter, prediction)
            wants = self._block_spec.cuda
            if wants or (wants is None and emitter.cuda_active):
                call._cuda = _cuda.begin()
        call._token = self._active.set(call)
        call._started = _perf_counter_ns()
        return call

    def __exit__(self, exc_type: Any, error: BaseException | None, traceback: Any) -> bool:
        ended = _perf_counter_ns()
        call = self._active.get()
        if call is None:
            return False
        if call._token is not None:
            self._active.reset(call._token)
        emitter = call._emitter
        if emitter is not None:
            with contextlib.suppress(Exception):  # never turn the block's outcome into ours
                _enqueue(emitter, self._block_spec, call._started, ended - call._started, error,
                         (), {}, None, call._prediction, call._cuda, call.extras)
        return False

    async def __aenter__(self) -> Call:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, error: BaseException | None, traceback: Any) -> bool:
        return self.__exit__(exc_type, error, traceback)


def monitor(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    model: str | None = None,
    version: str = "",
    environment: str | None = None,
    tags: Mapping[str, Any] | None = None,
    batch_size: int | Callable[..., int] | None = None,
    device: str | None = None,
    prediction_id: str | None = None,
    capture_inputs: bool = True,
    capture_outputs: bool = True,
    cuda: bool | None = None,
) -> Any:
    """Record every call of a model as an inference event.

    `@monitor(model="fraud", version="3")` on a function, method or coroutine function;
    `with monitor(model="fraud") as call:` around a block; `monitor.wrap(module, model=...)`
    for a torch module. `prediction_id="request_id"` takes the id from that argument (or that
    key of a dict input) instead of generating one. `batch_size` and `device` override what is
    inferred; `cuda=False` turns off device timing, `True` asks for it when CUDA is in use.
    """
    configure_from_environment()
    spec_kwargs = {
        "model": model, "version": version, "environment": environment, "tags": tags or {},
        "device": device, "batch_size": batch_size, "capture_inputs": capture_inputs,
        "capture_outputs": capture_outputs, "prediction_arg": prediction_id, "cuda": cuda,
    }
    instrument = Monitor(spec_kwargs)
    if fn is not None:
        return instrument(fn)
    return instrument


def _wrap_module(module: Any, **options: Any) -> Any:
    """`monitor.wrap(module, model=..., version=...)`: monitor a torch module's forward."""
    return monitor(**options).wrap(module)


monitor.wrap = _wrap_module  # type: ignore[attr-defined]
