"""`monitor`: the decorator / context manager that serving code puts around model calls.

The wrappers are the hot path. Unconfigured they cost one attribute read. Configured they
read the clock twice, take a prediction number, note it as this thread's latest (`_last`),
and append one record to the emitter's queue (a `_record.CallRecord`, built as a plain
tuple), bounded by a length check: no locks, no serialisation, no I/O. Arguments and
results are kept by reference and summarised later on the worker thread: a caller that
mutates its inputs in place after the call may see the mutated values reported.

A plain function's wrapper is `_hotpath.Monitored`, the same steps in C (a few hundred
ns a call less, docs/sdk.md), where that extension was built; it hands CUDA-timed calls
to the Python wrapper below, which also serves specs with a given prediction id and
installs without a compiler.
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

from . import _cuda, _state
from ._ids import prediction_id
from ._last import ThreadSlot, get_ident, last_prediction, recall, remember, running_loop
from ._record import NO_KWARGS, CallExtras
from ._runtime import configure_from_environment
from ._spec import MonitorSpec

try:
    from . import _hotpath
except ImportError:  # built without a C compiler, or on a platform it does not support
    _hotpath = None  # type: ignore[assignment]
else:
    # Its clock must be perf_counter_ns's: start times are mapped to wall time by that one.
    if abs(_hotpath.monotonic_ns() - time.perf_counter_ns()) > 50_000_000:
        _hotpath = None  # type: ignore[assignment]

F = TypeVar("F", bound=Callable[..., Any])
_perf_counter_ns = time.perf_counter_ns

use_hotpath = _hotpath is not None
"""Whether new wrappers of plain functions are the C ones (tests and benchmarks turn it off
to run the Python wrapper)."""


def _format_prediction(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    emitter = _state.emitter
    prefix = emitter.prediction_prefix if emitter is not None else "local"
    return prediction_id(prefix, value)


def last_prediction_id() -> str | None:
    """Prediction id of the latest monitored call in this thread / asyncio task (or inside it).

    Pass it to `log_label(prediction_id, label)` when the ground truth arrives.
    """
    return _format_prediction(recall())


def _sync_wrapper(fn: Callable[..., Any], spec: MonitorSpec) -> Callable[..., Any]:
    python = _python_sync_wrapper(fn, spec)
    if not use_hotpath or spec.prediction_arg is not None or spec.cuda:
        return python
    fast = _hotpath.Monitored(
        fn,
        spec,
        _state,
        fallback=python,
        remember=remember,
        enqueue=_enqueue,
        last_prediction=last_prediction,
        slot_type=ThreadSlot,
        running_loop=running_loop,
        no_kwargs=NO_KWARGS,
    )
    functools.update_wrapper(fast, fn)
    fast.__inferloop_spec__ = spec
    return fast


def _python_sync_wrapper(fn: Callable[..., Any], spec: MonitorSpec) -> Callable[..., Any]:
    state = _state
    perf = _perf_counter_ns
    get_last = last_prediction.get
    wants_given_id = spec.prediction_arg is not None

    @functools.wraps(fn)
    def monitored(*args: Any, **kwargs: Any) -> Any:
        emitter = state.emitter
        if emitter is None:
            return fn(*args, **kwargs)
        prediction = spec.given_prediction_id(args, kwargs) if wants_given_id else None
        if prediction is None:
            prediction = next(emitter.prediction_numbers)
        # `_last.remember(prediction)`, inlined: the common case updates this thread's slot.
        slot = get_last()
        if type(slot) is ThreadSlot and slot.thread == get_ident() and running_loop() is None:
            slot.prediction = prediction
        else:
            remember(prediction)
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
            # A CallRecord, built as a plain tuple in its field order (see _record).
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
    wants_given_id = spec.prediction_arg is not None

    @functools.wraps(fn)
    async def monitored(*args: Any, **kwargs: Any) -> Any:
        emitter = state.emitter
        if emitter is None:
            return await fn(*args, **kwargs)
        prediction = spec.given_prediction_id(args, kwargs) if wants_given_id else None
        if prediction is None:
            prediction = next(emitter.prediction_numbers)
        remember(prediction)
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


def _enqueue(
    emitter: Any,
    spec: Any,
    started: int,
    latency: int,
    error: BaseException | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    result: Any,
    prediction: Any,
    cuda: Any,
    extras: CallExtras | None = None,
) -> None:
    if cuda is not None:
        pair = _cuda.end(cuda)
        if pair is not None:
            extras = extras or CallExtras()
            extras.cuda = pair
    queue = emitter.queue
    if len(queue) < emitter.queue_limit:
        # A CallRecord, built as a plain tuple in its field order (see _record).
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
            remember(prediction)
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
                _enqueue(
                    emitter,
                    self._block_spec,
                    call._started,
                    ended - call._started,
                    error,
                    (),
                    {},
                    None,
                    call._prediction,
                    call._cuda,
                    call.extras,
                )
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
        "model": model,
        "version": version,
        "environment": environment,
        "tags": tags or {},
        "device": device,
        "batch_size": batch_size,
        "capture_inputs": capture_inputs,
        "capture_outputs": capture_outputs,
        "prediction_arg": prediction_id,
        "cuda": cuda,
    }
    instrument = Monitor(spec_kwargs)
    if fn is not None:
        return instrument(fn)
    return instrument


def _wrap_module(module: Any, **options: Any) -> Any:
    """`monitor.wrap(module, model=..., version=...)`: monitor a torch module's forward."""
    return monitor(**options).wrap(module)


monitor.wrap = _wrap_module  # type: ignore[attr-defined]
