"""Outbound HTTP for Python activities, over wasi:http.

Build with ``sluice build --http <folder>``; the host lets the activity reach
only the hosts in its type's ``allow_http`` list (``sluice run --allow-http``).
A refused or failed request raises :class:`HttpError`, an
:class:`sluice.ActivityError` whose type names the wasi:http error code, e.g.
``HttpRequestDenied`` (not retryable: only a config change helps) or
``ConnectionRefused`` (retryable).

    from sluice import http
    response = http.get("https://api.example.com/v1/status")
    data = response.json()
"""

import json as _json
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple
from urllib.parse import urlsplit

from componentize_py_types import Err, Ok

try:
    from wit_world.imports import outgoing_handler, streams
    from wit_world.imports import wasi_http_types as _http
except ImportError:
    raise ImportError("sluice.http needs the wasi:http world: build with `sluice build --http`") from None

from . import ActivityError

__all__ = ["request", "get", "post", "Response", "HttpError"]

_CHUNK = 4096  # wasi:io output streams accept at most this much per blocking write
_METHODS = {
    "GET": _http.Method_Get, "HEAD": _http.Method_Head, "POST": _http.Method_Post,
    "PUT": _http.Method_Put, "DELETE": _http.Method_Delete, "PATCH": _http.Method_Patch,
    "OPTIONS": _http.Method_Options,
}


class HttpError(ActivityError):
    """A request that could not be made or got no response."""


@dataclass
class Response:
    status: int
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return _json.loads(self.body)


def _error_type(code: Any) -> str:
    return type(code).__name__.removeprefix("ErrorCode_")


def request(method: str, url: str, headers: Optional[List[Tuple[str, str]]] = None,
            body: Optional[bytes] = None, timeout: Optional[float] = None) -> Response:
    """Sends one request and reads the whole response."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HttpError(f"cannot request {url!r}: expected an http:// or https:// URL",
                        "HttpRequestUriInvalid", non_retryable=True)
    fields = _http.Fields.from_list([(k, v.encode()) for k, v in (headers or [])])
    req = _http.OutgoingRequest(fields)
    method_cls = _METHODS.get(method.upper())
    req.set_method(method_cls() if method_cls else _http.Method_Other(method.upper()))
    req.set_scheme(_http.Scheme_Https() if parts.scheme == "https" else _http.Scheme_Http())
    req.set_authority(parts.netloc)
    req.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    outgoing = req.body()

    options = None
    if timeout is not None:
        options = _http.RequestOptions()
        nanos = int(timeout * 1e9)
        options.set_connect_timeout(nanos)
        options.set_first_byte_timeout(nanos)
        options.set_between_bytes_timeout(nanos)
    try:
        future = outgoing_handler.handle(req, options)
    except Err as e:
        raise HttpError(f"{method} {url} failed: {_error_type(e.value)}", _error_type(e.value)) from None

    stream = outgoing.write()
    data = body or b""
    for at in range(0, len(data), _CHUNK):
        stream.blocking_write_and_flush(data[at:at + _CHUNK])
    stream.__exit__(None, None, None)  # a child stream must go before its body
    _http.OutgoingBody.finish(outgoing, None)

    with future.subscribe() as ready:
        ready.block()
    result = future.get()
    future.__exit__(None, None, None)
    # option<result<result<incoming-response, error-code>>>, the outer
    # result only failing when the response was already taken.
    if not isinstance(result, Ok):
        raise HttpError(f"{method} {url}: no response", "HttpResponseIncomplete")
    inner = result.value
    if isinstance(inner, Ok):
        inner = inner.value
    elif isinstance(inner, Err):
        code = _error_type(inner.value)
        if code == "HttpRequestDenied":
            # A policy refusal: retrying cannot help until the config changes.
            raise HttpError(f"{method} {url}: the host denied the request "
                            f"({parts.hostname} is not in this activity type's allow_http)", code,
                            non_retryable=True)
        raise HttpError(f"{method} {url} failed: {code}", code)
    return _read(inner)


def _read(response: Any) -> Response:
    status = response.status()
    with response.headers() as fields:
        headers = [(k, v.decode("latin-1")) for k, v in fields.entries()]
    incoming = response.consume()
    stream = incoming.stream()
    chunks = []
    while True:
        try:
            chunks.append(stream.blocking_read(65536))
        except Err as e:
            if isinstance(e.value, streams.StreamError_Closed):
                break
            raise HttpError("reading the response body failed", "HttpResponseIncomplete") from None
    stream.__exit__(None, None, None)
    incoming.__exit__(None, None, None)
    response.__exit__(None, None, None)
    return Response(status, headers, b"".join(chunks))


def get(url: str, **kwargs: Any) -> Response:
    return request("GET", url, **kwargs)


def post(url: str, body: bytes, **kwargs: Any) -> Response:
    return request("POST", url, body=body, **kwargs)
