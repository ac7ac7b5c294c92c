// An admin in the UI: sign-in, the overview, nodes and enrollment keys,
// the policy editor, the audit records, people and models, revoking a
// device, the admin trail, and signing out.
import assert from "node:assert/strict";
import { auditSteps } from "./audit.mjs";
import { mcpSteps } from "./mcp.mjs";
import { URL, assertInert, env, go, launch, person, shot, signIn, step } from "./lib.mjs";
import { policySteps } from "./policy.mjs";

const evilDevice = env("EVIL_DEVICE");
const laptop = env("LAPTOP_NAME");

// row is the table row that contains text.
const row = (page, text) => page.getByRole("row").filter({ hasText: text });

export async function adminSuite() {
  const b = await launch("admin");
  const { page, watch } = b;
  await b.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: URL });

  await step("admin signs in through the embedded IdP with TOTP", async () => {
    await signIn(page, person("ADMIN"), "idp");
    await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
  });

  await step("overview counts the scene", async () => {
    const stat = async (label) => Number(await page.locator(".stat", { hasText: label }).locator(".n").innerText());
    assert.equal(await stat("nodes"), 2, "nodes on the overview");
    assert.equal(await stat("models"), 1, "models on the overview");
    assert.ok((await stat("requests last hour")) >= 1, "the request made in the test is not counted");
    await page.locator(".chart svg").waitFor();
    await shot(page, "overview", { name: "ui-overview.png" });
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, "overview-phone");
    await page.setViewportSize({ width: 1280, height: 800 });
    watch.assertClean();
  });

  await step("nodes: hostile node name shown as text; an enrollment key gives the install command", () => nodes(page, watch));
  await policySteps(page, watch);
  await auditSteps(page, watch);
  await mcpSteps(page, watch);
  await step("people and models", () => peopleAndModels(page, watch));
  await step("a person's second factors, reset after confirming", () => resetFactors(page, watch));
  await step("usage: charts over time, the top spenders and the budgets", () => usage(page, watch));
  await step("devices: <script> hostname shown as text, revoked after confirming, gone", () => revoke(page, watch));
  await step("devices: a device's key expired now after confirming", () => expire(page, watch));

  await step("admin trail records what the admin did", async () => {
    await go(page, "/ui/trail");
    const trail = page.locator("#admin-trail");
    for (const action of ["enrollkey.create", "policy.save", "policy.rollback", "mfa.reset", "device.revoke", "device.expire"]) {
      await trail.getByRole("row").filter({ hasText: action }).filter({ hasText: env("ADMIN_EMAIL") }).first().waitFor();
    }
    await assertInert(page, watch, evilDevice); // the revoked device's name is the target's detail
    await shot(page, "trail");
  });

  await step("admin signs out", async () => {
    await page.getByRole("link", { name: "Sign out" }).click();
    await page.locator("button#confirm").click();
    await page.getByRole("heading", { name: "Signed out" }).waitFor();
    await page.goto(URL + "/ui/");
    assert.ok(!page.url().startsWith(URL + "/ui/"), `signed out, /ui/ still shows ${page.url()}`);
    watch.assertClean();
  });
}

async function nodes(page, watch) {
  await go(page, "/ui/nodes");
  // The models cell: the model first, the node's MCP servers after it.
  await row(page, env("NODE_NAME")).getByRole("cell", { name: new RegExp("^" + env("MODEL") + "( MCP: .+)?$") }).waitFor();
  await row(page, env("NODE_NAME")).getByText("online").waitFor();
  await row(page, env("NODE_NAME")).getByText("weights of " + env("MODEL")).waitFor(); // at-rest status
  await row(page, env("NODE_NAME")).getByText("no pinned weights").waitFor();
  await assertInert(page, watch, env("EVIL_NODE"));
  await page.getByLabel("Tags").fill("tag:gpu");
  await page.getByRole("button", { name: "Create enrollment key" }).click();
  const cmd = page.locator("#install-cmd");
  await cmd.waitFor();
  const text = await cmd.innerText();
  // Downloads install.sh and its signature, checks it with the release
  // key carried on the line, then runs it asking for the key.
  assert.match(text, /^d=\$\(mktemp -d\) && curl -fsSL -o "\$d\/install\.sh" 'http:\/\/127\.0\.0\.1:\d+\/install\.sh' .*openssl pkeyutl -verify .* && sudo sh "\$d\/install\.sh" --coordinator 'http:\/\/127\.0\.0\.1:\d+' --release-key RW\S+ --key -$/, "install command (verifies install.sh, asks for the key)");
  const key = await page.locator("#enroll-key").innerText();
  assert.match(key, /^moat_ek_\w+$/, "the enrollment key, shown apart");
  await shot(page, "nodes-key-created");
  await page.locator('button[data-copy="install-cmd"]').click();
  await page.getByRole("button", { name: "Copied" }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), text, "clipboard after Copy");
  await go(page, "/ui/nodes");
  assert.equal(await page.locator("#install-cmd").count(), 0, "the install command is shown again");
  assert.ok(!(await page.content()).includes(key), "the key's secret is on the page again");
  await shot(page, "nodes");
  watch.assertClean();
}

async function peopleAndModels(page, watch) {
  await go(page, "/ui/people");
  for (const email of [env("ADMIN_EMAIL"), env("USER_EMAIL"), env("MEMBER_EMAIL")]) {
    await row(page, email).waitFor();
  }
  await shot(page, "people");
  await page.getByRole("link", { name: env("MEMBER_EMAIL") }).click();
  await page.getByRole("heading", { name: env("MEMBER_EMAIL"), level: 1 }).waitFor();
  await assertInert(page, watch, evilDevice);
  await shot(page, "person");

  await go(page, "/ui/models");
  const llama = page.locator("section.model", { has: page.getByRole("heading", { name: env("MODEL") }) });
  await llama.getByText(env("NODE_NAME")).waitFor();
  await llama.getByText("online").waitFor();
  await shot(page, "models");
  watch.assertClean();
}

// resetFactors resets alice's step-up factors from her page: her
// authenticator app and device-bound passkey at the coordinator go, her
// embedded IdP app stays (a new setup link replaces that).
async function resetFactors(page, watch) {
  await go(page, "/ui/people");
  await page.getByRole("link", { name: env("USER_EMAIL") }).click();
  await page.getByRole("heading", { name: env("USER_EMAIL"), level: 1 }).waitFor();
  const factors = page.locator("#factors");
  const passkey = row(page, env("PASSKEY_NAME"));
  await passkey.getByText("hwk").waitFor();
  await passkey.getByText("device-bound").waitFor();
  await factors.getByRole("row").filter({ hasText: "authenticator app" }).filter({ hasText: "coordinator" }).waitFor();
  await factors.getByRole("row").filter({ hasText: "authenticator app" }).filter({ hasText: "embedded IdP" }).waitFor();
  await shot(page, "person-factors");
  await page.getByRole("link", { name: "Reset second factors…" }).click();
  const confirm = page.locator("main form").getByRole("button");
  await confirm.waitFor();
  assert.equal(await confirm.innerText(), `Reset ${env("USER_EMAIL")}'s second factors`, "the confirmation's button");
  await page.getByText("a new setup link").waitFor(); // the embedded IdP's factors stay
  assert.equal(await page.locator('main form input[name="csrf"]').count(), 1, "the confirming form carries the CSRF token");
  await shot(page, "person-reset-mfa");
  await confirm.click();
  await page.getByRole("heading", { name: env("USER_EMAIL"), level: 1 }).waitFor();
  assert.equal(await passkey.count(), 0, "the step-up passkey is still listed");
  assert.equal(await factors.getByRole("row").filter({ hasText: "coordinator" }).count(), 0, "a coordinator factor is still listed");
  await factors.getByRole("row").filter({ hasText: "embedded IdP" }).waitFor();
  assert.equal(await page.getByRole("link", { name: "Reset second factors…" }).count(), 0, "nothing left to reset, yet the link is offered");
  watch.assertClean();
}

async function revoke(page, watch) {
  await go(page, "/ui/devices");
  await assertInert(page, watch, evilDevice);
  await row(page, laptop).waitFor();
  await shot(page, "devices");
  await row(page, evilDevice).getByRole("link", { name: "Revoke…" }).click();
  const confirm = page.locator("main form").getByRole("button");
  await confirm.waitFor();
  await assertInert(page, watch, evilDevice);
  await shot(page, "device-revoke");
  await confirm.click();
  await page.waitForURL(URL + "/ui/devices");
  await row(page, laptop).waitFor();
  assert.equal(await page.getByText(evilDevice).count(), 0, "the revoked device is still listed");
  watch.assertClean();
}

async function expire(page, watch) {
  const laptopRow = row(page, laptop);
  const expires = laptopRow.getByRole("cell").nth(5); // Device, Owner, Kind, Addresses, Paths, Expires
  const before = await expires.innerText();
  await laptopRow.getByRole("link", { name: "Expire now…" }).click();
  const confirm = page.locator("main form").getByRole("button");
  await confirm.waitFor();
  assert.equal(await confirm.innerText(), `Expire ${laptop} now`, "the confirmation's button");
  await confirm.click();
  await page.waitForURL(URL + "/ui/devices");
  // The coordinator's clock stands still during the script: the key now
  // expires at that time.
  const now = new Date(Number(env("MOAT_NOW")) * 1000).toISOString();
  const want = `${now.slice(0, 10)} ${now.slice(11, 16)} UTC`;
  assert.equal((await expires.innerText()).replace(/\s+/g, " "), want, `expiry after expiring (was ${before})`);
  await shot(page, "devices-expired");
  watch.assertClean();
}

async function usage(page, watch) {
  await go(page, "/ui/usage");
  await page.getByRole("heading", { name: "Tokens per day" }).waitFor();
  await page.getByRole("heading", { name: "Spend per day (EUR)" }).waitFor();
  assert.equal(await page.locator("figure.chart svg rect.ok").count(), 2, "today's bar in each chart, nothing before");
  await page.locator("#people").getByRole("row").filter({ hasText: env("USER_EMAIL") }).waitFor();
  await page.locator("#groups").getByRole("row").filter({ hasText: "group:ml" }).waitFor();
  await page.locator("#models").getByRole("row").filter({ hasText: env("MODEL") }).waitFor();
  await page.locator("#nodes").getByRole("row").filter({ hasText: env("NODE_NAME") }).waitFor();
  await page.getByRole("row").filter({ hasText: "group:ml's budget of 100.00 EUR a month" }).waitFor();
  await shot(page, "usage");
  watch.assertClean();
}
