"""The official `temporalio` Python SDK against Sluice's Temporal frontend.

Usage: python3 sdk_test.py ADDRESS SLUICE_BIN [--auth]

Code written for a Temporal server, with only the address changed. Each
scenario asserts what the SDK sees; the first failure ends the run with a
traceback (the Rust test prints it). WASM types: `hello` (greets) and
`sleepy` (the misbehaving guest: sleeps, waits for cancellation, ...);
queue `py` is served by the Python worker below and by nothing else.
"""

import asyncio
import json
import os
import sys
import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.client import (
    ActivityExecutionStatus,
    ActivityFailureError,
    ActivityOptionsKeys,
    ActivityOptionsUpdate,
    Client,
    PendingActivityState,
)
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityAlreadyStartedError, ApplicationError, CancelledError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

ADDRESS, SLUICE = sys.argv[1], sys.argv[2]


def new_id(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def sluice(*args):
    """Runs the sluice CLI against the same server (without blocking the
    worker, which runs in this process)."""
    proc = await asyncio.create_subprocess_exec(
        SLUICE, *args, "--address", f"http://{ADDRESS}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"sluice {args}: {err.decode()}"
    return out.decode()


async def wasm_types_from_a_temporal_client(client):
    # A WASM guest's output comes back as a Python activity's would.
    handle = await client.start_activity(
        "hello", {"name": "temporal"}, id=new_id("hello"), task_queue="default",
        start_to_close_timeout=timedelta(seconds=10),
    )
    assert await handle.result() == {"greeting": "Hello, temporal!"}
    desc = await handle.describe()
    assert desc.status == ActivityExecutionStatus.COMPLETED, desc.status
    assert desc.activity_type == "hello" and desc.task_queue == "default", desc
    listed = [a async for a in client.list_activities(f"ActivityId = '{handle.id}'")]
    assert [a.activity_id for a in listed] == [handle.id], listed
    count = await client.count_activities("ActivityType = 'hello' AND ExecutionStatus = 'Completed'")
    assert count.count >= 1, count

    # Cancel a long one: the guest learns it at its next heartbeat.
    long = await client.start_activity(
        "sleepy", {"do": "wait-cancel", "ms": 50}, id=new_id("long"), task_queue="default",
        start_to_close_timeout=timedelta(seconds=30), heartbeat_timeout=timedelta(seconds=5),
    )
    await asyncio.sleep(0.5)
    await long.cancel(reason="enough")
    try:
        await long.result()
        raise AssertionError("a cancelled activity has no result")
    except ActivityFailureError as e:
        assert isinstance(e.cause, CancelledError) and str(e.cause) == "Activity canceled", repr(e.cause)
    assert (await long.describe()).status == ActivityExecutionStatus.CANCELED

    # Terminate another.
    other = await client.start_activity(
        "sleepy", {"do": "ignore-cancel", "ms": 50}, id=new_id("term"), task_queue="default",
        start_to_close_timeout=timedelta(seconds=30),
    )
    await asyncio.sleep(0.3)
    await other.terminate(reason="operator said so")
    assert (await other.describe()).status == ActivityExecutionStatus.TERMINATED
    # Operator commands: pause, update the options, unpause.
    parked = await client.start_activity(
        "hello", {"name": "later"}, id=new_id("parked"), task_queue="nobody-serves-this",
        start_to_close_timeout=timedelta(seconds=10),
    )
    await parked.pause(reason="not now")
    assert (await parked.describe()).run_state == PendingActivityState.PAUSED
    options = await parked.update_options([ActivityOptionsUpdate(ActivityOptionsKeys.task_queue, "default")])
    assert options.task_queue == "default", options
    await parked.unpause()
    assert await parked.result() == {"greeting": "Hello, later!"}
    print("wasm types from a temporal client: ok")


# The Python worker's activities.
attempts = {}


@activity.defn(name="py-resumable")
async def resumable(upto: int) -> dict:
    info = activity.info()
    start = activity.info().heartbeat_details[0] if info.heartbeat_details else 0
    attempts[info.activity_id] = attempts.get(info.activity_id, 0) + 1
    for n in range(start, upto):
        activity.heartbeat(n + 1)
        await asyncio.sleep(0.05)
        if n == 2 and info.attempt == 1:
            raise ApplicationError("stopped at 3", type="Interrupted")
    return {"resumed_from": start, "attempt": info.attempt}


@activity.defn(name="py-fatal")
async def fatal() -> None:
    raise ApplicationError("the card was declined", type="CardDeclined", non_retryable=True)


@activity.defn(name="py-flaky")
async def flaky() -> str:
    if activity.info().attempt < 3:
        raise ApplicationError("try again", type="Flaky")
    return "third time lucky"


@activity.defn(name="py-waits")
async def waits() -> str:
    while True:
        activity.heartbeat()
        await asyncio.sleep(0.1)


@activity.defn(name="py-async")
async def hands_off() -> str:
    tokens.append(activity.info().task_token)
    activity.raise_complete_async()


tokens = []


async def a_temporal_worker_serves_a_sluice_queue(client):
    async with Worker(client, task_queue="py", activities=[resumable, fatal, flaky, waits, hands_off]):
        # Started with the sluice CLI, run by the Python worker; its
        # heartbeats resume the next attempt.
        out = await sluice("start", "py-resumable", "--queue", "py", "--input", "5", "--start-to-close", "30s",
                     "--retry-initial-interval", "100ms", "--wait", "--json")
        result = json.loads(out)
        assert result["result"] == {"resumed_from": 3, "attempt": 2}, result

        # Started with the Temporal client.
        retry = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)
        flaky_h = await client.start_activity("py-flaky", id=new_id("flaky"), task_queue="py",
                                              start_to_close_timeout=timedelta(seconds=10), retry_policy=retry)
        assert await flaky_h.result() == "third time lucky"
        assert (await flaky_h.describe()).attempt == 3

        fatal_h = await client.start_activity("py-fatal", id=new_id("fatal"), task_queue="py",
                                              start_to_close_timeout=timedelta(seconds=10), retry_policy=retry)
        try:
            await fatal_h.result()
            raise AssertionError("a non-retryable failure ends the execution")
        except ActivityFailureError as e:
            assert isinstance(e.cause, ApplicationError) and e.cause.type == "CardDeclined", repr(e.cause)
            assert e.cause.non_retryable and e.cause.message == "the card was declined", e.cause
        desc = await fatal_h.describe()
        assert desc.status == ActivityExecutionStatus.FAILED and desc.attempt == 1, desc

        # A cancel reaches the worker through its heartbeat.
        waiting = await client.start_activity("py-waits", id=new_id("waits"), task_queue="py",
                                              start_to_close_timeout=timedelta(seconds=30),
                                              heartbeat_timeout=timedelta(seconds=5))
        await asyncio.sleep(0.5)
        await waiting.cancel()
        for _ in range(100):
            if (await waiting.describe()).status == ActivityExecutionStatus.CANCELED:
                break
            await asyncio.sleep(0.1)
        assert (await waiting.describe()).status == ActivityExecutionStatus.CANCELED

        # Async completion: by task token, and by id.
        by_token = await client.start_activity("py-async", id=new_id("bytoken"), task_queue="py",
                                               start_to_close_timeout=timedelta(seconds=30))
        while not tokens:
            await asyncio.sleep(0.05)
        await client.get_async_activity_handle(task_token=tokens.pop()).complete("done by token")
        assert await by_token.result() == "done by token"
        by_id = await client.start_activity("py-async", id=new_id("byid"), task_queue="py",
                                            start_to_close_timeout=timedelta(seconds=30))
        while not tokens:
            await asyncio.sleep(0.05)
        tokens.pop()
        await client.get_async_activity_handle(activity_id=by_id.id).heartbeat("still going")
        await client.get_async_activity_handle(activity_id=by_id.id).complete("done by id")
        assert await by_id.result() == "done by id"
    print("a temporal worker serves a sluice queue: ok")


async def errors_are_the_sdks_own(client):
    ident = new_id("dup")
    await client.start_activity("sleepy", {"do": "sleep", "ms": 2000}, id=ident, task_queue="default",
                                start_to_close_timeout=timedelta(seconds=10))
    try:
        await client.start_activity("sleepy", {"do": "sleep", "ms": 1}, id=ident, task_queue="default",
                                    start_to_close_timeout=timedelta(seconds=10))
        raise AssertionError("an id conflict is refused")
    except ActivityAlreadyStartedError:
        pass
    try:
        await client.get_activity_handle("no-such-activity").describe()
        raise AssertionError("an unknown id is NOT_FOUND")
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND and "activity not found for ID: no-such-activity" in e.message, e
    try:
        await client.start_activity("hello", id="x" * 300, task_queue="default",
                                    start_to_close_timeout=timedelta(seconds=10))
        raise AssertionError("an over-long id is refused")
    except RPCError as e:
        assert e.status == RPCStatusCode.INVALID_ARGUMENT, e
        assert e.message == "activity_id is 300 bytes, over the limit of 256", e.message
    # Workflows are not here: the SDK gets UNIMPLEMENTED and copes.
    try:
        await client.start_workflow("SomeWorkflow", id=new_id("wf"), task_queue="default")
        raise AssertionError("workflows are not served")
    except RPCError as e:
        assert e.status == RPCStatusCode.UNIMPLEMENTED, e
    other = await Client.connect(ADDRESS, namespace="nope")
    try:
        await other.get_activity_handle("x").describe()
        raise AssertionError("an unknown namespace is NOT_FOUND")
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND and "Namespace nope is not found." in e.message, e
    # Starts the SDK would refuse itself, sent raw: the server's own texts.
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.common.v1 import ActivityType, Payload, Payloads
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import (
        StartActivityExecutionRequest,
        UpdateActivityExecutionOptionsRequest,
    )

    async def refused(req, rpc="start_activity_execution"):
        try:
            await getattr(client.workflow_service, rpc)(req)
            raise AssertionError(f"{req} was accepted")
        except RPCError as e:
            assert e.status == RPCStatusCode.INVALID_ARGUMENT, e
            return e.message

    base = dict(namespace="default", activity_id="raw-1", task_queue=TaskQueue(name="elsewhere"),
                start_to_close_timeout=Duration(seconds=10))
    assert await refused(StartActivityExecutionRequest(**base)) == "activityType is not set"
    typed = dict(base, activity_type=ActivityType(name="unknown-type"))
    assert await refused(StartActivityExecutionRequest(**dict(typed, task_queue=None))) == "missing task queue name"
    untimed = dict(typed, start_to_close_timeout=None)
    assert await refused(StartActivityExecutionRequest(**untimed)) == (
        "a valid StartToCloseTimeout or ScheduleToCloseTimeout must be set on the activity. "
        "ActivityId=raw-1 ActivityType=unknown-type")
    delayed = dict(typed, start_delay=Duration(seconds=5))
    assert await refused(StartActivityExecutionRequest(**delayed)) == "start_delay is not supported by Sluice"
    proto = Payloads(payloads=[Payload(metadata={"encoding": b"binary/protobuf"}, data=b"\x08\x01")])
    message = await refused(StartActivityExecutionRequest(**dict(typed, input=proto)))
    assert message.startswith("input: binary/protobuf payloads are not supported"), message
    no_mask = UpdateActivityExecutionOptionsRequest(namespace="default", activity_id="raw-1")
    assert await refused(no_mask, "update_activity_execution_options") == "UpdateMask is not set on request."

    # The raw service: reset and delete, which the handle does not wrap.
    from temporalio.api.workflowservice.v1 import DeleteActivityExecutionRequest, ResetActivityExecutionRequest
    parked = await client.start_activity("hello", {"name": "x"}, id=new_id("raw"), task_queue="nobody-serves-this",
                                         start_to_close_timeout=timedelta(seconds=10))
    await client.workflow_service.reset_activity_execution(
        ResetActivityExecutionRequest(namespace="default", activity_id=parked.id, reset_heartbeat=True))
    await parked.terminate(reason="done")
    await client.workflow_service.delete_activity_execution(
        DeleteActivityExecutionRequest(namespace="default", activity_id=parked.id))
    try:
        await parked.describe()
        raise AssertionError("a deleted activity is gone")
    except RPCError as e:
        assert e.status == RPCStatusCode.NOT_FOUND, e
    print("errors are the sdk's own: ok")


async def bearer_tokens_guard_the_temporal_service(address):
    """With `--auth ADDRESS`: a server that requires the token `secret`."""
    client = await Client.connect(address, api_key="secret", tls=False)
    h = await client.start_activity("hello", {"name": "auth"}, id=new_id("auth"), task_queue="default",
                                    start_to_close_timeout=timedelta(seconds=10))
    assert await h.result() == {"greeting": "Hello, auth!"}
    try:
        await Client.connect(address)
        raise AssertionError("no token, no service")
    except Exception as e:
        assert "Unauthenticated" in str(e) or "UNAUTHENTICATED" in str(e), e
    print("bearer tokens guard the temporal service: ok")


async def main():
    if len(sys.argv) > 3 and sys.argv[3] == "--auth":
        await bearer_tokens_guard_the_temporal_service(ADDRESS)
        sys.stdout.flush()
        os._exit(0)
    client = await Client.connect(ADDRESS)
    await wasm_types_from_a_temporal_client(client)
    await a_temporal_worker_serves_a_sluice_queue(client)
    await errors_are_the_sdks_own(client)
    print("all ok")
    # The SDK's native runtime sometimes aborts while asyncio and the
    # interpreter tear it down (after everything here passed): leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


asyncio.run(main())
