"""Write Sluice activities in Python.

An activity is one function, marked with ``@activity``, that takes the
attempt's :class:`Context` and the decoded JSON input and returns a
JSON-serialisable result::

    import sluice

    @sluice.activity
    def hello(ctx: sluice.Context, input: dict) -> dict:
        if not input.get("name", "").strip():
            raise sluice.ActivityError("name must not be empty", type="EmptyName",
                                       non_retryable=True)
        ctx.progress(100.0, "greeted")
        return {"greeting": f"Hello, {input['name']}!"}

How the function ends decides the attempt's outcome:

- it returns a value: *completed*, with the value encoded as JSON;
- it raises :class:`ActivityError`: *failed*; retried by the retry policy
  unless ``non_retryable=True`` (any other exception is a retryable failure
  whose type is the exception's class name);
- it raises :class:`Pending`: the work was handed off and will be completed
  later over gRPC with :meth:`Context.task_token`;
- :meth:`Context.heartbeat` raises :class:`Paused` when an operator paused
  the execution, and :class:`Cancelled` when cancellation was
  requested; letting it propagate acknowledges the cancellation.

Build with ``sluice build <folder>``; the folder holds ``app.py``.
"""

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from wit_world.imports import context as _host

try:  # componentize-py renames our `types` when the world has another (wasi:http's)
    from wit_world.imports import sluice_activity_types as _types
except ImportError:
    from wit_world.imports import types as _types

__all__ = [
    "activity", "Context", "Info", "ActivityError", "Cancelled", "Paused", "Pending",
    "JSON", "INVALID_INPUT", "ENCODING_ERROR",
]

JSON = "json/plain"
"""Encoding tag of JSON payloads, the default everywhere."""

INVALID_INPUT = "InvalidInput"
"""Error type of an input that is not JSON (not retryable)."""

ENCODING_ERROR = "EncodingError"
"""Error type of a result or heartbeat details that cannot be encoded."""

LogLevel = _types.LogLevel


class ActivityError(Exception):
    """A failure the activity reports on purpose.

    ``type`` names the kind of failure (retry policies can list types that
    are not retried); ``non_retryable=True`` fails the execution at once;
    ``details`` (any JSON value) travel with the failure;
    ``next_retry_delay`` (seconds) overrides the policy's backoff once.
    """

    def __init__(self, message: str, type: str = "", *,
                 non_retryable: bool = False, details: Any = None,
                 next_retry_delay: Optional[float] = None):
        super().__init__(message)
        self.message = message
        self.type = type
        self.non_retryable = non_retryable
        self.details = details
        self.next_retry_delay = next_retry_delay


class Cancelled(Exception):
    """Cancellation of the execution was requested. Raised by
    :meth:`Context.heartbeat`; let it propagate (or raise it yourself,
    optionally with details) to acknowledge the cancellation."""

    def __init__(self, details: Any = None):
        super().__init__("cancelled")
        self.details = details


class Paused(ActivityError):
    """The execution was paused by an operator. Raised by
    :meth:`Context.heartbeat`; let it propagate: the attempt stops, does not
    count against the retry policy, and the next attempt runs (from the
    heartbeat details) once the execution is unpaused."""

    def __init__(self):
        super().__init__("the execution was paused; the attempt stopped and resumes when unpaused", "Paused")


class Pending(Exception):
    """Raise to end the attempt without a result: another system completes
    it later over gRPC, by task token or activity id."""


@dataclass
class Info:
    """The attempt's ids, type, queue, attempt number and deadlines
    (milliseconds since the Unix epoch)."""
    activity_id: str
    run_id: str
    activity_type: str
    task_queue: str
    attempt: int
    scheduled_time_ms: int
    current_attempt_scheduled_time_ms: int
    started_time_ms: int
    schedule_to_close_deadline_ms: Optional[int]
    start_to_close_deadline_ms: Optional[int]
    heartbeat_timeout_ms: Optional[int]
    host_task_queue: str


class Context:
    """The attempt's view of the host. Passed to the activity function."""

    def info(self) -> Info:
        i = _host.info()
        return Info(**vars(i))

    def heartbeat(self, details: Any = None) -> None:
        """Records a heartbeat. ``details`` (any JSON value, e.g. the
        position reached) are what a retried attempt reads back with
        :meth:`last_heartbeat`; ``None`` keeps the previous details.
        Raises :class:`Cancelled` if cancellation was requested, and
        :class:`Paused` if an operator paused the execution."""
        payload = None if details is None else _encode(details, "heartbeat details")
        answer = _host.heartbeat(payload)
        if answer.cancel_requested:
            raise Cancelled()
        if answer.paused:
            raise Paused()

    def last_heartbeat(self) -> Any:
        """The details of the latest heartbeat of this execution, recorded
        by an earlier attempt (or earlier in this one); ``None`` on a fresh
        start."""
        payload = _host.last_heartbeat_details()
        return None if payload is None else _decode(payload, "last heartbeat details")

    def progress(self, percent: Optional[float], message: str) -> None:
        """Human-facing progress (0..100 and a message); not a heartbeat."""
        _host.progress(None if percent is None else float(percent), message)

    def task_token(self) -> str:
        """The signed token naming this attempt, for async completion:
        hand it to another system, then raise :class:`Pending`."""
        return _host.task_token()

    def log(self, level: "LogLevel", message: str, **fields: Any) -> None:
        """A structured log record in the execution's log."""
        _host.log(level, message, [(k, str(v)) for k, v in fields.items()])

    def sleep(self, seconds: float) -> None:
        """Sleeps; the host may still interrupt the attempt at its deadline."""
        time.sleep(seconds)


_registered: Optional[Callable[[Context, Any], Any]] = None


def activity(fn: Callable[[Context, Any], Any]) -> Callable[[Context, Any], Any]:
    """Marks ``fn(ctx, input)`` as the component's activity (one per component)."""
    global _registered
    if _registered is not None and _registered is not fn:
        raise RuntimeError(
            f"only one @sluice.activity per component: {_registered.__name__} and {fn.__name__}")
    _registered = fn
    return fn


def _encode(value: Any, what: str) -> _types.Payload:
    try:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ActivityError(f"cannot encode {what} as JSON: {e}", ENCODING_ERROR,
                            non_retryable=True) from None
    return _types.Payload(JSON, data.encode())


def _decode(payload: _types.Payload, what: str) -> Any:
    if payload.encoding != JSON:
        raise ActivityError(f'{what} has encoding "{payload.encoding}", expected "{JSON}"',
                            INVALID_INPUT, non_retryable=True)
    if not payload.data:
        return None
    try:
        return json.loads(payload.data)
    except ValueError as e:
        raise ActivityError(f"cannot decode {what}: {e}", INVALID_INPUT,
                            non_retryable=True) from None


def _failed(err: ActivityError) -> _types.Outcome:
    details = None
    if err.details is not None:
        try:
            details = _encode(err.details, "error details")
        except ActivityError:
            details = _encode("details could not be encoded as JSON", "error details")
    delay = None if err.next_retry_delay is None else max(0, round(err.next_retry_delay * 1000))
    return _types.Outcome_Failed(_types.ApplicationError(
        err.message, err.type, err.non_retryable, details, delay))


def _run(input: _types.Payload) -> _types.Outcome:
    if _registered is None:
        return _failed(ActivityError("the component has no @sluice.activity function",
                                     "NoActivity", non_retryable=True))
    try:
        result = _registered(Context(), _decode(input, "activity input"))
        return _types.Outcome_Completed(_encode(result, "the result"))
    except ActivityError as e:
        return _failed(e)
    except Cancelled as e:
        try:
            details = None if e.details is None else _encode(e.details, "cancellation details")
        except ActivityError as enc:
            return _failed(enc)
        return _types.Outcome_Cancelled(details)
    except Pending:
        return _types.Outcome_Pending()
    except Exception as e:  # any other exception: a retryable failure, like a crash
        return _failed(ActivityError(str(e) or type(e).__name__, type(e).__name__))
