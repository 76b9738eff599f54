// Drives the console in headless Chromium against a running `sluice
// serve`: sign in with a token, see an activity started through the API
// appear with its progress bar advancing, open it (history and logs),
// cancel one, and look at the queues page on a phone-width window.
// Screenshots go to the given folder.
//
//     node console.test.mjs HTTP_URL TOKEN SCREENSHOT_DIR

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [url, token, shots] = process.argv.slice(2);
if (!url || !token || !shots) {
  console.error("usage: node console.test.mjs HTTP_URL TOKEN SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const base = url.endsWith("/") ? url : `${url}/`;

async function start(body) {
  const res = await fetch(`${base}api/v1/activities`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`start: ${res.status} ${await res.text()}`);
}

function check(ok, what) {
  if (!ok) throw new Error(what);
  console.log(`ok: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("dialog", (d) => d.accept(d.type() === "prompt" ? d.defaultValue() : undefined));
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));

  await page.goto(base);
  await page.waitForSelector("#login[open]", { timeout: 10000 });
  check(true, "the console asks for a token");
  await page.screenshot({ path: `${shots}/login.png` });
  await page.fill("#token", "wrong");
  await page.click("#login button[type=submit]");
  await page.waitForFunction(() => document.getElementById("login-error").textContent.includes("refused"), null, { timeout: 10000 });
  check(true, "a wrong token is refused");
  await page.fill("#token", token);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#activities", { timeout: 10000 });
  check(true, "signed in, the activities list shows");

  await start({ activity_id: "web-slow", activity_type: "resumable", input: { json: { to: 60, step_ms: 100 } } });
  await page.waitForSelector('tr[data-id="web-slow"]', { timeout: 15000 });
  check(true, "an activity started through the API appears");
  const progress = () => page.$eval('tr[data-id="web-slow"] .bar', (b) => Number(b.getAttribute("aria-valuenow")));
  await page.waitForFunction(() => Number(document.querySelector('tr[data-id="web-slow"] .bar')?.getAttribute("aria-valuenow")) > 0, null, { timeout: 15000 });
  const first = await progress();
  await page.waitForFunction((p) => Number(document.querySelector('tr[data-id="web-slow"] .bar').getAttribute("aria-valuenow")) > p, first, { timeout: 15000 });
  check((await progress()) > first, `its progress bar advances live (${first}% → ${await progress()}%)`);
  await page.screenshot({ path: `${shots}/activities.png` });

  await page.click('tr[data-id="web-slow"] a');
  await page.waitForSelector("#history li.started", { timeout: 10000 });
  check(true, "its page shows the history");
  check((await page.textContent("#task-token")).length > 20, "its task token is shown");
  await page.screenshot({ path: `${shots}/activity.png`, fullPage: true });
  await page.click('button[data-action="cancel"]');
  await page.waitForSelector('.badge[data-status="cancelled"]', { timeout: 20000 });
  check(true, "cancelled from the console");

  await start({ activity_id: "web-hello", activity_type: "hello", input: { json: { name: "Browser" } } });
  await page.goto(`${base}#/activity/web-hello`);
  await page.waitForSelector("#history li.completed", { timeout: 15000 });
  await page.waitForFunction(() => document.getElementById("logs").textContent.includes("greeting"), null, { timeout: 10000 });
  check(true, "a completed activity shows its result, history and logs");
  check((await page.textContent("main")).includes("Hello, Browser!"), "the result is shown");

  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}#/queues`);
  await page.waitForSelector('.queue[data-queue="default"]', { timeout: 10000 });
  check(true, "the queues page shows the default queue");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `it fits a phone-width window (overflow ${overflow}px)`);
  await page.screenshot({ path: `${shots}/queues-phone.png`, fullPage: true });
  check(errors.length === 0, `no script errors (${errors.join("; ")})`);
} finally {
  await browser.close();
}
