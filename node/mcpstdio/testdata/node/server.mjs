// A stdio MCP server made with the official TypeScript SDK: the stand-in
// Jira of node/mcpguard/mcptest, for TestNodeServer. It runs under the
// node's supervisor (node/mcpstdio), so V8's JIT must be allowed.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import * as z from "zod";

const server = new McpServer({ name: "jira-node", version: "1.0.0" });
const text = (s) => ({ content: [{ type: "text", text: s }] });

server.registerTool("search_issues", { description: "search issues", inputSchema: { query: z.string() } },
  async ({ query }) => text(`found 2 issues for ${query}`));
server.registerTool("get_issue", { description: "read one issue", inputSchema: { id: z.string() } },
  async ({ id }) => {
    // Hot enough for V8 to compile it (baseline and optimized code).
    let s = 0;
    for (let i = 0; i < 1e6; i++) s += i % 7;
    return text(`Issue ${id}: printer broken (${s})`);
  });
server.registerTool("delete_issue", { description: "delete an issue", inputSchema: { id: z.string() } },
  async () => { process.exit(3); });

await server.connect(new StdioServerTransport());
