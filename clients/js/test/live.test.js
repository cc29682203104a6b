// Against a real running Quill. The Go test TestJSClientAgainstQuill
// (quillclient/js_test.go) starts the server and runs this file with:
//   QUILL_BASE_URL, QUILL_CA, QUILL_CLIENT_CERT, QUILL_CLIENT_KEY,
//   QUILL_MCHID, QUILL_KEY_ID, QUILL_SIGNING_KEY  the merchant's dev material
//   QUILL_PLATFORM_PUB                            the platform public key (PEM) of the scheme's responses
//   QUILL_SCHEME                                  A (default) or B (RFC 9421)
//   QUILL_ORDER_ID, QUILL_PAYMENT_BODY            a fresh order id and the payment to send (2.34 CNY)
// Without QUILL_BASE_URL it is skipped (QUILL_LIVE_REQUIRED=1 makes that a failure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { QuillClient, UnverifiedResponseError, UnknownKeyError } from '../index.js';

const env = process.env;
const live = Boolean(env.QUILL_BASE_URL);
const scheme = env.QUILL_SCHEME ?? 'A';

// What differs between the schemes: how the client signs, which platform key
// id a response names, and the platform key type (for a wrong pinned key).
const schemes = /** @type {Record<string, {options: () => object, responseKeyId: (h: Record<string, any>) => string, otherPlatformKey: () => import('node:crypto').KeyObject}>} */ ({
  A: {
    options: () => ({ merchantId: env.QUILL_MCHID }),
    responseKeyId: (h) => String(h['wechatpay-serial']),
    otherPlatformKey: () => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey,
  },
  B: {
    options: () => ({ scheme: 'B' }),
    responseKeyId: (h) => /keyid="([^"]*)"/.exec(String(h['signature-input']))?.[1] ?? '',
    otherPlatformKey: () => generateKeyPairSync('ed25519').publicKey,
  },
});
const sc = schemes[scheme];

test('live configuration', { skip: !live && env.QUILL_LIVE_REQUIRED !== '1' && 'QUILL_BASE_URL not set' }, () => {
  assert.ok(live, 'QUILL_LIVE_REQUIRED=1 but QUILL_BASE_URL is not set');
  assert.ok(sc, `QUILL_SCHEME=${scheme}: A or B`);
});

/** @param {object} [extra] */
function client(extra = {}) {
  return new QuillClient({
    baseUrl: env.QUILL_BASE_URL ?? '',
    ca: readFileSync(env.QUILL_CA ?? ''),
    cert: readFileSync(env.QUILL_CLIENT_CERT ?? ''),
    key: readFileSync(env.QUILL_CLIENT_KEY ?? ''),
    ...sc.options(),
    keyId: env.QUILL_KEY_ID,
    privateKey: readFileSync(env.QUILL_SIGNING_KEY ?? ''),
    ...extra,
  });
}

test(`pay, query and fail through a real Quill (scheme ${scheme})`, { skip: !live && 'QUILL_BASE_URL not set' }, async (t) => {
  const c = client();
  t.after(() => c.close());
  const order = env.QUILL_ORDER_ID ?? '';
  // Odd spacing and UTF-8 (from the Go test, which then compares the stored
  // evidence with it): the server verifies, and stores, the exact bytes sent.
  const body = env.QUILL_PAYMENT_BODY ?? '';
  assert.ok(body.includes(order));

  let platformSerial = '';
  await t.test('payment', async () => {
    const res = await c.request('POST', '/v1/payments', body);
    assert.equal(res.status, 200, res.body.toString());
    const p = res.json();
    assert.equal(p.order_id, order);
    assert.equal(p.amount, '2.34');
    assert.equal(p.status, 'succeeded');
    assert.equal(p.description, '咖啡 ☕');
    platformSerial = sc.responseKeyId(res.headers);
    assert.ok(platformSerial);
  });

  await t.test('the same payment again is an idempotent replay', async () => {
    const res = await c.request('POST', '/v1/payments', body);
    assert.equal(res.status, 200);
    assert.equal(res.headers['idempotent-replayed'], 'true');
  });

  await t.test('query with a query string, signed as sent', async () => {
    const res = await c.request('GET', `/v1/payments/${order}?mchid=${env.QUILL_MCHID}&x=a%20b`);
    assert.equal(res.status, 200);
    assert.equal(res.json().order_id, order);
  });

  await t.test('an error answer is a verified response', async () => {
    const res = await c.request('GET', '/v1/payments/ORD999999999999');
    assert.equal(res.status, 404);
    assert.equal(res.json().code, 'not_found');
  });

  await t.test('the platform keys were fetched once', () => {
    assert.equal(/** @type {any} */ (c.keys).fetches, 1);
  });

  await t.test('a response under another key than the pinned one is refused', async () => {
    const other = sc.otherPlatformKey();
    const pinned = client({ pinnedKeys: [{ id: platformSerial, publicKey: other }] });
    t.after(() => pinned.close());
    await assert.rejects(pinned.request('GET', `/v1/payments/${order}`), (err) => {
      assert.ok(err instanceof UnverifiedResponseError, String(err));
      assert.equal(err.status, 200);
      assert.match(err.requestId, /./);
      return true;
    });
    const unknown = client({ pinnedKeys: [{ id: 'NOT-THE-SERIAL', publicKey: other }] });
    t.after(() => unknown.close());
    await assert.rejects(unknown.request('GET', `/v1/payments/${order}`), (err) => err instanceof UnverifiedResponseError && err.cause instanceof UnknownKeyError);
  });

  await t.test('a signature by the wrong merchant key is a signed 401 with a hint', async () => {
    const wrong = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    // Pinned (the right platform key, from the dev material): the key listing
    // itself needs a correctly signed request.
    const bad = client({ privateKey: wrong, pinnedKeys: [{ id: platformSerial, publicKey: readFileSync(env.QUILL_PLATFORM_PUB ?? '') }] });
    t.after(() => bad.close());
    const res = await bad.request('GET', `/v1/payments/${order}`);
    assert.equal(res.status, 401);
    assert.equal(res.json().code, 'signature_invalid');
  });
});
