#!/usr/bin/env python3
"""A stand-in "mail service": the outside system of the async-email example.

It watches the outbox directory the async-email activity writes to, "sends"
each email (prints it), and completes the activity over Sluice's gRPC API
with the task token the activity handed out. It uses the Python stubs of
clients/python/sluice_grpc.py (needs `pip install grpcio grpcio-tools`).

    python3 examples/async-email/mail_service.py --outbox examples/outbox
"""

import argparse
import json
import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--outbox", required=True, help="the directory granted to the activity as /outbox")
    p.add_argument("--address", default=os.environ.get("SLUICE_ADDRESS", "127.0.0.1:7233").removeprefix("http://"))
    p.add_argument("--token", default=os.environ.get("SLUICE_TOKEN"), help="bearer token, if the server needs one")
    p.add_argument("--count", type=int, default=0, help="exit after sending this many emails (0 = run forever)")
    p.add_argument("--timeout", type=float, default=60, help="with --count: give up after this many seconds")
    args = p.parse_args()

    import grpc
    from sluice_grpc import channel, json_payload, metadata, pb, rpc

    completion = rpc.CompletionServiceStub(channel(args.address))
    auth = metadata(args.token)

    sent = 0
    deadline = time.time() + args.timeout
    while args.count == 0 or sent < args.count:
        if args.count and time.time() > deadline:
            sys.exit(f"gave up after {args.timeout}s with {sent} of {args.count} emails sent")
        for name in sorted(os.listdir(args.outbox)):
            if not name.endswith(".json"):
                continue
            path = os.path.join(args.outbox, name)
            with open(path) as f:
                message = json.load(f)
            email = message["email"]
            print(f"sending to {email['to']}: {email['subject']}", flush=True)
            result = {"message_id": str(uuid.uuid4()), "to": email["to"]}
            try:
                completion.CompleteActivity(
                    pb.CompleteActivityRequest(
                        task_token=message["task_token"],
                        result=json_payload(result),
                    ),
                    metadata=auth,
                )
            except grpc.RpcError as e:
                # A stale token (the attempt timed out and was retried) is
                # not ours to complete any more; drop the message.
                print(f"could not complete {message['activity_id']}: {e.code().name}: {e.details()}", flush=True)
            os.remove(path)
            sent += 1
        time.sleep(0.05)


if __name__ == "__main__":
    main()
