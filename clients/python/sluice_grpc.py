"""Python stubs for Sluice's gRPC API, generated from host/proto on import.

Needs `pip install grpcio grpcio-tools`. Usage:

    import sys; sys.path.insert(0, "path/to/sluice/clients/python")
    from sluice_grpc import pb, rpc, channel
    completion = rpc.CompletionServiceStub(channel("127.0.0.1:7233"))

`pb` holds the messages (sluice_pb2), `rpc` the service stubs
(sluice_pb2_grpc). The proto file is the reference for both.
"""

import os
import sys
import tempfile

PROTO_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "host", "proto"))


def _compile():
    try:
        import grpc  # noqa: F401
        from grpc_tools import protoc
        import grpc_tools
    except ImportError as e:
        sys.exit(f"the Sluice Python client needs grpcio and grpcio-tools ({e}); run: pip install grpcio grpcio-tools")
    out = tempfile.mkdtemp(prefix="sluice-stubs-")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    proto = os.path.join(PROTO_DIR, "sluice", "v1", "sluice.proto")
    rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", proto])
    if rc != 0:
        sys.exit(f"cannot compile {proto} (protoc exit {rc})")
    sys.path.insert(0, out)
    from sluice.v1 import sluice_pb2, sluice_pb2_grpc
    return sluice_pb2, sluice_pb2_grpc


pb, rpc = _compile()


def channel(address=None):
    """An insecure channel to `address` (default: $SLUICE_ADDRESS or 127.0.0.1:7233)."""
    import grpc
    address = address or os.environ.get("SLUICE_ADDRESS", "127.0.0.1:7233")
    return grpc.insecure_channel(address.removeprefix("http://"))


def metadata(token=None):
    """Call metadata carrying the bearer token ($SLUICE_TOKEN by default), if any."""
    token = token or os.environ.get("SLUICE_TOKEN")
    return [("authorization", f"Bearer {token}")] if token else None


def json_payload(value):
    """A json/plain payload of `value`."""
    import json
    return pb.Payload(encoding="json/plain", data=json.dumps(value).encode())


def start_many(stub, requests, per_request=1000, token=None):
    """Starts many executions with StartActivities, `per_request` at a time.

    `stub` is an ActivityServiceStub, `requests` StartActivityRequest
    messages. Yields one StartActivityOutcome per request, in order: its
    `started` (activity_id, run_id) or its `error` (code, message).
    """
    requests = list(requests)
    for i in range(0, len(requests), per_request):
        batch = pb.StartActivitiesRequest(starts=requests[i:i + per_request])
        yield from stub.StartActivities(batch, metadata=metadata(token)).outcomes


def follow(stub, activity_ids, token=None):
    """Yields each execution (an ActivityExecution) as it closes, over
    WatchActivities streams of up to 10,000 ids; returns once all closed.
    """
    ids = list(activity_ids)
    for i in range(0, len(ids), 10_000):
        request = pb.WatchActivitiesRequest(activity_ids=ids[i:i + 10_000])
        for event in stub.WatchActivities(request, metadata=metadata(token)):
            yield event.execution
