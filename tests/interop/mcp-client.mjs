// Drives an MCP stdio server (the real one: `farthing mcp`) with the official TypeScript SDK client:
// connect, list tools, make CALLS in order, close. Prints one JSON line; see README.md.
//
// env: FARTHING_BIN (the server binary), MCP_ARGS (JSON array of its arguments), CALLS (JSON array
//      of {name, arguments}, default []), TIMEOUT_MS (default 120000, whole script),
//      CALL_TIMEOUT_MS (per request, default 60000). Every FARTHING_* variable, and RUST_LOG and
//      RUST_BACKTRACE, reach the child; the SDK's default environment would drop them.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { env, errorMessage, fail, finish, intEnv, jsonEnv, watchdog } from './common.mjs';

watchdog();
const command = env('FARTHING_BIN');
const args = jsonEnv('MCP_ARGS', []);
if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) fail('MCP_ARGS must be a JSON array of strings');
const calls = jsonEnv('CALLS', []);
if (!Array.isArray(calls) || !calls.every((c) => c && typeof c.name === 'string')) {
  fail('CALLS must be a JSON array of {"name": string, "arguments": object}');
}
const timeout = intEnv('CALL_TIMEOUT_MS', 60000);

const childEnv = getDefaultEnvironment();
for (const [key, value] of Object.entries(process.env)) {
  if (key.startsWith('FARTHING_') || key === 'RUST_LOG' || key === 'RUST_BACKTRACE') childEnv[key] = value;
}

const transport = new StdioClientTransport({ command, args, env: childEnv, stderr: 'inherit' });
const client = new Client({ name: 'farthing-interop', version: '0.0.0' });
try {
  await client.connect(transport, { timeout });
} catch (e) {
  fail(`could not start or initialize the MCP server ${command} ${JSON.stringify(args)}: ${errorMessage(e)}`);
}
const server = client.getServerVersion();
process.stderr.write(`mcp-client: connected to ${server?.name} ${server?.version}\n`);

let tools;
try {
  tools = (await client.listTools(undefined, { timeout })).tools.map((t) => ({
    name: t.name,
    description: t.description ?? null,
    inputSchema: t.inputSchema,
    ...(t.outputSchema ? { outputSchema: t.outputSchema } : {}),
  }));
} catch (e) {
  await client.close().catch(() => {});
  fail(`tools/list failed: ${errorMessage(e)}`);
}

// A call the server answers, even with isError, is a result; a JSON-RPC error (unknown tool,
// invalid arguments, timeout) is recorded as {"error": ..., "code": ...}.
const results = [];
for (const call of calls) {
  try {
    const r = await client.callTool({ name: call.name, arguments: call.arguments ?? {} }, undefined, { timeout });
    results.push({
      isError: r.isError === true,
      content: r.content ?? [],
      structuredContent: r.structuredContent ?? null,
      ...(r._meta ? { _meta: r._meta } : {}),
    });
  } catch (e) {
    results.push({ error: errorMessage(e), ...(e?.code !== undefined ? { code: e.code } : {}) });
    process.stderr.write(`mcp-client: ${call.name}: ${errorMessage(e)}\n`);
  }
}
await client.close().catch((e) => process.stderr.write(`mcp-client: close: ${errorMessage(e)}\n`));
finish({ tools, calls: results });
