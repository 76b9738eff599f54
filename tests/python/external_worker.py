#!/usr/bin/env python3
"""An external Sluice worker in Python (grpcio): long-polls a task queue and
runs the `shout` activity itself, beside the host's WASM workers.

shout: input {"text": "..."} -> {"shout": "...!", "attempt": n}.
       input {"text": "...", "fail": true} -> non-retryable application error.

    python3 tests/python/external_worker.py --address 127.0.0.1:7233 --queue py --count 3
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
from sluice_grpc import channel, json_payload, metadata, pb, rpc  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--address", default=None)
    p.add_argument("--queue", required=True)
    p.add_argument("--count", type=int, required=True, help="tasks to handle before exiting")
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()

    ch = channel(args.address)
    worker = rpc.WorkerServiceStub(ch)
    completion = rpc.CompletionServiceStub(ch)
    auth = metadata()
    handled = 0
    deadline = time.time() + args.timeout
    while handled < args.count:
        if time.time() > deadline:
            sys.exit(f"timed out after handling {handled} of {args.count} tasks")
        req = pb.PollActivityTaskRequest(task_queue=args.queue, identity=f"py-worker-{os.getpid()}", activity_types=["shout"])
        req.wait.seconds = 1
        resp = worker.PollActivityTask(req, metadata=auth)
        if not resp.HasField("task"):
            continue
        task = resp.task
        data = json.loads(task.input.data or b"null")
        hb = completion.RecordHeartbeat(pb.RecordHeartbeatRequest(task_token=task.task_token, details=json_payload({"step": 1})), metadata=auth)
        if hb.cancel_requested:
            completion.ReportActivityCancelled(pb.ReportActivityCancelledRequest(task_token=task.task_token), metadata=auth)
        elif data.get("fail"):
            completion.FailActivity(
                pb.FailActivityRequest(
                    task_token=task.task_token,
                    failure=pb.Failure(error_type="Refused", message="asked to fail", non_retryable=True),
                ),
                metadata=auth,
            )
        else:
            result = {"shout": data["text"].upper() + "!", "attempt": task.attempt}
            completion.CompleteActivity(pb.CompleteActivityRequest(task_token=task.task_token, result=json_payload(result)), metadata=auth)
        print(f"handled {task.activity_id}", flush=True)
        handled += 1


if __name__ == "__main__":
    main()
