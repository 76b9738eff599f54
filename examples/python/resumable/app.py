"""Counts through a range, heartbeating its position, and resumes from the
last heartbeat when an attempt is retried.

Input:  {"from": 0, "to": 10, "step_ms": 0, "fail_at": null}
Output: {"started_at": N, "counted": M, "sum": S}, where started_at is where
this attempt began (the last heartbeat's "next", or "from") and sum is the
sum of the numbers this attempt counted. With "fail_at": K, attempt 1 fails
with a retryable Interrupted error on reaching K; the next attempt picks up
at K.
"""

import sluice


@sluice.activity
def count(ctx: sluice.Context, input: dict) -> dict:
    start_from = input.get("from", 0)
    to = input["to"]
    step_ms = input.get("step_ms", 0)
    fail_at = input.get("fail_at")

    last = ctx.last_heartbeat()
    start = last["next"] if last is not None else start_from
    total = max(to - start_from, 1)
    total_sum = 0
    for n in range(start, to):
        if n == fail_at and ctx.info().attempt == 1:
            raise sluice.ActivityError(f"stopped at {n}", "Interrupted")
        total_sum += n
        ctx.heartbeat({"next": n + 1})  # raises sluice.Cancelled if cancellation was requested
        ctx.progress((n + 1 - start_from) * 100.0 / total, f"counted {n + 1}")
        if step_ms > 0:
            ctx.sleep(step_ms / 1000)
    return {"started_at": start, "counted": max(to - start, 0), "sum": total_sum}
