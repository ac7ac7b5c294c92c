// moat's web UI in a real browser. Run by go test ./internal/uitest,
// which builds the scene and passes its names in the environment. Each
// step prints its name; the first failed check stops the script with a
// message, a screenshot (artifacts/ui/FAILED-step.png) and exit status 1.
import assert from "node:assert/strict";
import { join } from "node:path";
import { URL, assertInert, closeAll, current, env, go, launch, person, shot, signIn, step } from "./lib.mjs";

const admin = person("ADMIN");
const member = person("MEMBER");
const evilDevice = env("EVIL_DEVICE");
const evilNode = env("EVIL_NODE");
const laptop = env("LAPTOP_NAME");

// The Go test's context is the backstop; this stops first, tidily.
const watchdog = setTimeout(() => {
  console.error("FAIL: the UI tests took longer than 50 s");
  closeAll().finally(() => process.exit(1));
}, 50_000);

let page;
try {
  await memberSuite();
  await adminSuite();
  console.log("all UI checks passed");
} catch (e) {
  console.error(`FAIL in step ${current}: ${e.stack ?? e}`);
  if (page) {
    await page.screenshot({ path: join(env("MOAT_ARTIFACTS"), `FAILED-${current}.png`), fullPage: true }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await closeAll();
  clearTimeout(watchdog);
}

// memberSuite: a member sees their own access, shown as text, and is
// refused every admin page.
async function memberSuite() {
  const b = await launch("member");
  page = b.page;
  await step("member signs in with password and TOTP", async () => {
    await signIn(page, member);
    await page.getByRole("heading", { name: "My access" }).waitFor();
  });
  await step("member's device named <script> is shown as text", async () => {
    await assertInert(page, b.watch, evilDevice);
    await shot(page, "member-my-access");
  });
  await step("member has no admin links and gets 403 on admin pages", async () => {
    const nav = await page.getByRole("navigation", { name: "Main" }).innerText();
    for (const name of ["Devices", "Nodes", "People", "Policy", "Audit"]) {
      assert.ok(!nav.includes(name), `a member's nav offers ${name}: ${nav}`);
    }
    for (const path of ["/ui/devices", "/ui/nodes"]) {
      await go(page, path, 403);
      await page.getByText("This page is for admins").waitFor();
    }
    await shot(page, "member-forbidden");
    const resp = await page.request.post(URL + "/ui/nodes/keys", { form: { tags: "tag:gpu" } });
    assert.equal(resp.status(), 403, "a member's POST to create an enrollment key");
  });
  await closeAll();
}

// adminSuite: an admin signs in and uses every page.
async function adminSuite() {
  const b = await launch("admin");
  page = b.page;
  await b.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: URL });

  await step("admin signs in through the embedded IdP with TOTP", async () => {
    await signIn(page, admin, "idp");
    await page.getByRole("heading", { name: "Overview" }).waitFor();
  });

  await step("overview counts the scene", async () => {
    const stat = async (label) => Number(await page.locator(".stat", { hasText: label }).locator(".n").innerText());
    assert.equal(await stat("nodes"), 2, "nodes on the overview");
    assert.equal(await stat("models"), 1, "models on the overview");
    assert.ok((await stat("requests last hour")) >= 1, "the request made in the test is not counted");
    await page.locator("svg.chart").waitFor();
    await shot(page, "overview", "ui-overview.png");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, "overview-phone");
    await page.setViewportSize({ width: 1280, height: 800 });
    b.watch.assertClean();
  });

  await step("nodes: hostile node name shown as text; enrollment key gives the install command", async () => {
    await go(page, "/ui/nodes");
    await page.getByRole("row", { name: new RegExp(env("NODE_NAME")) }).getByText(env("MODEL")).waitFor();
    await assertInert(page, b.watch, evilNode);
    await page.getByLabel("Tags").fill("tag:gpu");
    await page.getByRole("button", { name: "Create enrollment key" }).click();
    const cmd = page.locator("#install-cmd");
    await cmd.waitFor();
    const text = await cmd.innerText();
    assert.match(text, /install\.sh/, "install command");
    assert.match(text, /--key moat_ek_/, "install command carries the key");
    await shot(page, "nodes-key-created");
    await page.getByRole("button", { name: "Copy" }).click();
    await page.getByRole("button", { name: "Copied" }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), text, "clipboard after Copy");
    await go(page, "/ui/nodes");
    assert.equal(await page.locator("#install-cmd").count(), 0, "the key's secret is shown again");
    assert.ok(!(await page.content()).includes(text.match(/moat_ek_\S+/)[0]), "the key's secret is on the page again");
    await shot(page, "nodes");
  });

  await step("devices: <script> hostname shown as text, revoked with confirmation, gone", async () => {
    await go(page, "/ui/devices");
    await assertInert(page, b.watch, evilDevice);
    await page.getByRole("row", { name: new RegExp(laptop) }).waitFor();
    await shot(page, "devices");
    await page.getByRole("row").filter({ hasText: evilDevice }).getByRole("link", { name: "Revoke…" }).click();
    await page.getByRole("heading", { name: "Revoke a device" }).waitFor();
    await assertInert(page, b.watch, evilDevice);
    await shot(page, "device-revoke");
    await page.getByRole("button", { name: `Revoke ${evilDevice}` }).click();
    await page.waitForURL(URL + "/ui/devices");
    await page.getByRole("row", { name: new RegExp(laptop) }).waitFor();
    assert.equal(await page.getByText(evilDevice).count(), 0, "the revoked device is still listed");
    b.watch.assertClean();
  });

  await step("admin signs out", async () => {
    await page.getByRole("link", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Signed out" }).waitFor();
    await page.goto(URL + "/ui/");
    assert.ok(!page.url().startsWith(URL + "/ui/"), `signed out, /ui/ still shows ${page.url()}`);
  });
}
