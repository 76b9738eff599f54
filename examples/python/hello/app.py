"""The smallest useful activity: greets whoever is named in the input.

Input {"name": "Ada"} -> output {"greeting": "Hello, Ada!"}.
An empty name is a non-retryable error of type EmptyName.
"""

import sluice


@sluice.activity
def hello(ctx: sluice.Context, input: dict) -> dict:
    name = input["name"] if isinstance(input, dict) else None
    if not isinstance(name, str):
        raise sluice.ActivityError("cannot decode activity input: expected {\"name\": string}",
                                   sluice.INVALID_INPUT, non_retryable=True)
    if not name.strip():
        raise sluice.ActivityError("name must not be empty", "EmptyName", non_retryable=True)
    ctx.log(sluice.LogLevel.INFO, "greeting", name=name)
    ctx.progress(100.0, "greeted")
    return {"greeting": f"Hello, {name}!"}
