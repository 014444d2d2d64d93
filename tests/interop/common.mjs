// Shared by the interop scripts: environment parsing, the one-line JSON result, fatal errors,
// a fetch that records the headers each request carried, and a watchdog.
//
// Contract with the Rust e2e tests: exactly one JSON line on stdout, diagnostics on stderr;
// exit 0 when the script ran (whatever HTTP statuses it saw), exit 2 with a one-line
// "interop: ..." message on stderr when it could not run.

/** Print the message on stderr and exit 2 (the script could not run). */
export function fail(message) {
  process.stderr.write(`interop: ${message}\n`);
  process.exit(2);
}

/** Print the result as one JSON line on stdout, then exit 0 once stdout is flushed. */
export function finish(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

/** A required environment variable. */
export function env(name) {
  const value = process.env[name];
  if (value === undefined || value === '') fail(`${name} is not set`);
  return value;
}

/** An optional environment variable (undefined when unset or empty). */
export function optEnv(name) {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** A positive integer from the environment, with a default. */
export function intEnv(name, fallback) {
  const raw = optEnv(name);
  if (raw === undefined) return fallback;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < 1) fail(`${name}=${raw} is not a positive integer`);
  return Number(raw);
}

/** A JSON value from the environment. */
export function jsonEnv(name, fallback) {
  const raw = optEnv(name);
  if (raw === undefined) {
    if (fallback === undefined) fail(`${name} is not set`);
    return fallback;
  }
  try {
    return JSON.parse(raw);
  } catch (e) {
    fail(`${name} is not valid JSON: ${e.message}`);
  }
}

export function privateKeyEnv(name) {
  const key = env(name);
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) fail(`${name} is not a 0x-prefixed 32-byte hex private key`);
  return key;
}

export function addressEnv(name) {
  const address = env(name);
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) fail(`${name}=${address} is not a 0x-prefixed 20-byte hex address`);
  return address;
}

/** Exit 2 if the whole script has not finished after TIMEOUT_MS (default 120000) milliseconds. */
export function watchdog() {
  const ms = intEnv('TIMEOUT_MS', 120000);
  setTimeout(() => fail(`timed out after ${ms} ms (TIMEOUT_MS)`), ms).unref();
}

/** An error's message with its causes ("fetch failed: connect ECONNREFUSED 127.0.0.1:1"). */
export function errorMessage(error) {
  const parts = [];
  for (let e = error, depth = 0; e != null && depth < 5; e = e.cause, depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
  }
  return parts.join(': ');
}

/** The request init for URL from METHOD, BODY and CONTENT_TYPE (extra headers merged in). */
export function requestInit(extraHeaders = {}) {
  const method = optEnv('METHOD') ?? 'GET';
  const body = optEnv('BODY');
  const headers = { ...extraHeaders };
  const contentType = optEnv('CONTENT_TYPE');
  if (contentType) headers['Content-Type'] = contentType;
  const init = { method, headers };
  if (body !== undefined) init.body = body;
  return init;
}

/**
 * A fetch that records, in `sent`, the headers of every request it makes (names lowercase), then
 * forwards to the real fetch. `sent` can be truncated between requests.
 */
export function recordingFetch() {
  const sent = [];
  const realFetch = globalThis.fetch;
  const fetch = async (input, init) => {
    const request = new Request(input, init);
    sent.push({ method: request.method, url: request.url, headers: Object.fromEntries(request.headers) });
    return realFetch(request);
  };
  return { fetch, sent, realFetch };
}

/** All response headers as an object (names lowercase). */
export function headersOf(response) {
  return Object.fromEntries(response.headers);
}
