// Helpers of moat's real-browser UI tests: the environment the Go test
// passes, TOTP codes, numbered steps, Debian's chromium with a fresh
// profile, pages that record what must not happen (dialogs, script
// errors, CSP violations), and screenshots.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

// env returns a variable the Go test sets, or stops with how to run.
export function env(name) {
  const v = process.env[name];
  if (v === undefined) {
    throw new Error(`${name} is not set: run these scripts with go test ./internal/uitest`);
  }
  return v;
}

export const URL = env("MOAT_URL");

// totp is the RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret
// at unix time t, as an authenticator app computes it.
export function totp(secret, t) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.toUpperCase().replace(/=+$/, "")) {
    const i = alphabet.indexOf(ch);
    assert.ok(i >= 0, `TOTP secret has a character outside base32: ${ch}`);
    bits += i.toString(2).padStart(5, "0");
  }
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(8 * i, 8 * i + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, "0");
}

// The RFC 6238 test vector, so that a broken totp fails here and not as
// a puzzling sign-in refusal.
assert.equal(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59), "287082", "TOTP self-test");

let stepN = 0;
export let current = "";

// step runs fn as the next numbered step, printing its name and time.
export async function step(name, fn) {
  current = `${++stepN}-${name.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}`;
  const t0 = Date.now();
  console.log(`step ${stepN}: ${name}`);
  await fn();
  console.log(`  ok (${Date.now() - t0} ms)`);
}

const browserArgs = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

const open = new Set();

// lastPage is the page of the newest launch, for a screenshot on failure.
export let lastPage = null;

// launch starts chromium with a fresh profile directory named name and
// returns its context and first page, watched by watch.
export async function launch(name) {
  const dir = join(env("MOAT_PROFILES"), name);
  mkdirSync(dir);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: env("MOAT_CHROMIUM"), headless: true, args: browserArgs,
    viewport: { width: 1280, height: 800 }, locale: "en-GB", timezoneId: "UTC",
  });
  open.add(context);
  context.setDefaultTimeout(10_000);
  const page = context.pages()[0] ?? (await context.newPage());
  lastPage = page;
  return { context, page, watch: watch(page) };
}

// closeAll closes every browser launch started; each waits for its
// processes to exit.
export async function closeAll() {
  for (const c of open) {
    await c.close().catch((e) => console.error(`closing the browser: ${e.message}`));
  }
  open.clear();
}

// watch records on page what a test must never see: a dialog (script
// injected through a name would call alert), an uncaught script error,
// and console errors (CSP violations are reported there).
export function watch(page) {
  const w = { dialogs: [], errors: [] };
  page.on("dialog", (d) => {
    w.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  page.on("pageerror", (e) => w.errors.push(`page error: ${e.message}`));
  // Pages answered with an error status are checked where they are
  // opened; a style sheet or script that fails to load is an error.
  // Browsers ask for /favicon.ico on their own; the UI has none.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      w.errors.push(`console: ${m.text()} (${m.location().url})`);
    }
  });
  page.on("response", (r) => {
    const type = r.request().resourceType();
    if (r.status() >= 400 && type !== "document" && !r.url().endsWith("/favicon.ico")) {
      w.errors.push(`${type} ${r.url()}: status ${r.status()}`);
    }
  });
  w.assertClean = () => {
    assert.deepEqual(w.dialogs, [], "a dialog opened: script ran from page content");
    assert.deepEqual(w.errors, [], "the browser reported errors");
  };
  return w;
}

// go opens path and checks the answer's status (default 200).
export async function go(page, path, status = 200) {
  const resp = await page.goto(URL + path);
  assert.ok(resp, `no response for ${path}`);
  assert.equal(resp.status(), status, `GET ${path}: status ${resp.status()}, want ${status}`);
  return resp;
}

// shot saves a full-page screenshot as artifacts/ui/NAME.png. With
// docs = { name, until } and MOAT_DOCS_IMG set, it also saves the page
// from its top to the bottom of the element until (default: main) as
// docs/img/NAME, for the README.
export async function shot(page, name, docs) {
  await page.screenshot({ path: join(env("MOAT_ARTIFACTS"), `${name}.png`), fullPage: true });
  const dir = env("MOAT_DOCS_IMG");
  if (!docs || !dir) return;
  const box = await page.locator(docs.until ?? "main").boundingBox();
  assert.ok(box, `${docs.until ?? "main"} is not on the page`);
  const width = page.viewportSize().width;
  const height = Math.min(Math.ceil(box.y + box.height + 24), 1600);
  await page.screenshot({ path: join(dir, docs.name), fullPage: true, clip: { x: 0, y: 0, width, height } });
}

// assertInert checks that text (a name carrying HTML) is shown as text
// on page, and that no element came of it: the only script is the UI's
// own file, and nothing has an event-handler attribute.
export async function assertInert(page, w, text) {
  await page.waitForLoadState("load");
  const scripts = await page.$$eval("script", (s) => s.map((e) => e.getAttribute("src")));
  assert.ok(scripts.every((src) => src === "/ui/static/ui.js"), `unexpected script elements: ${JSON.stringify(scripts)}`);
  const handlers = await page.$$eval("*", (els) =>
    els.filter((e) => [...e.attributes].some((a) => a.name.startsWith("on"))).map((e) => e.outerHTML.slice(0, 80)));
  assert.deepEqual(handlers, [], "elements with event-handler attributes");
  w.assertClean();
  assert.ok(await page.getByText(text).first().isVisible(), `${text} is not shown as text on ${page.url()}`);
}

// signIn signs a person in to the UI through the embedded identity
// provider: email and password, then the TOTP code for the coordinator's
// time. shots names screenshots of the provider's pages (or "").
export async function signIn(page, who, shots = "") {
  await go(page, "/ui/login");
  await page.locator("#email").fill(who.email);
  await page.locator("#password").fill(who.password);
  if (shots) await shot(page, `${shots}-password`);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.locator("#code").waitFor();
  await page.locator("#code").fill(totp(who.totp, Number(env("MOAT_NOW"))));
  if (shots) await shot(page, `${shots}-totp`);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(URL + "/ui/");
  await page.getByText(`${who.email} · `).waitFor();
}

// person reads a person's sign-in from the environment (prefix ADMIN or
// MEMBER).
export function person(prefix) {
  return { email: env(`${prefix}_EMAIL`), password: env(`${prefix}_PASSWORD`), totp: env(`${prefix}_TOTP`) };
}
