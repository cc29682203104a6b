// PlatformKeys: fetched on first use, refetched once for a new id, rate-limited
// for ids that stay unknown, replaced on each fetch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { PlatformKeys, parseListing, UnknownKeyError, VerificationError } from '../index.js';

const pub = () => generateKeyPairSync('ed25519').publicKey;

function setup() {
  let now = 1_000_000;
  /** @type {Map<string, any>} */
  let listed = new Map([['P1', { id: 'P1', publicKey: pub() }]]);
  /** @type {Error | null} */
  let failWith = null;
  const keys = new PlatformKeys({
    now: () => now,
    fetch: async () => {
      await new Promise((r) => setTimeout(r, 5));
      if (failWith) throw failWith;
      return new Map(listed);
    },
  });
  return {
    keys,
    advance: (/** @type {number} */ ms) => { now += ms; },
    list: (/** @type {string[]} */ ids) => { listed = new Map(ids.map((id) => [id, { id, publicKey: pub() }])); },
    fail: (/** @type {Error | null} */ e) => { failWith = e; },
  };
}

test('first use fetches once; known ids never fetch', async () => {
  const s = setup();
  await Promise.all([s.keys.get('P1'), s.keys.get('P1'), s.keys.get('P1')]);
  await s.keys.get('P1');
  assert.equal(s.keys.fetches, 1);
});

test('a new id (rotation) is one refetch, shared by concurrent callers', async () => {
  const s = setup();
  await s.keys.get('P1');
  s.list(['P1', 'P2']);
  await Promise.all(Array.from({ length: 8 }, () => s.keys.get('P2')));
  assert.equal(s.keys.fetches, 2);
});

test('an id that stays unknown is refetched once per interval', async () => {
  const s = setup();
  await s.keys.get('P1');
  for (let i = 0; i < 3; i++) await assert.rejects(s.keys.get('ROGUE'), UnknownKeyError);
  assert.equal(s.keys.fetches, 2);
  s.advance(29_000);
  await assert.rejects(s.keys.get('ROGUE'), UnknownKeyError);
  assert.equal(s.keys.fetches, 2);
  s.advance(1_000);
  await assert.rejects(s.keys.get('ROGUE'), UnknownKeyError);
  assert.equal(s.keys.fetches, 3);
  // right after a fruitless fetch, other unknown ids wait a second too
  await assert.rejects(s.keys.get('OTHER'), /under a second/);
  assert.equal(s.keys.fetches, 3);
});

test('a failed fetch is rate-limited like a fruitless one', async () => {
  const s = setup();
  s.fail(new Error('connection refused'));
  await assert.rejects(s.keys.get('P1'), (err) => err instanceof VerificationError && /connection refused/.test(err.message));
  await assert.rejects(s.keys.get('P1'), UnknownKeyError);
  assert.equal(s.keys.fetches, 1);
  s.fail(null);
  s.advance(30_000);
  await s.keys.get('P1');
  assert.equal(s.keys.fetches, 2);
});

test('a key no longer listed stops verifying after the next fetch', async () => {
  const s = setup();
  await s.keys.get('P1');
  s.list(['P2']);
  await s.keys.get('P2');
  await assert.rejects(s.keys.get('P1'), UnknownKeyError);
});

test('parseListing keeps usable keys and refuses an empty listing', () => {
  const pem = pub().export({ type: 'spki', format: 'pem' });
  const m = parseListing(JSON.stringify({ data: [{ serial_no: 'A', algorithm: 'ed25519', public_key: pem }, { serial_no: 'B', public_key: 'junk' }, { public_key: pem }] }));
  assert.deepEqual([...m.keys()], ['A']);
  assert.equal(m.get('A')?.algorithm, 'ed25519');
  assert.throws(() => parseListing('{"data":[]}'), /no usable key/);
  assert.throws(() => parseListing('not json'));
});
