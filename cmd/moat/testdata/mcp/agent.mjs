// An agent's side of MCP with the official TypeScript SDK: connect to
// MOAT_MCP_URL with the headers in MOAT_MCP_HEADERS (JSON, as `moat mcp`
// prints them), list the tools, call a granted and an ungranted one.
// Prints one JSON line per step.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const transport = new StreamableHTTPClientTransport(new URL(process.env.MOAT_MCP_URL), {
  requestInit: { headers: JSON.parse(process.env.MOAT_MCP_HEADERS) },
});
const client = new Client({ name: "ts-agent", version: "1.0.0" });
await client.connect(transport);

const { tools } = await client.listTools();
console.log(JSON.stringify({ tools: tools.map((t) => t.name) }));

const res = await client.callTool({ name: "get_issue", arguments: { id: "OPS-9" } });
console.log(JSON.stringify({ text: res.content.map((c) => c.text).join("") }));

try {
  await client.callTool({ name: "delete_issue", arguments: { id: "OPS-9" } });
  console.log(JSON.stringify({ refused: false }));
} catch (e) {
  console.log(JSON.stringify({ refused: true, code: e.code, message: e.message }));
}
await client.close();
