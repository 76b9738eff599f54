"""Fetches a URL over wasi:http and reports its status and body.

Input {"url": "http://127.0.0.1:8080/status"}
Output {"status": 200, "content_type": "...", "body": "..."}

Build with `sluice build --http`; the activity type must list the URL's host
in `allow_http`, otherwise the request fails with HttpRequestDenied.
"""

import sluice
from sluice import http


@sluice.activity
def fetch(ctx: sluice.Context, input: dict) -> dict:
    url = input.get("url") if isinstance(input, dict) else None
    if not isinstance(url, str):
        raise sluice.ActivityError("cannot decode activity input: expected {\"url\": string}",
                                   sluice.INVALID_INPUT, non_retryable=True)
    ctx.progress(None, f"GET {url}")
    response = http.get(url, timeout=input.get("timeout_s", 30))
    if response.status >= 500:
        raise sluice.ActivityError(f"GET {url} answered {response.status}", "ServerError")
    return {"status": response.status, "content_type": response.header("content-type"),
            "body": response.text()}
