// Pays URL COUNT times, one request after the other, with the official MPP client (mppx, method
// `evm`, intent `charge`: one EIP-3009 authorization per request), then replays the last
// `Authorization: Payment` header with a plain fetch. Prints one JSON line; see README.md.
//
// env: URL, BUYER_KEY, CHAIN_ID, ASSET, COUNT (default 1), MAX_ATOMIC (optional cap), METHOD, BODY,
//      CONTENT_TYPE, TOKEN_NAME (default "USD Coin"), TOKEN_VERSION (default "2"),
//      MAX_PAYMENT_RETRIES (mppx's maxPaymentRetries, default 3), TIMEOUT_MS (default 120000)
import { Mppx, evm } from 'mppx/client';
import { Receipt } from 'mppx';
import { privateKeyToAccount } from 'viem/accounts';
import {
  addressEnv, env, errorMessage, fail, finish, headersOf, intEnv, optEnv, privateKeyEnv,
  recordingFetch, requestInit, watchdog,
} from './common.mjs';

watchdog();
const url = env('URL');
const buyerKey = privateKeyEnv('BUYER_KEY');
const chainId = intEnv('CHAIN_ID');
if (chainId === undefined) fail('CHAIN_ID is not set');
const asset = addressEnv('ASSET');
const maxAtomic = optEnv('MAX_ATOMIC');
if (maxAtomic !== undefined && !/^[0-9]+$/.test(maxAtomic)) fail(`MAX_ATOMIC=${maxAtomic} is not an integer amount in atomic units`);
const count = intEnv('COUNT', 1);

const account = privateKeyToAccount(buyerKey);
const { fetch: recording, sent, realFetch } = recordingFetch();
const mppx = Mppx.create({
  methods: [
    evm.charge({
      account,
      // mppx does not take the token's EIP-712 domain from the challenge: the client supplies it.
      authorization: { name: optEnv('TOKEN_NAME') ?? 'USD Coin', version: optEnv('TOKEN_VERSION') ?? '2' },
      networks: [chainId],
      currencies: [asset],
      ...(maxAtomic !== undefined ? { maxAtomicAmount: maxAtomic } : {}),
    }),
  ],
  fetch: recording,
  maxPaymentRetries: intEnv('MAX_PAYMENT_RETRIES', 3),
  polyfill: false, // leave globalThis.fetch alone: the replay below must be a plain fetch
});
process.stderr.write(`mppx-pay: buyer ${account.address}, ${count} request(s) to ${url} on chain ${chainId}\n`);

// The response as reported: status, body text, decoded Payment-Receipt (with mppx's own decoder),
// all headers.
async function report(response) {
  const out = { status: response.status, body: await response.text(), receipt: null };
  const header = response.headers.get('Payment-Receipt');
  if (header !== null) {
    try {
      out.receipt = Receipt.deserialize(header);
    } catch (e) {
      out.receiptError = `Payment-Receipt does not decode: ${errorMessage(e)}`;
    }
  }
  out.headers = headersOf(response);
  return out;
}

const results = [];
let lastAuthorization = null;
for (let i = 0; i < count; i++) {
  sent.length = 0;
  let result;
  try {
    result = await report(await mppx.fetch(url, requestInit()));
  } catch (e) {
    result = { error: errorMessage(e) };
    process.stderr.write(`mppx-pay: request ${i + 1}: ${result.error}\n`);
  }
  const authorizations = sent.map((r) => r.headers.authorization).filter((a) => a !== undefined);
  result.authorization = authorizations.at(-1) ?? null;
  result.paidAttempts = sent.filter((r) => r.headers.authorization !== undefined || r.headers['payment-signature'] !== undefined).length;
  result.requests = sent.length;
  // Set when mppx paid through the x402 `exact` offer instead of an MPP challenge.
  const x402 = sent.map((r) => r.headers['payment-signature']).filter((s) => s !== undefined);
  if (x402.length) result.paymentSignature = x402.at(-1);
  if (result.authorization !== null) lastAuthorization = result.authorization;
  results.push(result);
}

let replay = null;
if (lastAuthorization !== null) {
  try {
    replay = await report(await realFetch(url, requestInit({ Authorization: lastAuthorization })));
  } catch (e) {
    replay = { error: errorMessage(e) };
  }
}
finish({ results, replay });
