#!/usr/bin/env python3
"""Starts N `hello` executions with one helper call (StartActivities) and
follows their outcomes on one stream (WatchActivities); prints one line per
close: `<activity id> <status> <result JSON>`, then the refused count.

    python3 tests/python/many.py --count 50
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
from sluice_grpc import channel, follow, json_payload, pb, rpc, start_many  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--address", default=None)
    p.add_argument("--count", type=int, required=True)
    args = p.parse_args()

    stub = rpc.ActivityServiceStub(channel(args.address))
    requests = [
        pb.StartActivityRequest(activity_type="hello", activity_id=f"py-{i}", input=json_payload({"name": f"n{i}"}))
        for i in range(args.count)
    ]
    # One more: refused (no type), without failing the others.
    requests.append(pb.StartActivityRequest(activity_id="py-bad", input=json_payload(None)))
    started, refused = [], []
    for outcome in start_many(stub, requests, per_request=20):
        if outcome.HasField("started"):
            started.append(outcome.started.activity_id)
        else:
            refused.append(outcome.error.message)
    for e in follow(stub, started):
        status = pb.ActivityStatus.Name(e.status)
        print(e.activity_id, status, json.dumps(json.loads(e.result.data), separators=(",", ":")))
    print("refused", len(refused), *refused)


if __name__ == "__main__":
    main()
