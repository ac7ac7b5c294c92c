// Passkeys in a real browser: Debian's chromium with a virtual WebAuthn
// authenticator (DevTools protocol: ctap2, internal transport, user
// verification), driven by Playwright. Run by go test
// ./internal/passkeytest, which starts the coordinator on localhost,
// starts the device logins whose links this script opens, and checks
// afterwards what each sign-in recorded and what the guard decides.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set: run this with go test ./internal/passkeytest`);
  return v;
};
const PASSWORD = env("PASSWORD");
const logins = JSON.parse(env("LOGINS")); // name → device login link

// totp is the RFC 6238 code of a base32 secret at unix time t.
function totp(secret, t) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.toUpperCase().replace(/=+$/, "")) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(8 * i, 8 * i + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}
assert.equal(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59), "287082", "TOTP self-test");

// now asks the Go test to move the coordinator's clock on by one TOTP
// step (so that a code can be used again) and returns the new time.
async function nextStep() {
  const r = await fetch(env("CLOCK_URL"), { method: "POST" });
  assert.equal(r.status, 200, "advance the clock");
  return Number(await r.text());
}

let stepN = 0;
async function step(name, fn) {
  const t0 = Date.now();
  console.log(`step ${++stepN}: ${name}`);
  await fn();
  console.log(`  ok (${Date.now() - t0} ms)`);
}

const watchdog = setTimeout(() => { console.error("FAIL: the passkey tests took longer than 80 s"); process.exit(1); }, 80_000);
const context = await chromium.launchPersistentContext(mkdtempSync(join(env("MOAT_PROFILES"), "p-")), {
  executablePath: env("MOAT_CHROMIUM"), headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
});
context.setDefaultTimeout(10_000);
const page = context.pages()[0] ?? (await context.newPage());
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`); });
page.on("dialog", (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss().catch(() => {}); });

// The virtual authenticator: a platform authenticator that verifies its
// user (as a fingerprint reader or PIN would) and keeps resident keys.
const cdp = await context.newCDPSession(page);
await cdp.send("WebAuthn.enable");
const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
  options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
});
const credentials = async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;

// passkeyPosts records the answers posted to the passkey forms.
const passkeyPosts = [];
page.on("request", (r) => {
  if (r.method() === "POST" && /\/(login\/passkey|passkey)$/.test(new URL(r.url()).pathname)) passkeyPosts.push(r.postData());
});

async function text() { return page.locator("main").innerText(); }
// expectText waits (across navigations) until the page says want.
async function expectText(want, what) {
  try {
    await page.locator("main", { hasText: want }).waitFor({ timeout: 10_000 });
  } catch {
    assert.fail(`${what}: the page does not say "${want}":\n${await text().catch(() => "")}`);
  }
}

// startLogin opens a device login link, confirms the device and signs in
// at the embedded IdP with email and password.
async function startLogin(name, email) {
  await page.goto(logins[name]);
  await page.locator("button[type=submit]").click();
  await page.fill("#email", email);
  await page.fill("#password", PASSWORD);
  await page.locator("button[type=submit]").click();
  await page.waitForLoadState();
}

// submitAnswer posts the passkey form of the page with answer instead of
// what the authenticator would say (a replay or a forgery).
async function submitAnswer(answer, ceremony) {
  await page.evaluate(([a, c]) => {
    const f = document.querySelector("form[data-passkey]");
    f.elements.answer.value = a;
    if (c) f.elements.ceremony.value = c;
    f.submit();
  }, [answer, ceremony]);
  await page.waitForLoadState();
}

try {
  await step("pat sets up the account with a passkey instead of an app", async () => {
    await page.goto(env("PAT_SETUP"));
    await page.fill("#password", PASSWORD);
    await page.fill("#confirm", PASSWORD);
    await page.fill("#name", "test key");
    await page.locator("#passkey").click();
    await expectText("Your password and passkey are set", "setup");
    assert.equal((await credentials()).length, 1, "the authenticator holds one credential");
  });

  let captured, removedKey;
  await step("pat signs a device in with the passkey (no code asked)", async () => {
    await startLogin("pat1", env("PAT_EMAIL"));
    await expectText("Confirm with your passkey", "second step");
    assert.equal(await page.locator("#code").count(), 0, "a passkey-only account is offered no code form");
    await page.locator("#passkey").click();
    await expectText("is now connected as " + env("PAT_EMAIL"), "passkey sign-in");
    captured = Object.fromEntries(new URLSearchParams(passkeyPosts.at(-1)));
    assert.ok(captured.answer?.includes("authenticatorData"), "the posted answer is an assertion");
  });

  await step("a replayed assertion is refused, as is a forged credential", async () => {
    await startLogin("pat2", env("PAT_EMAIL"));
    await submitAnswer(captured.answer); // the old answer to this sign-in's new challenge
    await expectText("the passkey was not accepted", "replayed answer, new ceremony");
    await submitAnswer(captured.answer, captured.ceremony); // the old ceremony too: spent
    await expectText("expired or was already used", "replayed answer and ceremony");
    const forged = JSON.parse(captured.answer);
    forged.id = forged.rawId = Buffer.from("not a registered credential").toString("base64url");
    await submitAnswer(JSON.stringify(forged));
    await expectText("the passkey was not accepted", "unknown credential");
  });

  await step("a credential the authenticator no longer holds cannot sign in; the registered one still can", async () => {
    const [cred] = await credentials();
    await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: cred.credentialId });
    await page.locator("#passkey").click();
    await expectText("The passkey did not answer", "removed credential");
    await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: cred });
    // The second step again, with a fresh ceremony (a reload would post the form again).
    const id = await page.inputValue("input[name=authRequestID]");
    await page.goto(new URL("/idp/login/totp?authRequestID=" + encodeURIComponent(id), page.url()).href);
    await page.locator("#passkey").click();
    await expectText("is now connected as " + env("PAT_EMAIL"), "passkey sign-in after the refusals");
  });

  await step("pat manages passkeys on the account page: adds, names and removes one", async () => {
    await page.goto(env("MOAT_URL") + "/ui/login");
    await page.fill("#email", env("PAT_EMAIL"));
    await page.fill("#password", PASSWORD);
    await page.locator("button[type=submit]").click();
    await page.locator("#passkey").click();
    await page.waitForURL("**/ui/**");
    await page.goto(env("MOAT_URL") + "/ui/account/passkeys");
    await expectText("test key", "account page lists the passkey");
    // One authenticator holds one passkey per account (the page excludes
    // the registered ones), so the second is made as if on another device.
    const [held] = await credentials();
    await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: held.credentialId });
    await page.fill("#name", "second key");
    await page.locator("#passkey").click();
    await expectText("second key", "account page after registering");
    removedKey = held; // removed below; kept to try it in the next step
    const first = page.locator("form.passkey", { hasText: "test key" });
    await first.locator("input[name=name]").fill("old key");
    await first.locator("button[value=rename]").click();
    await expectText("old key", "renamed");
    await page.locator("form.passkey", { hasText: "old key" }).locator("button[value=remove]").click();
    await page.locator("main", { hasText: "old key" }).waitFor({ state: "detached" });
    await expectText("second key", "the other passkey stays");
    await page.locator("form.passkey").first().locator("button[value=remove]").click();
    await expectText("This is your only second factor", "the last passkey is kept");
  });

  await step("a removed passkey is refused even when the authenticator still signs with it", async () => {
    // The removed credential on a second authenticator (a security key).
    const key = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "usb", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    await cdp.send("WebAuthn.addCredential", { authenticatorId: key.authenticatorId, credential: removedKey });
    await startLogin("pat3", env("PAT_EMAIL"));
    // Make the browser ask for the removed credential only.
    await page.evaluate((id) => {
      const f = document.querySelector("form[data-passkey]");
      const o = JSON.parse(f.dataset.options);
      o.allowCredentials = [{ type: "public-key", id }];
      f.dataset.options = JSON.stringify(o);
    }, Buffer.from(removedKey.credentialId, "base64").toString("base64url"));
    await page.locator("#passkey").click();
    await expectText("the passkey was not accepted", "removed passkey");
    await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: key.authenticatorId });
  });

  await step("tom (app at the IdP) is asked for the coordinator's own factor and registers a passkey", async () => {
    // A new sign-in half a minute later, as people sign in: the
    // coordinator's per-address sign-in budget (its own clock) refills.
    const now = await nextStep();
    await startLogin("tom1", env("TOM_EMAIL"));
    await page.fill("#code", totp(env("TOM_TOTP"), now));
    await page.locator("button[type=submit]").click();
    await expectText("Your identity provider did not confirm a second factor", "step-up page");
    await page.fill("#name", "tom's laptop");
    await page.locator("#passkey").click();
    await expectText("is now connected as " + env("TOM_EMAIL"), "step-up registration");
    assert.equal((await credentials()).length, 2, "the authenticator holds pat's second and tom's credentials");
  });

  await step("tom's next sign-in asks for that passkey", async () => {
    const now = await nextStep();
    await startLogin("tom2", env("TOM_EMAIL"));
    await page.fill("#code", totp(env("TOM_TOTP"), now));
    await page.locator("button[type=submit]").click();
    await expectText("Confirm with your passkey", "step-up sign-in");
    await page.locator("#passkey").click();
    await expectText("is now connected as " + env("TOM_EMAIL"), "step-up sign-in");
  });

  await step("tim enrolls an authenticator app at the step-up instead", async () => {
    const now = await nextStep();
    await startLogin("tim1", env("TIM_EMAIL"));
    await page.fill("#code", totp(env("TIM_TOTP"), now));
    await page.locator("button[type=submit]").click();
    const secret = (await page.locator(".secret code").innerText()).trim();
    await page.fill("#code", totp(secret, now));
    await page.locator("form[action$='/mfa'] button[type=submit]").click();
    await expectText("is now connected as " + env("TIM_EMAIL"), "step-up with an app");
  });

  assert.deepEqual(problems, [], "the browser reported errors");
  console.log("all passkey checks passed");
} catch (e) {
  console.error(`FAIL in step ${stepN}: ${e.stack ?? e}`);
  await page.screenshot({ path: join(env("MOAT_ARTIFACTS"), `FAILED-passkey-${stepN}.png`), fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await context.close();
  clearTimeout(watchdog);
}
