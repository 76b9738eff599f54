// The smallest useful activity: greets whoever is named in the input.
//
// Input {"name": "Ada"} -> output {"greeting": "Hello, Ada!"}.
// An empty name is a non-retryable error of type EmptyName.
import { ActivityError, INVALID_INPUT } from "sluice";

export default function hello(ctx, input) {
  if (typeof input?.name !== "string") {
    throw new ActivityError('cannot decode activity input: expected {"name": string}', { type: INVALID_INPUT, nonRetryable: true });
  }
  if (!input.name.trim()) {
    throw new ActivityError("name must not be empty", { type: "EmptyName", nonRetryable: true });
  }
  ctx.log("info", "greeting", { name: input.name });
  ctx.progress(100, "greeted");
  return { greeting: `Hello, ${input.name}!` };
}
