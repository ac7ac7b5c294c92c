// The MCP page: the jira server the node serves, who may call which of
// its tools, the tools alice called through the guard (one allowed, one
// refused), and those calls in the audit log under the MCP filter.
import { env, go, shot, step } from "./lib.mjs";

export async function mcpSteps(page, watch) {
  await step("mcp: servers, who may call which tools, the calls seen, in the audit", async () => {
    await go(page, "/ui/mcp");
    const jira = page.locator("section", { has: page.locator("h2#mcp-jira") });
    await jira.getByText("Jira over MCP").waitFor();
    await jira.getByText("group:ml may call").waitFor();
    for (const text of ["get_issue", "search_*", "jira.corp.example:443"]) {
      await jira.locator("code", { hasText: text }).first().waitFor();
    }
    await jira.locator("tr", { hasText: "get_issue" }).getByRole("cell", { name: "1", exact: true }).waitFor();
    await jira.locator("tr", { hasText: "delete_issue" }).getByRole("cell", { name: "1", exact: true }).waitFor();
    await jira.getByText(env("NODE_NAME")).waitFor();
    await shot(page, "mcp");

    await page.getByRole("link", { name: "All MCP calls in the audit log" }).click();
    await page.waitForURL(/api=mcp/);
    await page.locator("#audit-records").getByText("mcp:jira:get_issue").first().waitFor();
    await page.locator("#audit-records").getByText("mcp:jira:delete_issue").first().waitFor();
    const kind = page.locator("#audit-filter").getByLabel("Kind");
    if ((await kind.inputValue()) !== "mcp") throw new Error("the audit filter does not show the MCP kind selected");
    watch.assertClean();
  });
}
