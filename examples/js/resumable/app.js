// Counts through a range, heartbeating its position, and resumes from the
// last heartbeat when an attempt is retried.
//
// Input:  {"from": 0, "to": 10, "step_ms": 0, "fail_at": null}
// Output: {"started_at": N, "counted": M, "sum": S}, where started_at is where
// this attempt began (the last heartbeat's "next", or "from") and sum is the
// sum of the numbers this attempt counted. With "fail_at": K, attempt 1 fails
// with a retryable Interrupted error on reaching K; the next attempt picks up
// at K.
import { ActivityError } from "sluice";

export default function count(ctx, { from = 0, to, step_ms = 0, fail_at = null }) {
  const last = ctx.lastHeartbeat();
  const start = last !== null ? last.next : from;
  const total = Math.max(to - from, 1);
  let sum = 0;
  for (let n = start; n < to; n++) {
    if (n === fail_at && ctx.info().attempt === 1) {
      throw new ActivityError(`stopped at ${n}`, { type: "Interrupted" });
    }
    sum += n;
    ctx.heartbeat({ next: n + 1 }); // throws Cancelled if cancellation was requested
    ctx.progress(((n + 1 - from) * 100) / total, `counted ${n + 1}`);
    if (step_ms > 0) ctx.sleep(step_ms);
  }
  return { started_at: start, counted: Math.max(to - start, 0), sum };
}
