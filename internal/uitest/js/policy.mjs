// The policy editor: a change whose test fails is refused with the
// failing assertion shown; the fixed policy saves with its message, shows
// in the history, and an older version can be rolled back to.
import assert from "node:assert/strict";
import { env, go, shot, step } from "./lib.mjs";

const member = env("MEMBER_EMAIL");
const message = `give ${member} the model`;

export async function policySteps(page, watch) {
  const text = page.locator("#policy-text");

  await step("policy: a change whose test fails is refused, showing the failing assertion", async () => {
    await go(page, "/ui/policy");
    await page.locator("#policy-current").getByText("version").first().waitFor();
    const before = await text.inputValue();
    const grant = `"group:ml": ["${env("USER_EMAIL")}"]`;
    assert.ok(before.includes(grant), `the editor does not hold the scene's policy:\n${before}`);
    await text.fill(before.replace(grant, `"group:ml": ["${env("USER_EMAIL")}", "${member}"]`));
    await page.locator("#policy-message").fill(message);
    await page.locator("#policy-save").click();

    await page.getByRole("alert").filter({ hasText: "Not saved" }).waitFor();
    const failed = page.locator("tr.assertion.failed");
    assert.equal(await failed.count(), 1, "failed assertions shown");
    await failed.getByRole("cell", { name: member, exact: true }).waitFor();
    await failed.getByText(`should be denied model:${env("MODEL")}`).waitFor();
    assert.equal(await page.locator("tr.assertion.passed").count(), 1, "passing assertions shown");
    await page.locator("#policy-diff .diff").getByText(member).waitFor();
    assert.ok((await text.inputValue()).includes(member), "the edit was not kept in the editor");

    // The assertion's line link puts the cursor on that line.
    const link = failed.locator("a[data-line]");
    const line = Number(await link.getAttribute("data-line"));
    await link.click();
    const cursorLine = await text.evaluate((t) => t.value.slice(0, t.selectionStart).split("\n").length);
    assert.equal(cursorLine, line, "the failing assertion's link moves the cursor to its line");
    await shot(page, "policy-test-failed", { name: "ui-policy.png", until: "#policy-results" });
    watch.assertClean();
  });

  await step("policy: fixed test, saved with its message, in force and in the history", async () => {
    const failing = `{ "src": "${member}", "deny": ["model:${env("MODEL")}"] }`;
    const edited = await text.inputValue();
    assert.ok(edited.includes(failing), `no test ${failing} in the editor`);
    await text.fill(edited.replace(failing, `{ "src": "${member}", "accept": ["model:${env("MODEL")}"] }`));
    await page.locator("#policy-validate").click();
    await page.locator("#policy-results .verdict.ok").waitFor();
    await page.locator("#policy-message").fill(message);
    await page.locator("#policy-save").click();
    await page.locator("#policy-saved").waitFor();
    const current = await page.locator("#policy-current").innerText();
    assert.ok(current.includes(message) && current.includes(env("ADMIN_EMAIL")), `policy in force: ${current}`);
    await shot(page, "policy");

    await go(page, "/ui/policy/history");
    const newest = page.locator("li.version").first();
    await newest.getByText(message).waitFor();
    await newest.getByText("in force").waitFor();
    await newest.locator("summary").click();
    await newest.locator(".diff").getByText(member).first().waitFor();
    await shot(page, "policy-history");
    watch.assertClean();
  });

  await step("policy: roll back to the first version", async () => {
    const first = page.locator("li.version").last();
    const id = (await first.getAttribute("id")).slice(1);
    await first.getByRole("link", { name: `Version ${id}` }).click();
    await page.getByRole("link", { name: "Roll back to this version…" }).click();
    await page.locator("#policy-rollback").waitFor();
    assert.equal(await page.locator(".verdict.bad").count(), 0, "the version to roll back to fails its checks");
    await shot(page, "policy-rollback");
    await page.locator("#policy-rollback").click();
    await page.locator("#policy-saved").waitFor();
    assert.ok((await page.locator("#policy-current").innerText()).includes(`rollback to version ${id}`), "rollback message");
    assert.ok((await text.inputValue()).includes(`"group:ml": ["${env("USER_EMAIL")}"]`), "the first version's text is not in force");
    watch.assertClean();
  });
}
