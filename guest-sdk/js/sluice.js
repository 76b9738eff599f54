// Write Sluice activities in JavaScript.
//
// An activity is the default export of `app.js`: a function taking the
// attempt's Context and the decoded JSON input, returning a JSON-serialisable
// result:
//
//   import { ActivityError } from "sluice";
//
//   export default function hello(ctx, input) {
//     if (!input.name?.trim()) {
//       throw new ActivityError("name must not be empty", { type: "EmptyName", nonRetryable: true });
//     }
//     ctx.progress(100, "greeted");
//     return { greeting: `Hello, ${input.name}!` };
//   }
//
// Returning completes the attempt; throwing ActivityError fails it (retried
// unless nonRetryable); any other error is a retryable failure typed by its
// name; throwing Pending hands the work off for async completion;
// ctx.heartbeat() throws Cancelled when cancellation was requested, and
// Paused when an operator paused the execution.
// Build with `sluice build <folder>`.

import * as host from "sluice:activity/context@0.2.0";

/** Encoding tag of JSON payloads, the default everywhere. */
export const JSON_ENCODING = "json/plain";
/** Error type of an input that is not JSON (not retryable). */
export const INVALID_INPUT = "InvalidInput";
/** Error type of a result or heartbeat details that cannot be encoded. */
export const ENCODING_ERROR = "EncodingError";

/** A failure the activity reports on purpose. */
export class ActivityError extends Error {
  /**
   * @param {string} message
   * @param {{type?: string, nonRetryable?: boolean, details?: any, nextRetryDelayMs?: number}} [options]
   */
  constructor(message, options = {}) {
    super(message);
    this.name = "ActivityError";
    this.type = options.type ?? "";
    this.nonRetryable = options.nonRetryable ?? false;
    this.details = options.details;
    this.nextRetryDelayMs = options.nextRetryDelayMs;
  }
}

/** Cancellation was requested; thrown by ctx.heartbeat(). Let it propagate
 * (or throw it yourself, optionally with details) to acknowledge it. */
export class Cancelled extends Error {
  constructor(details) {
    super("cancelled");
    this.name = "Cancelled";
    this.details = details;
  }
}

/** The execution was paused by an operator; thrown by ctx.heartbeat(). Let
 * it propagate: the attempt stops (error type "Paused", not counted against
 * the retry policy) and the next one runs once the execution is unpaused. */
export class Paused extends ActivityError {
  constructor() {
    super("the execution was paused; the attempt stopped and resumes when unpaused", { type: "Paused" });
    this.name = "Paused";
  }
}

/** Throw to end the attempt without a result: another system completes it
 * later over gRPC, by task token or activity id. */
export class Pending extends Error {
  constructor() {
    super("pending");
    this.name = "Pending";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encode(value, what) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new ActivityError(`cannot encode ${what} as JSON: ${e.message}`, { type: ENCODING_ERROR, nonRetryable: true });
  }
  if (text === undefined) {
    throw new ActivityError(`cannot encode ${what} as JSON: ${typeof value} has no JSON form`, { type: ENCODING_ERROR, nonRetryable: true });
  }
  return { encoding: JSON_ENCODING, data: encoder.encode(text) };
}

function decode(payload, what) {
  if (payload.encoding !== JSON_ENCODING) {
    throw new ActivityError(`${what} has encoding "${payload.encoding}", expected "${JSON_ENCODING}"`, { type: INVALID_INPUT, nonRetryable: true });
  }
  if (payload.data.length === 0) return null;
  try {
    return JSON.parse(decoder.decode(payload.data));
  } catch (e) {
    throw new ActivityError(`cannot decode ${what}: ${e.message}`, { type: INVALID_INPUT, nonRetryable: true });
  }
}

// u64 values arrive as BigInt; milliseconds fit a Number exactly.
const toNumber = (v) => (v === undefined ? undefined : Number(v));

/** The attempt's view of the host, passed to the activity function. */
export class Context {
  /** Ids, type, queue, attempt number and deadlines (ms since the epoch). */
  info() {
    const i = host.info();
    return {
      activityId: i.activityId,
      runId: i.runId,
      activityType: i.activityType,
      taskQueue: i.taskQueue,
      attempt: i.attempt,
      scheduledTimeMs: toNumber(i.scheduledTimeMs),
      currentAttemptScheduledTimeMs: toNumber(i.currentAttemptScheduledTimeMs),
      startedTimeMs: toNumber(i.startedTimeMs),
      scheduleToCloseDeadlineMs: toNumber(i.scheduleToCloseDeadlineMs),
      startToCloseDeadlineMs: toNumber(i.startToCloseDeadlineMs),
      heartbeatTimeoutMs: toNumber(i.heartbeatTimeoutMs),
      hostTaskQueue: i.hostTaskQueue,
    };
  }

  /** Records a heartbeat; `details` (any JSON value) are what a retried
   * attempt reads back with lastHeartbeat(); undefined keeps the previous
   * ones. Throws Cancelled if cancellation was requested, Paused if the
   * execution was paused. */
  heartbeat(details) {
    const payload = details === undefined ? undefined : encode(details, "heartbeat details");
    const answer = host.heartbeat(payload);
    if (answer.cancelRequested) throw new Cancelled();
    if (answer.paused) throw new Paused();
  }

  /** Details of the latest heartbeat of this execution, from an earlier
   * attempt (or earlier in this one); null on a fresh start. */
  lastHeartbeat() {
    const payload = host.lastHeartbeatDetails();
    return payload === undefined ? null : decode(payload, "last heartbeat details");
  }

  /** Human-facing progress (0..100 and a message); not a heartbeat. */
  progress(percent, message) {
    host.progress(percent ?? undefined, message);
  }

  /** The signed token naming this attempt, for async completion. */
  taskToken() {
    return host.taskToken();
  }

  /** A structured log record; level is "trace" | "debug" | "info" | "warn" | "error". */
  log(level, message, fields = {}) {
    host.log(level, message, Object.entries(fields).map(([k, v]) => [k, String(v)]));
  }

  /** Waits `ms` milliseconds. `run` is synchronous, so this spins; the host
   * still interrupts the attempt at its deadline. */
  sleep(ms) {
    const until = Date.now() + ms;
    while (Date.now() < until) { /* spin */ }
  }
}

function failed(err) {
  let details;
  if (err.details !== undefined) {
    try {
      details = encode(err.details, "error details");
    } catch {
      details = encode("details could not be encoded as JSON", "error details");
    }
  }
  const delay = err.nextRetryDelayMs;
  return {
    tag: "failed",
    val: {
      message: err.message,
      errorType: err.type,
      nonRetryable: err.nonRetryable,
      details,
      nextRetryDelayMs: delay === undefined ? undefined : BigInt(Math.max(0, Math.round(delay))),
    },
  };
}

function outcomeOf(err) {
  if (err instanceof ActivityError) return failed(err);
  if (err instanceof Pending) return { tag: "pending" };
  if (err instanceof Cancelled) {
    try {
      return { tag: "cancelled", val: err.details === undefined ? undefined : encode(err.details, "cancellation details") };
    } catch (e) {
      return failed(e);
    }
  }
  // Anything else is a retryable failure, as a crash would be.
  const type = err?.name ?? typeof err;
  const message = err?.message ?? String(err);
  return failed(new ActivityError(message || type, { type }));
}

/** Turns `fn(ctx, input)` into the component's `activity` export. Used by
 * the entry module `sluice build` generates. */
export function exportActivity(fn) {
  if (typeof fn !== "function") {
    throw new Error("app.js must `export default` the activity function");
  }
  return {
    run(input) {
      try {
        const result = fn(new Context(), decode(input, "activity input"));
        if (result instanceof Promise) {
          throw new ActivityError("the activity returned a Promise; activities run synchronously", { type: "AsyncActivity", nonRetryable: true });
        }
        return { tag: "completed", val: encode(result === undefined ? null : result, "the result") };
      } catch (err) {
        return outcomeOf(err);
      }
    },
  };
}
