// Scheme B against Go's signing package over real HTTPS. The Go test
// TestJSSchemeBAgainstFakeQuill (quillclient/js_test.go) starts an httptest
// server that verifies requests with signing.MessageVerifier and signs its
// answers (an echo of the request body) with signing.MessageResponseSigner,
// and runs this file with:
//   QUILL_FAKE_B_URL            the server
//   QUILL_FAKE_B_CA             its certificate (PEM)
//   QUILL_FAKE_B_KEYS           JSON [{id, algorithm, file}]: the merchant keys as registered
//   QUILL_FAKE_B_PLATFORM_ID, QUILL_FAKE_B_PLATFORM_PUB  the Ed25519 platform key
// Without QUILL_FAKE_B_URL it is skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { QuillClient } from '../index.js';

const env = process.env;
const url = env.QUILL_FAKE_B_URL;

test('scheme B requests and responses between this client and Go', { skip: !url && 'QUILL_FAKE_B_URL not set' }, async (t) => {
  const ca = readFileSync(env.QUILL_FAKE_B_CA ?? '');
  /** @type {Array<{id: string, algorithm: any, file: string}>} */
  const keys = JSON.parse(env.QUILL_FAKE_B_KEYS ?? '[]');
  assert.equal(keys.length, 4);
  const body = '{ "order_id":"ORD000000000001",  "amount":"2.34",\n "description":"咖啡 ☕" }';
  for (const k of keys) {
    await t.test(k.algorithm, async () => {
      const c = new QuillClient({ baseUrl: url ?? '', ca, scheme: 'B', keyId: k.id, privateKey: readFileSync(k.file), algorithm: k.algorithm });
      t.after(() => c.close());
      const res = await c.request('POST', '/v1/payments?x=a%20b', body);
      assert.equal(res.status, 200, res.body.toString());
      assert.equal(res.body.toString('utf8'), body, 'the server received the exact bytes');
      const get = await c.request('GET', '/v1/payments/ORD000000000001');
      assert.equal(get.status, 200);
      assert.equal(/** @type {any} */ (c.keys).fetches, 1);
    });
  }
  await t.test('an RSA key registered for PSS, signed with the default algorithm: a signed 401', async () => {
    const pss = keys.find((k) => k.algorithm === 'rsa-pss-sha512');
    assert.ok(pss);
    // Pinned: the key listing itself needs a correctly signed request.
    const c = new QuillClient({
      baseUrl: url ?? '', ca, scheme: 'B', keyId: pss.id, privateKey: readFileSync(pss.file),
      pinnedKeys: [{ id: env.QUILL_FAKE_B_PLATFORM_ID ?? '', publicKey: readFileSync(env.QUILL_FAKE_B_PLATFORM_PUB ?? '') }],
    });
    t.after(() => c.close());
    const res = await c.request('GET', '/v1/payments/ORD000000000001');
    assert.equal(res.status, 401);
    assert.match(res.json().hint, /rsa-pss-sha512/);
  });
});
