// Pays URL COUNT times, one request after the other, with the official x402 v2 client
// (@x402/fetch wrapFetchWithPayment + @x402/evm `exact`), then replays the last PAYMENT-SIGNATURE
// with a plain fetch. Prints one JSON line; see README.md.
//
// env: URL, BUYER_KEY, CHAIN_ID, ASSET, MAX_ATOMIC, COUNT (default 1), METHOD, BODY, CONTENT_TYPE,
//      TIMEOUT_MS (default 120000)
import { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } from '@x402/fetch';
import { ExactEvmScheme } from '@x402/evm';
import { privateKeyToAccount } from 'viem/accounts';
import {
  addressEnv, env, errorMessage, fail, finish, headersOf, intEnv, privateKeyEnv,
  recordingFetch, requestInit, watchdog,
} from './common.mjs';

watchdog();
const url = env('URL');
const buyerKey = privateKeyEnv('BUYER_KEY');
const chainId = intEnv('CHAIN_ID');
if (chainId === undefined) fail('CHAIN_ID is not set');
const asset = addressEnv('ASSET');
const maxAtomic = env('MAX_ATOMIC');
if (!/^[0-9]+$/.test(maxAtomic)) fail(`MAX_ATOMIC=${maxAtomic} is not an integer amount in atomic units`);
const count = intEnv('COUNT', 1);
const network = `eip155:${chainId}`;

const account = privateKeyToAccount(buyerKey);
const client = new x402Client()
  .register(network, new ExactEvmScheme(account))
  .setSpendControls({ allowedAssets: [{ network, asset, maxAmountPerPayment: maxAtomic }] });
const { fetch: recording, sent, realFetch } = recordingFetch();
const payingFetch = wrapFetchWithPayment(recording, client);
process.stderr.write(`x402-pay: buyer ${account.address}, ${count} request(s) to ${url} on ${network}\n`);

// The response as reported: status, body text, decoded PAYMENT-RESPONSE (with the client's own,
// strict decoder), all headers.
async function report(response) {
  const out = { status: response.status, body: await response.text(), paymentResponse: null };
  const header = response.headers.get('PAYMENT-RESPONSE');
  if (header !== null) {
    try {
      out.paymentResponse = decodePaymentResponseHeader(header);
    } catch (e) {
      out.paymentResponseError = `PAYMENT-RESPONSE does not decode: ${errorMessage(e)}`;
    }
  }
  out.headers = headersOf(response);
  return out;
}

const results = [];
let lastSignature = null;
for (let i = 0; i < count; i++) {
  sent.length = 0;
  let result;
  try {
    result = await report(await payingFetch(url, requestInit()));
  } catch (e) {
    result = { error: errorMessage(e) };
    process.stderr.write(`x402-pay: request ${i + 1}: ${result.error}\n`);
  }
  const signatures = sent.map((r) => r.headers['payment-signature']).filter((s) => s !== undefined);
  result.paymentSignature = signatures.at(-1) ?? null;
  result.paidAttempts = signatures.length;
  result.requests = sent.length;
  if (result.paymentSignature !== null) lastSignature = result.paymentSignature;
  results.push(result);
}

let replay = null;
if (lastSignature !== null) {
  try {
    replay = await report(await realFetch(url, requestInit({ 'PAYMENT-SIGNATURE': lastSignature })));
  } catch (e) {
    replay = { error: errorMessage(e) };
  }
}
finish({ results, replay });
