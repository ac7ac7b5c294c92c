// A member in the UI: their own access, shown as text, and every admin
// page refused.
import assert from "node:assert/strict";
import { URL, assertInert, closeAll, env, go, launch, person, shot, signIn, step } from "./lib.mjs";

// Pages a member must not reach: admin-only, and admin-and-auditor.
const refused = ["/ui/devices", "/ui/nodes", "/ui/people", "/ui/models", "/ui/policy", "/ui/policy/history",
  "/ui/audit", "/ui/audit/chains", "/ui/audit/export.csv", "/ui/trail", "/ui/usage"];

export async function memberSuite() {
  const member = person("MEMBER");
  const { page, watch } = await launch("member");

  await step("member signs in with password and TOTP", async () => {
    await signIn(page, member);
    await page.getByRole("heading", { name: "My access", level: 1 }).waitFor();
  });

  await step("member's device named <script> is shown as text on My access", async () => {
    await assertInert(page, watch, env("EVIL_DEVICE"));
    await shot(page, "member-my-access");
  });

  await step("member sees their own budget and what is left of it on My access", async () => {
    await page.getByRole("heading", { name: "My use" }).waitFor();
    const budget = page.getByRole("row").filter({ hasText: "each person's of autogroup:member budget of 100000 tokens a day" });
    await budget.getByRole("cell", { name: "100000 tokens", exact: true }).waitFor(); // left: nothing used yet
    watch.assertClean();
  });

  await step("member has no admin links and gets 403 on every admin page", async () => {
    const nav = await page.getByRole("navigation", { name: "Main" }).innerText();
    for (const name of ["People", "Devices", "Nodes", "Models", "Policy", "Usage", "Audit", "Admin trail"]) {
      assert.ok(!nav.split("\n").some((l) => l.trim() === name), `a member's nav offers ${name}: ${JSON.stringify(nav)}`);
    }
    for (const path of refused) {
      await go(page, path, 403);
      await page.getByText("This page is for admins").waitFor();
    }
    await shot(page, "member-forbidden");
    for (const [path, form] of [["/ui/nodes/keys", { tags: "tag:gpu" }], ["/ui/policy", { text: "{}", message: "x" }]]) {
      const resp = await page.request.post(URL + path, { form });
      assert.equal(resp.status(), 403, `a member's POST ${path}`);
    }
  });
  await closeAll();
}
