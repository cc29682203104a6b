// Platform (response-signing) keys: fetched from GET /v1/certificates, cached
// by id, refetched once when a response names an unknown id.
import { createPublicKey } from 'node:crypto';
import { UnknownKeyError, VerificationError } from './scheme-a.js';

/** @typedef {import('./scheme-a.js').PlatformKey} PlatformKey */
/** @typedef {import('./scheme-a.js').KeySource} KeySource */

/** How long an id a fetch did not find stays unknown before it may cause another fetch (ms). */
export const DEFAULT_REFETCH_INTERVAL_MS = 30_000;

/** Least time after a fetch that found nothing new before the next (ms). */
const MIN_FETCH_GAP_MS = 1_000;
const MAX_MISSES = 1024;

/**
 * Parses a GET /v1/certificates body:
 * {"data":[{"serial_no":"…","algorithm":"rsa-v1_5-sha256","public_key":"-----BEGIN PUBLIC KEY-----…"}]}
 * Entries whose key does not parse are left out.
 * @param {Buffer | string} body
 * @returns {Map<string, PlatformKey>}
 */
export function parseListing(body) {
  const list = JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : body);
  /** @type {Map<string, PlatformKey>} */
  const found = new Map();
  for (const d of Array.isArray(list?.data) ? list.data : []) {
    if (typeof d?.serial_no !== 'string' || d.serial_no === '' || typeof d.public_key !== 'string') continue;
    try {
      found.set(d.serial_no, { id: d.serial_no, algorithm: d.algorithm, publicKey: createPublicKey(d.public_key) });
    } catch {
      // a key type this runtime cannot load cannot verify anything here
    }
  }
  if (found.size === 0) throw new VerificationError('quill: key listing has no usable key');
  return found;
}

/**
 * A KeySource over a fixed set: pinned keys, or a listing being checked.
 * @param {Iterable<PlatformKey>} keys
 * @returns {KeySource}
 */
export function staticKeys(keys) {
  const m = new Map([...keys].map((k) => [k.id, k]));
  return {
    async get(id) {
      const k = m.get(id);
      if (!k) throw new UnknownKeyError(`quill: unknown platform key ${JSON.stringify(id)}`);
      return k;
    },
  };
}

/**
 * Fetching, caching platform keys. get(id) answers from the cache; an unknown
 * id (a platform-key rotation) triggers one fetch, coalesced across concurrent
 * callers. An id a fetch did not find is refused without fetching for
 * refetchIntervalMs, and after such a fruitless (or failed) fetch no other
 * fetch happens for a second. Each fetch replaces the set, so a key Quill stops
 * publishing stops verifying.
 * @implements {KeySource}
 */
export class PlatformKeys {
  /** @type {Map<string, PlatformKey>} */
  #keys = new Map();
  /** @type {Map<string, number>} */
  #misses = new Map();
  #lastMiss = -Infinity;
  /** @type {Promise<Map<string, PlatformKey>> | null} */
  #inflight = null;

  /**
   * @param {object} options
   * @param {() => Promise<Map<string, PlatformKey>>} options.fetch fetches and checks the listing
   * @param {number} [options.refetchIntervalMs]
   * @param {() => number} [options.now] clock in ms; for tests
   */
  constructor({ fetch, refetchIntervalMs = DEFAULT_REFETCH_INTERVAL_MS, now = Date.now }) {
    this.fetch = fetch;
    this.refetchIntervalMs = refetchIntervalMs;
    this.now = now;
    /** How many fetches were started (for tests and diagnostics). */
    this.fetches = 0;
  }

  /**
   * @param {string} id
   * @returns {Promise<PlatformKey>}
   */
  async get(id) {
    const cached = this.#keys.get(id);
    if (cached) return cached;
    if (this.#inflight) {
      await this.#inflight.catch(() => {});
      const k = this.#keys.get(id);
      if (k) return k;
    }
    const now = this.now();
    const missed = this.#misses.get(id);
    if (missed !== undefined && now - missed < this.refetchIntervalMs) {
      throw new UnknownKeyError(`quill: unknown platform key ${JSON.stringify(id)} (not listed ${Math.round((now - missed) / 1000)} s ago)`);
    }
    if (now - this.#lastMiss < Math.min(MIN_FETCH_GAP_MS, this.refetchIntervalMs)) {
      throw new UnknownKeyError(`quill: unknown platform key ${JSON.stringify(id)} (a fetch found nothing new under a second ago)`);
    }
    this.fetches++;
    this.#inflight = this.fetch();
    /** @type {unknown} */
    let fetchError = null;
    try {
      this.#keys = await this.#inflight;
      const k = this.#keys.get(id);
      if (k) return k;
    } catch (err) {
      fetchError = err;
    } finally {
      this.#inflight = null;
    }
    if (this.#misses.size >= MAX_MISSES) this.#misses.clear();
    this.#misses.set(id, now);
    this.#lastMiss = now;
    if (fetchError) throw new VerificationError(`quill: fetch platform keys: ${fetchError instanceof Error ? fetchError.message : fetchError}`, { cause: fetchError });
    throw new UnknownKeyError(`quill: unknown platform key ${JSON.stringify(id)}: not listed by the server`);
  }
}
