// QuillClient: signed requests over mutual TLS with node:https; every response
// verified before it is returned.
import https from 'node:https';
import { SchemeA, header, publicKeyOf, toBytes } from './scheme-a.js';
import { PlatformKeys, parseListing, staticKeys } from './platform-keys.js';
import { SchemeB } from './scheme-b.js';

/** @typedef {import('./scheme-a.js').Signer} Signer */
/** @typedef {import('./scheme-a.js').SignableRequest} SignableRequest */
/** @typedef {import('./scheme-a.js').ReceivedResponse} ReceivedResponse */
/** @typedef {import('./scheme-a.js').BodyInput} BodyInput */
/** @typedef {import('./scheme-a.js').KeySource} KeySource */

/** Where Quill publishes its platform keys. */
export const CERTIFICATES_PATH = '/v1/certificates';

/** The largest response body read (and so verifiable) by default. */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 << 20;

/**
 * A response reached the client but did not verify: it is not provably
 * Quill's. The request did reach the server and may have taken effect, so
 * query the order (or retry it with the same order id) before acting. status
 * and requestId are as received, unverified.
 */
export class UnverifiedResponseError extends Error {
  /**
   * @param {string} message
   * @param {{status: number, requestId: string, cause: unknown}} details
   */
  constructor(message, { status, requestId, cause }) {
    super(message, { cause });
    this.name = 'UnverifiedResponseError';
    this.status = status;
    this.requestId = requestId;
  }
}

/**
 * A verified response.
 * @typedef {object} QuillResponse
 * @property {number} status
 * @property {Record<string, string | string[] | undefined>} headers lower-case names
 * @property {Buffer} body the verified bytes
 * @property {() => any} json the body parsed as JSON
 */

/** Signs requests to Quill and verifies every response. */
export class QuillClient {
  #signer;
  #agent;
  #base;
  #maxResponseBytes;
  #timeoutMs;

  /**
   * Either merchantId + keyId + privateKey (scheme A), scheme: 'B' + keyId +
   * privateKey (RFC 9421; the merchant is the client certificate's), or signer.
   * @param {object} options
   * @param {string} options.baseUrl e.g. "https://127.0.0.1:8443"
   * @param {string | Buffer} [options.ca] PEM of the CA that issued Quill's server certificate
   * @param {string | Buffer} [options.cert] PEM of the merchant's mTLS client certificate
   * @param {string | Buffer} [options.key] PEM of its key (the TLS key, not the signing key)
   * @param {https.Agent} [options.agent] instead of ca/cert/key
   * @param {string} [options.merchantId]
   * @param {string} [options.keyId]
   * @param {string | Buffer | import('node:crypto').KeyObject} [options.privateKey] the request-signing key
   * @param {'A' | 'B'} [options.scheme] which scheme keyId and privateKey sign with (A)
   * @param {import('./scheme-b.js').Algorithm} [options.algorithm] scheme B: rsa-pss-sha512 for an RSA key registered for it
   * @param {Signer} [options.signer] any other signer (SchemeA and SchemeB are two)
   * @param {Array<{id: string, publicKey: string | Buffer | import('node:crypto').KeyObject}>} [options.pinnedKeys]
   *   trust only these platform keys and never fetch GET /v1/certificates
   * @param {number} [options.refetchIntervalMs]
   * @param {number} [options.maxResponseBytes]
   * @param {number} [options.timeoutMs] per request (30 s)
   * @param {() => number} [options.now] clock in ms; for tests
   * @param {(n: number) => Buffer} [options.randomBytes] nonce source; for tests
   */
  constructor(options) {
    const { baseUrl, ca, cert, key, agent, signer, pinnedKeys, now, randomBytes } = options;
    const u = new URL(baseUrl);
    if (u.protocol !== 'https:') throw new Error('quill: baseUrl must be https (Quill speaks mutual TLS only)');
    this.#base = u;
    if (signer && (options.merchantId || options.keyId || options.privateKey || options.scheme)) {
      throw new Error('quill: give either signer or merchantId/keyId/privateKey/scheme');
    }
    if (options.scheme !== undefined && options.scheme !== 'A' && options.scheme !== 'B') throw new Error("quill: scheme is 'A' or 'B'");
    this.#signer = signer ?? (options.scheme === 'B'
      ? new SchemeB({ keyId: options.keyId ?? '', privateKey: options.privateKey ?? '', algorithm: options.algorithm, now, randomBytes })
      : new SchemeA({ merchantId: options.merchantId ?? '', keyId: options.keyId ?? '', privateKey: options.privateKey ?? '', now, randomBytes }));
    if (typeof this.#signer.signRequest !== 'function' || typeof this.#signer.verifyResponse !== 'function') {
      throw new Error('quill: a signer needs signRequest and verifyResponse');
    }
    this.#agent = agent ?? new https.Agent({ ca, cert, key, keepAlive: true, minVersion: 'TLSv1.2' });
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    /** @type {KeySource} */
    this.keys = pinnedKeys
      ? staticKeys(pinnedKeys.map((k) => ({ id: k.id, publicKey: publicKeyOf(k.publicKey) })))
      : new PlatformKeys({ fetch: () => this.#fetchListing(), refetchIntervalMs: options.refetchIntervalMs, now });
  }

  /**
   * Signs and sends one request and returns the verified response, whatever
   * its status. Rejects with an UnverifiedResponseError if the response does
   * not verify, and with the transport's error if there is no response.
   * @param {string} method
   * @param {string} target path and query exactly as they will be sent (no re-encoding happens)
   * @param {BodyInput} [body] sent byte for byte as signed
   * @param {Record<string, string>} [headers] extra headers (content-type defaults to application/json)
   * @returns {Promise<QuillResponse>}
   */
  async request(method, target, body, headers = {}) {
    if (!target.startsWith('/')) throw new Error('quill: target must start with "/"');
    const bytes = toBytes(body);
    /** @type {Record<string, string>} */
    const h = { accept: 'application/json', ...lower(headers) };
    if (bytes.length > 0 && !h['content-type']) h['content-type'] = 'application/json';
    /** @type {SignableRequest} */
    const req = { method: method.toUpperCase(), target, url: new URL(target, this.#base).href, headers: h, body: bytes };
    Object.assign(h, lower(this.#signer.signRequest(req)));
    const res = await this.#send(req);
    try {
      await this.#signer.verifyResponse(res, this.keys, req);
    } catch (err) {
      throw new UnverifiedResponseError(`quill: response not verified: ${err instanceof Error ? err.message : err}`, {
        status: res.status, requestId: header(res.headers, 'request-id'), cause: err,
      });
    }
    return { ...res, json: () => JSON.parse(res.body.toString('utf8')) };
  }

  /**
   * @param {SignableRequest} req
   * @returns {Promise<ReceivedResponse>}
   */
  #send(req) {
    return new Promise((resolve, reject) => {
      const r = https.request({
        protocol: 'https:', hostname: this.#base.hostname, port: this.#base.port || 443,
        method: req.method, path: req.target, agent: this.#agent, timeout: this.#timeoutMs,
        headers: { ...req.headers, 'content-length': String(req.body.length) },
      }, (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        let n = 0;
        res.on('data', (c) => {
          n += c.length;
          if (n > this.#maxResponseBytes) {
            res.destroy(new Error(`quill: response body over ${this.#maxResponseBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      r.on('timeout', () => r.destroy(new Error('quill: request timed out')));
      r.on('error', reject);
      r.end(req.body);
    });
  }

  /**
   * A signed GET of the platform key listing; its own response must verify
   * under a key it lists (the trust anchor is Quill's TLS certificate).
   * @returns {Promise<Map<string, import('./scheme-a.js').PlatformKey>>}
   */
  async #fetchListing() {
    const headers = { accept: 'application/json' };
    /** @type {SignableRequest} */
    const req = { method: 'GET', target: CERTIFICATES_PATH, url: new URL(CERTIFICATES_PATH, this.#base).href, headers, body: Buffer.alloc(0) };
    Object.assign(headers, lower(this.#signer.signRequest(req)));
    const res = await this.#send(req);
    if (res.status !== 200) throw new Error(`GET ${CERTIFICATES_PATH}: status ${res.status}`);
    const found = parseListing(res.body);
    await this.#signer.verifyResponse(res, staticKeys(found.values()), req);
    return found;
  }

  /** Closes idle keep-alive connections. */
  close() {
    this.#agent.destroy();
  }
}

/**
 * @param {Record<string, string>} h
 * @returns {Record<string, string>}
 */
function lower(h) {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}
