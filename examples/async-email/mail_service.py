#!/usr/bin/env python3
"""A stand-in "mail service": the outside system of the async-email example.

It watches the outbox directory the async-email activity writes to, "sends"
each email (prints it), and completes the activity over Sluice's gRPC API
with the task token the activity handed out. Python stubs are generated
from host/proto at start-up (needs `pip install grpcio grpcio-tools`).

    python3 examples/async-email/mail_service.py --outbox examples/outbox
"""

import argparse
import json
import os
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "host", "proto")


def load_stubs():
    """Compiles sluice.proto into a temporary package and imports it."""
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp(prefix="sluice-stubs-")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main([
        "protoc", f"-I{PROTO_DIR}", f"-I{well_known}",
        f"--python_out={out}", f"--grpc_python_out={out}",
        os.path.join(PROTO_DIR, "sluice", "v1", "sluice.proto"),
    ])
    if rc != 0:
        sys.exit(f"cannot compile {PROTO_DIR}/sluice/v1/sluice.proto (protoc exit {rc})")
    sys.path.insert(0, out)
    from sluice.v1 import sluice_pb2, sluice_pb2_grpc  # noqa: E402
    return sluice_pb2, sluice_pb2_grpc


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--outbox", required=True, help="the directory granted to the activity as /outbox")
    p.add_argument("--address", default=os.environ.get("SLUICE_ADDRESS", "127.0.0.1:7233").removeprefix("http://"))
    p.add_argument("--token", default=os.environ.get("SLUICE_TOKEN"), help="bearer token, if the server needs one")
    p.add_argument("--count", type=int, default=0, help="exit after sending this many emails (0 = run forever)")
    p.add_argument("--timeout", type=float, default=60, help="with --count: give up after this many seconds")
    args = p.parse_args()

    import grpc
    pb, rpc = load_stubs()
    channel = grpc.insecure_channel(args.address)
    completion = rpc.CompletionServiceStub(channel)
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else None

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
                        result=pb.Payload(encoding="json/plain", data=json.dumps(result).encode()),
                    ),
                    metadata=metadata,
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
