// The audit pages: the record of the request the Go test made through
// the node's guard, found with the filters, opened, exported as CSV and
// JSON lines, and the hash chain of its node verified.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { env, go, shot, step } from "./lib.mjs";

const id = env("AUDIT_ID");

export async function auditSteps(page, watch) {
  const record = page.locator(`tr.record[data-id="${id}"]`);

  await step("audit: the request made through the guard is found with the filters", async () => {
    await go(page, "/ui/audit");
    const filter = page.locator("#audit-filter");
    await filter.getByLabel("Person").fill(env("USER_EMAIL"));
    await filter.getByLabel("Model").fill(env("MODEL"));
    await filter.getByLabel("Decision").selectOption("allow");
    await filter.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/\/ui\/audit\?/);
    await record.waitFor();
    for (const text of [env("USER_EMAIL"), env("MODEL"), env("NODE_NAME"), "allow"]) {
      await record.getByText(text, { exact: true }).waitFor();
    }
    await shot(page, "audit");

    await filter.getByLabel("Decision").selectOption("deny");
    await filter.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/decision=deny/);
    assert.equal(await record.count(), 0, "the allowed request is listed under decision=deny");
    await page.goBack();
    await record.waitFor();
    watch.assertClean();
  });

  await step("audit: CSV and JSON-lines exports hold the record", async () => {
    const csv = await download(page, "#export-csv");
    assert.ok(csv.split("\n")[0].includes(","), `CSV has no header: ${csv.slice(0, 200)}`);
    assert.ok(csv.split("\n").some((l) => l.includes(id) && l.includes(env("USER_EMAIL"))), `CSV lacks the record:\n${csv}`);
    const jsonl = await download(page, "#export-jsonl");
    const recs = jsonl.trim().split("\n").map((l) => JSON.parse(l));
    const r = recs.find((x) => x.id === id);
    assert.ok(r, `JSON lines lack the record:\n${jsonl}`);
    assert.equal(r.login, env("USER_EMAIL"));
    assert.equal(r.decision, "allow");
    assert.ok(r.hash && r.seq >= 1, "the exported record carries its chain fields");
  });

  await step("audit: the record's page, and its node's hash chain verified", async () => {
    await record.getByRole("link").first().click();
    const fields = page.locator("#audit-record");
    await fields.getByText(id).waitFor();
    await fields.getByText(env("NODE_NAME")).waitFor();
    await fields.getByText(env("USER_EMAIL")).waitFor();
    await page.locator("#record-hash.ok").waitFor();
    await shot(page, "audit-record");

    await page.getByRole("link", { name: "Check every node's chain" }).click();
    const chain = page.locator("#audit-chains li.chain", { hasText: env("NODE_NAME") });
    await chain.getByText("chain verified").waitFor();
    assert.ok(await chain.evaluate((li) => li.classList.contains("ok")), "the chain is not marked ok");
    await shot(page, "audit-chains");
    watch.assertClean();
  });
}

// download clicks the link sel, which downloads a file, and returns the
// file's text.
async function download(page, sel) {
  const [dl] = await Promise.all([page.waitForEvent("download"), page.locator(sel).click()]);
  const path = await dl.path();
  assert.ok(path, `${sel}: the download failed: ${await dl.failure()}`);
  return readFile(path, "utf8");
}
