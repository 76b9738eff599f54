// The Sluice console: a client of the JSON API (/api/v1) and its event
// streams, nothing else. Views: activities (#/), one activity
// (#/activity/ID), queues and types (#/queues).

const main = document.getElementById("main");
const TRUNCATE = 20000;

// ---------------------------------------------------------------- the API

let token = sessionStorage.getItem("sluice-token") || "";
let loginWaiters = [];

function headers(extra = {}) {
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

/** Calls the JSON API; asks for a token when the server wants one. */
async function api(method, path, body) {
  for (;;) {
    const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
    if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
    const res = await fetch(path, init);
    if (res.status === 401) {
      await askToken();
      continue;
    }
    const text = await res.text();
    const value = text ? JSON.parse(text) : {};
    if (!res.ok) throw new Error(value.message || `${res.status}`);
    return value;
  }
}

/** Shows the sign-in dialog (once, however many requests wait on it). */
function askToken() {
  const dialog = document.getElementById("login");
  document.getElementById("login-error").textContent = token ? "That token was refused." : "";
  if (!dialog.open) dialog.showModal();
  return new Promise((resolve) => loginWaiters.push(resolve));
}

document.getElementById("login-form").addEventListener("submit", () => {
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem("sluice-token", token);
  document.getElementById("logout").hidden = false;
  const waiters = loginWaiters;
  loginWaiters = [];
  waiters.forEach((w) => w());
  restartLive();
});

document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem("sluice-token");
  token = "";
  location.reload();
});
document.getElementById("logout").hidden = !token;

/** Reads a Server-Sent Events stream (fetch, so the token goes along). */
async function stream(path, onEvent, signal) {
  const res = await fetch(path, { headers: headers(), signal });
  if (res.status === 401) {
    await askToken();
    return stream(path, onEvent, signal);
  }
  if (!res.ok || !res.body) throw new Error(`stream ${path}: ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const chunk = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let data = "";
      for (const line of chunk.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}

// ---------------------------------------------------------------- helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const statusName = (s) => (s || "").replace("ACTIVITY_STATUS_", "").toLowerCase().replace("_", "-");
const when = (t) => (t ? new Date(t).toLocaleString() : "");
const seconds = (d) => (d ? parseFloat(d) : null);

function badge(e) {
  const name = statusName(e.status);
  return el("span", { class: `badge ${name}`, "data-status": name }, name, e.paused ? " · paused" : "");
}

function bar(percent, big = false) {
  const inner = el("span", { style: `width:${Math.max(0, Math.min(100, percent || 0))}%` });
  return el("div", { class: big ? "bar big" : "bar", role: "progressbar", "aria-valuenow": Math.round(percent || 0) }, inner);
}

function setBar(container, percent) {
  const b = container.querySelector(".bar");
  if (!b) return;
  b.firstChild.style.width = `${Math.max(0, Math.min(100, percent || 0))}%`;
  b.setAttribute("aria-valuenow", Math.round(percent || 0));
}

function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.classList.add("show");
  setTimeout(() => t.classList.remove("show"), 2500);
}

function pretty(payload) {
  if (!payload) return el("span", { class: "muted" }, "none");
  const text = "json" in payload ? JSON.stringify(payload.json, null, 2) : `${payload.encoding}: ${payload.data}`;
  const shown = text.length > TRUNCATE ? text.slice(0, TRUNCATE) + "\n…" : text;
  const box = el("div", {}, el("pre", {}, shown));
  if (text.length > TRUNCATE) {
    const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    box.append(el("a", { href: url, download: "payload.json" }, `Download all ${text.length} characters`));
  }
  return box;
}

function debounce(f, ms) {
  let t;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => f(...a), ms);
  };
}

// ---------------------------------------------------------------- live updates

let live = null;
const liveHandlers = new Set();

function restartLive() {
  if (live) live.abort();
  live = new AbortController();
  const dot = document.getElementById("live");
  const run = async (signal) => {
    while (!signal.aborted) {
      try {
        dot.classList.add("on");
        await stream("/api/v1/events", (name, e) => liveHandlers.forEach((h) => h(name, e)), signal);
      } catch (err) {
        if (signal.aborted) return;
      }
      dot.classList.remove("on");
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  run(live.signal);
}

// ---------------------------------------------------------------- views

let leave = () => {};

async function activities(params) {
  const q = new URLSearchParams(params);
  const filters = el(
    "form",
    { class: "filters", id: "filters" },
    el("label", {}, "Status", el("select", { name: "status" }, ["", "scheduled", "started", "completed", "failed", "cancelled", "terminated", "timed-out"].map((s) => el("option", { value: s, selected: q.get("status") === s }, s || "any")))),
    el("label", {}, "Type", el("input", { name: "type", value: q.get("type") || "", size: 12 })),
    el("label", {}, "Queue", el("input", { name: "queue", value: q.get("queue") || "", size: 10 })),
    el("label", {}, "Id prefix", el("input", { name: "prefix", value: q.get("prefix") || "", size: 12 })),
    el("label", {}, "Scheduled after", el("input", { name: "after", type: "datetime-local", value: q.get("after") || "" })),
    el("label", {}, "before", el("input", { name: "before", type: "datetime-local", value: q.get("before") || "" })),
    el("button", { type: "submit", class: "primary" }, "Filter"),
  );
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(filters);
    const next = new URLSearchParams();
    for (const [k, v] of f) if (v) next.set(k, v);
    location.hash = `#/?${next}`;
  });
  const body = el("tbody");
  const more = el("div", { class: "actions" });
  const start = startForm();
  main.replaceChildren(el("h1", {}, "Activities"), el("div", { class: "panel" }, filters, el("table", { id: "activities" }, el("thead", {}, el("tr", {}, el("th", {}, "Activity"), el("th", {}, "Type"), el("th", { class: "wide" }, "Queue"), el("th", {}, "Status"), el("th", { class: "wide" }, "Attempt"), el("th", {}, "Progress"), el("th", { class: "wide" }, "Scheduled"))), body), more), start);

  const req = new URLSearchParams();
  if (q.get("status")) req.set("status", q.get("status"));
  if (q.get("type")) req.set("activity_type", q.get("type"));
  if (q.get("queue")) req.set("task_queue", q.get("queue"));
  if (q.get("prefix")) req.set("activity_id_prefix", q.get("prefix"));
  if (q.get("after")) req.set("scheduled_after", new Date(q.get("after")).toISOString());
  if (q.get("before")) req.set("scheduled_before", new Date(q.get("before")).toISOString());
  req.set("page_size", "50");
  if (q.get("page")) req.set("page_token", q.get("page"));
  const page = await api("GET", `/api/v1/activities?${req}`);
  const rows = new Map();
  for (const e of page.executions || []) {
    const row = el(
      "tr",
      { "data-id": e.activity_id },
      el("td", { class: "id" }, el("a", { href: `#/activity/${encodeURIComponent(e.activity_id)}` }, e.activity_id)),
      el("td", {}, e.activity_type),
      el("td", { class: "wide" }, e.task_queue),
      el("td", { class: "status" }, badge(e)),
      el("td", { class: "wide attempt" }, e.attempt),
      el("td", { class: "progress" }, bar(e.progress?.percent ?? (statusName(e.status) === "completed" ? 100 : 0)), el("span", { class: "muted" }, " ", e.progress?.message || "")),
      el("td", { class: "wide" }, when(e.scheduled_time)),
    );
    rows.set(e.activity_id, row);
    body.append(row);
  }
  if (!rows.size) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No activities match.")));
  if (q.get("page")) more.append(el("button", { onclick: () => { q.delete("page"); location.hash = `#/?${q}`; } }, "First page"));
  if (page.next_page_token) more.append(el("button", { onclick: () => { q.set("page", page.next_page_token); location.hash = `#/?${q}`; } }, "Next page"));

  const reload = debounce(() => route(), 400);
  const handler = (name, e) => {
    const row = rows.get(e.activity_id);
    if (name === "progress" && row) {
      setBar(row, e.percent);
      row.querySelector(".progress .muted").textContent = " " + (e.message || "");
    } else if (name === "transition") {
      if (row) {
        const status = e.status;
        row.querySelector(".status").replaceChildren(el("span", { class: `badge ${status}`, "data-status": status }, status));
        row.querySelector(".attempt").textContent = e.attempt;
        if (status === "completed") setBar(row, 100);
      } else if (e.transition === "scheduled" && !q.get("page")) {
        reload();
      }
    }
  };
  liveHandlers.add(handler);
  return () => liveHandlers.delete(handler);
}

function startForm() {
  const form = el(
    "form",
    { class: "filters", id: "start" },
    el("label", {}, "Type", el("input", { name: "type", required: true, size: 12 })),
    el("label", {}, "Id (optional)", el("input", { name: "id", size: 14 })),
    el("label", {}, "Input (JSON)", el("input", { name: "input", value: "{}", size: 28 })),
    el("button", { type: "submit" }, "Start"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    try {
      const input = JSON.parse(f.get("input") || "null");
      const r = await api("POST", "/api/v1/activities", { activity_type: f.get("type"), activity_id: f.get("id") || "", input: { json: input } });
      toast(`started ${r.activity_id}`);
    } catch (err) {
      toast(err.message);
    }
  });
  return el("div", { class: "panel" }, el("h2", {}, "Start an activity"), form);
}

function timeouts(e) {
  const at = (base, d) => (base && seconds(d) ? new Date(new Date(base).getTime() + seconds(d) * 1000) : null);
  const lastBeat = e.last_heartbeat_time || e.started_time;
  const open = ["scheduled", "started"].includes(statusName(e.status));
  const rows = [
    ["schedule-to-close", e.schedule_to_close_timeout, at(e.scheduled_time, e.schedule_to_close_timeout)],
    ["schedule-to-start", e.schedule_to_start_timeout, statusName(e.status) === "scheduled" ? at(e.current_attempt_scheduled_time, e.schedule_to_start_timeout) : null],
    ["start-to-close", e.start_to_close_timeout, statusName(e.status) === "started" ? at(e.started_time, e.start_to_close_timeout) : null],
    ["heartbeat", e.heartbeat_timeout, statusName(e.status) === "started" ? at(lastBeat, e.heartbeat_timeout) : null],
  ];
  return el("table", {}, el("tbody", {}, rows.map(([name, d, fires]) => el("tr", {}, el("td", {}, name), el("td", {}, d || "none"), el("td", { class: "muted" }, open && fires ? `fires ${fires.toLocaleString()}` : "")))));
}

function logLine(l) {
  return el("div", { class: l.level }, el("span", { class: "lvl" }, l.level), `[${l.attempt}] ${l.message}`, Object.entries(l.fields || {}).map(([k, v]) => ` ${k}=${v}`).join(""));
}

async function activity(id) {
  const path = `/api/v1/activities/${encodeURIComponent(id)}`;
  // Log records streamed while an attempt runs (stored when it ends).
  let liveLogs = [];
  const render = async () => {
    const d = await api("GET", `${path}?logs_page_size=1000`);
    const e = d.execution;
    const status = statusName(e.status);
    const open = ["scheduled", "started"].includes(status);
    const act = (label, method, suffix, body, confirmText, cls) =>
      el("button", {
        class: cls,
        "data-action": label.toLowerCase().replace(/ /g, "-"),
        onclick: async () => {
          if (confirmText && !confirm(confirmText)) return;
          try {
            let b = body;
            if (typeof body === "function") {
              b = body();
              if (b === null) return;
            }
            await api(method, path + suffix, b);
            toast(`${label}: done`);
            render();
          } catch (err) {
            toast(err.message);
          }
        },
      }, label);
    const actions = el("div", { class: "actions" });
    if (open) {
      actions.append(act("Cancel", "POST", "/cancel", undefined, `Cancel ${id}?`, "danger"));
      actions.append(act("Terminate", "POST", "/terminate", { reason: "terminated from the console" }, `Terminate ${id}? The attempt is not asked.`, "danger"));
      actions.append(e.paused ? act("Unpause", "POST", "/unpause", {}, null) : act("Pause", "POST", "/pause", undefined, `Pause ${id}?`));
      actions.append(act("Reset", "POST", "/reset", {}, `Reset ${id}? Its retry count starts over.`));
    }
    if (status === "started") {
      actions.append(act("Complete", "POST", "/complete", () => {
        const text = prompt("Result (JSON)", "{}");
        return text === null ? null : { result: { json: JSON.parse(text) } };
      }, null));
      actions.append(act("Fail", "POST", "/fail", () => {
        const message = prompt("Failure message", "failed from the console");
        return message === null ? null : { failure: { message, error_type: "ConsoleFailure" } };
      }, null));
    }
    actions.append(act("Delete", "POST", "", undefined, null, "danger"));
    const del = actions.lastChild;
    del.onclick = null;
    del.replaceWith(el("button", { class: "danger", "data-action": "delete", onclick: async () => {
      if (!confirm(`Delete ${id} with its history and logs?`)) return;
      try { await api("DELETE", path); toast("deleted"); location.hash = "#/"; } catch (err) { toast(err.message); }
    } }, "Delete"));

    const percent = e.progress?.percent ?? (status === "completed" ? 100 : 0);
    const facts = el("dl", { class: "facts" },
      el("dt", {}, "Status"), el("dd", {}, badge(e), e.cancel_requested ? " cancel requested" : "", e.pending_async ? " · pending async completion" : "", e.reset_pending ? " · reset pending" : ""),
      el("dt", {}, "Type / queue"), el("dd", {}, `${e.activity_type} on ${e.task_queue} (priority ${e.priority})`),
      el("dt", {}, "Run"), el("dd", {}, e.run_id),
      el("dt", {}, "Attempt"), el("dd", {}, `${e.attempt}${e.policy_attempt !== e.attempt ? ` (${e.policy_attempt} since reset)` : ""}${e.version ? ` · version ${e.version}` : ""}${e.pinned_version ? ` (pinned ${e.pinned_version})` : ""}`),
      el("dt", {}, "Scheduled"), el("dd", {}, when(e.scheduled_time)),
      el("dt", {}, "Started"), el("dd", {}, when(e.started_time) || "—", e.last_worker ? ` by ${e.last_worker}` : ""),
      el("dt", {}, "Closed"), el("dd", {}, when(e.close_time) || "—"),
      el("dt", {}, "Progress"), el("dd", { id: "progress" }, bar(percent, true), el("span", { class: "muted" }, e.progress?.message || "")),
    );
    if (e.last_failure) facts.append(el("dt", {}, "Last failure"), el("dd", { class: "error" }, `${e.last_failure.source} ${e.last_failure.error_type}: ${e.last_failure.message}`));
    const tokenBox = d.task_token
      ? el("div", { class: "panel" }, el("h2", {}, "Task token"), el("div", { class: "token" }, el("code", { id: "task-token" }, d.task_token), el("button", { onclick: async () => { await navigator.clipboard.writeText(d.task_token); toast("copied"); } }, "Copy")))
      : null;
    const history = el("ol", { class: "timeline", id: "history" }, (d.history || []).map((h) =>
      el("li", { class: h.kind }, el("strong", {}, h.kind), el("span", { class: "when" }, `attempt ${h.attempt} · ${when(h.time)}`), h.detail_json && h.detail_json !== "{}" ? el("code", {}, h.detail_json) : null)));
    const stored = d.logs || [];
    const logs = el("div", { class: "logs", id: "logs" }, stored.map(logLine), liveLogs.filter((l) => !stored.some((s) => s.attempt === l.attempt)).map(logLine));
    if (!logs.childElementCount) logs.append(el("span", { class: "muted" }, "No logs yet."));
    const r = e.retry_policy || {};
    main.replaceChildren(
      el("h1", {}, id),
      el("div", { class: "panel" }, facts, el("h2", {}, "Actions"), actions),
      tokenBox,
      el("div", { class: "grid" },
        el("div", { class: "panel" }, el("h2", {}, "Timeouts"), timeouts(e)),
        el("div", { class: "panel" }, el("h2", {}, "Retry policy"), el("dl", { class: "facts" },
          el("dt", {}, "Initial interval"), el("dd", {}, r.initial_interval || ""),
          el("dt", {}, "Backoff"), el("dd", {}, r.backoff_coefficient ?? ""),
          el("dt", {}, "Maximum interval"), el("dd", {}, r.maximum_interval || ""),
          el("dt", {}, "Maximum attempts"), el("dd", {}, r.maximum_attempts ? r.maximum_attempts : "unlimited"),
          el("dt", {}, "Non-retryable"), el("dd", {}, (r.non_retryable_error_types || []).join(", ") || "none")))),
      el("div", { class: "grid" },
        el("div", { class: "panel" }, el("h2", {}, "Input"), pretty(e.input)),
        el("div", { class: "panel" }, el("h2", {}, "Result"), pretty(e.result)),
        el("div", { class: "panel" }, el("h2", {}, "Heartbeat details"), pretty(e.heartbeat_details), el("span", { class: "muted" }, when(e.last_heartbeat_time)))),
      el("div", { class: "panel" }, el("h2", {}, "History"), history),
      el("div", { class: "panel" }, el("h2", {}, "Logs"), logs),
    );
  };
  await render();
  const controller = new AbortController();
  const refresh = debounce(() => render().catch(() => {}), 300);
  (async () => {
    while (!controller.signal.aborted) {
      try {
        await stream(`${path}/events`, (name, ev) => {
          if (name === "progress") {
            const p = document.getElementById("progress");
            if (p) {
              setBar(p, ev.percent);
              p.querySelector(".muted").textContent = ev.message || "";
            }
            return;
          }
          if (name === "log") {
            // Logs stream while the attempt runs.
            liveLogs.push(ev);
            const logs = document.getElementById("logs");
            if (logs) {
              logs.querySelector(":scope > .muted")?.remove();
              logs.append(logLine(ev));
            }
            return;
          }
          refresh();
        }, controller.signal);
        return; // the execution closed
      } catch (err) {
        if (controller.signal.aborted) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
  return () => controller.abort();
}

async function queues() {
  const render = async () => {
    const types = (await api("GET", "/api/v1/types")).activity_types || [];
    const names = [...new Set(types.flatMap((t) => t.task_queues))].sort();
    const described = await Promise.all(names.map(async (n) => [n, await api("GET", `/api/v1/queues/${encodeURIComponent(n)}?closed_counts=true`)]));
    const cards = described.map(([n, q]) => {
      const byType = {};
      for (const c of q.counts || []) (byType[c.activity_type] ||= {})[statusName(c.status)] = c.count;
      return el("div", { class: "panel queue", "data-queue": n },
        el("h2", {}, n, q.paused ? el("span", { class: "badge paused" }, " paused") : ""),
        el("div", { class: "grid stats" },
          el("div", {}, el("div", { class: "stat backlog" }, q.backlog ?? 0), el("span", { class: "muted" }, "backlog")),
          el("div", {}, el("div", { class: "stat running" }, q.running ?? 0), el("span", { class: "muted" }, "running")),
          el("div", {}, el("div", { class: "stat" }, q.free_slots ?? 0), el("span", { class: "muted" }, q.rate_limit ? `free slots · ${q.rate_limit}/s` : "free slots"))),
        el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Type"), ...["scheduled", "started", "completed", "failed", "cancelled", "terminated", "timed-out"].map((s) => el("th", {}, s)))),
          el("tbody", {}, Object.entries(byType).map(([t, c]) => el("tr", {}, el("td", {}, t), ...["scheduled", "started", "completed", "failed", "cancelled", "terminated", "timed-out"].map((s) => el("td", {}, c[s] || 0)))))));
    });
    const typeRows = types.map((t) => el("tr", {}, el("td", {}, t.name), el("td", {}, t.current_version || "—"), el("td", { class: "wide" }, (t.versions || []).map((v) => v.label).join(", ")), el("td", {}, t.task_queues.join(", ")),
      el("td", {}, el("button", { onclick: async () => { if (!confirm(`Roll ${t.name} back?`)) return; try { await api("POST", `/api/v1/types/${encodeURIComponent(t.name)}/rollback`, {}); toast("rolled back"); render(); } catch (err) { toast(err.message); } } }, "Roll back"))));
    main.replaceChildren(
      el("h1", {}, "Queues & types"),
      ...cards,
      el("div", { class: "panel" }, el("h2", {}, "Activity types"), el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Type"), el("th", {}, "Current"), el("th", { class: "wide" }, "Versions"), el("th", {}, "Queues"), el("th", {}, ""))), el("tbody", {}, typeRows))),
      deployForm(render),
    );
  };
  await render();
  const timer = setInterval(() => { if (!document.querySelector("#deploy input:focus")) render().catch(() => {}); }, 3000);
  return () => clearInterval(timer);
}

function deployForm(after) {
  const form = el("form", { class: "filters", id: "deploy" },
    el("label", {}, "Type", el("input", { name: "type", required: true, size: 12 })),
    el("label", {}, "Component (.wasm)", el("input", { name: "file", type: "file", accept: ".wasm", required: true })),
    el("label", {}, "Version (optional)", el("input", { name: "version", size: 8 })),
    el("label", {}, "Queue (optional)", el("input", { name: "queue", size: 10 })),
    el("button", { type: "submit", class: "primary" }, "Deploy"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const q = new URLSearchParams();
    if (f.get("version")) q.set("version", f.get("version"));
    if (f.get("queue")) q.set("queue", f.get("queue"));
    if (!confirm(`Deploy ${f.get("file").name} as ${f.get("type")}?`)) return;
    try {
      const res = await fetch(`/api/v1/types/${encodeURIComponent(f.get("type"))}/versions?${q}`, { method: "PUT", headers: headers({ "Content-Type": "application/wasm" }), body: f.get("file") });
      const value = await res.json();
      if (!res.ok) throw new Error(value.message);
      toast(`deployed ${value.activity_type.name} ${value.activity_type.current_version}`);
      form.reset();
      after();
    } catch (err) {
      toast(err.message);
    }
  });
  return el("div", { class: "panel" }, el("h2", {}, "Deploy a component"), form);
}

// ---------------------------------------------------------------- routing

async function route() {
  leave();
  leave = () => {};
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.getAttribute("href") === `#${path}`);
  try {
    if (path.startsWith("/activity/")) leave = await activity(decodeURIComponent(path.slice("/activity/".length)));
    else if (path === "/queues") leave = await queues();
    else leave = await activities(query || "");
  } catch (err) {
    main.replaceChildren(el("p", { class: "error" }, err.message));
  }
}

window.addEventListener("hashchange", route);
restartLive();
route();
