// Scheme A: WeChat Pay APIv3 style request signatures and Wechatpay-* response
// signatures (docs/PROTOCOL.md). Only node:crypto is used.
import { createPrivateKey, createPublicKey, randomBytes as nodeRandomBytes, sign, verify, KeyObject } from 'node:crypto';

/** The Authorization scheme token of scheme A. */
export const SCHEME_A = 'WECHATPAY2-SHA256-RSA2048';

/** Default accepted skew of a response timestamp, both ways, in seconds. */
export const DEFAULT_RESPONSE_WINDOW_SECONDS = 300;

/**
 * Bytes of a request or response body: a Buffer/Uint8Array is used as is, a
 * string is encoded as UTF-8, null/undefined means no body.
 * @typedef {Buffer | Uint8Array | string | null | undefined} BodyInput
 */

/**
 * @param {BodyInput} body
 * @returns {Buffer}
 */
export function toBytes(body) {
  if (body === null || body === undefined) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('body must be a Buffer, a Uint8Array, a string or null');
}

/**
 * The scheme A string to sign: five lines, each ending in "\n", the last
 * included: METHOD, the request-target exactly as sent (path and query),
 * TIMESTAMP (Unix seconds), NONCE, BODY. A body-less request ends "NONCE\n\n".
 * @param {string} method
 * @param {string} target
 * @param {string} timestamp
 * @param {string} nonce
 * @param {BodyInput} body
 * @returns {Buffer}
 */
export function stringToSign(method, target, timestamp, nonce, body) {
  return Buffer.concat([Buffer.from(`${method}\n${target}\n${timestamp}\n${nonce}\n`, 'utf8'), toBytes(body), Buffer.from('\n')]);
}

/**
 * The message a response signature covers: TIMESTAMP\nNONCE\nBODY\n.
 * @param {string} timestamp
 * @param {string} nonce
 * @param {BodyInput} body
 * @returns {Buffer}
 */
export function responseMessage(timestamp, nonce, body) {
  return Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`, 'utf8'), toBytes(body), Buffer.from('\n')]);
}

/**
 * 32 upper-case hex characters (128 bits), the nonce shape WeChat Pay SDKs use.
 * @param {(n: number) => Buffer} [randomBytes] the source; node:crypto's by default
 * @returns {string}
 */
export function newNonce(randomBytes = nodeRandomBytes) {
  const b = randomBytes(16);
  if (b.length !== 16) throw new Error('quill: nonce source returned too few bytes');
  return Buffer.from(b).toString('hex').toUpperCase();
}

const FIELD = /^[\x21-\x7e]+$/;
const MERCHANT = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * @param {string | Buffer | KeyObject} key a PEM (PKCS#1 or PKCS#8) or a KeyObject
 * @returns {KeyObject}
 */
export function privateKeyOf(key) {
  return key instanceof KeyObject ? key : createPrivateKey(key);
}

/**
 * @param {string | Buffer | KeyObject} key a PEM "PUBLIC KEY" (SPKI) or a KeyObject
 * @returns {KeyObject}
 */
export function publicKeyOf(key) {
  return key instanceof KeyObject ? key : createPublicKey(key);
}

/**
 * The Wechatpay-* response signature headers.
 * @typedef {object} ResponseSignature
 * @property {string} timestamp Wechatpay-Timestamp (Unix seconds)
 * @property {string} nonce Wechatpay-Nonce
 * @property {string} serial Wechatpay-Serial (the platform key id)
 * @property {string} signature Wechatpay-Signature (base64)
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Checks a response signature with the platform key chosen by sig.serial.
 * The algorithm follows the key: RSASSA-PKCS1-v1_5 SHA-256 for RSA (what
 * Quill's scheme A uses), ECDSA P-256 SHA-256 (DER) or Ed25519. It does not
 * check the timestamp's freshness (SchemeA.verifyResponse does).
 * @param {ResponseSignature} sig
 * @param {BodyInput} body the exact response bytes
 * @param {string | Buffer | KeyObject} publicKey
 * @returns {boolean}
 */
export function verifyResponseSignature(sig, body, publicKey) {
  if (typeof sig.signature !== 'string' || !BASE64.test(sig.signature)) return false;
  const key = publicKeyOf(publicKey);
  const msg = responseMessage(sig.timestamp, sig.nonce, body);
  const raw = Buffer.from(sig.signature, 'base64');
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'ec':
      return verify('sha256', msg, key, raw);
    case 'ed25519':
      return verify(null, msg, key, raw);
    default:
      return false;
  }
}

/**
 * A request as a Signer sees it. target is the path and query exactly as they
 * go on the wire; url the full URL; headers the headers already set.
 * @typedef {object} SignableRequest
 * @property {string} method
 * @property {string} target
 * @property {string} [url]
 * @property {Record<string, string>} [headers]
 * @property {Buffer} body the exact bytes that will be sent (empty: none)
 */

/**
 * A received response: status, headers (lower-case names) and the complete body.
 * @typedef {object} ReceivedResponse
 * @property {number} status
 * @property {Record<string, string | string[] | undefined>} headers
 * @property {Buffer} body
 */

/**
 * A platform key as published by GET /v1/certificates.
 * @typedef {object} PlatformKey
 * @property {string} id serial_no
 * @property {string} [algorithm] e.g. "rsa-v1_5-sha256"
 * @property {KeyObject} publicKey
 */

/**
 * Finds platform keys by id (PlatformKeys is the fetching, caching one).
 * @typedef {object} KeySource
 * @property {(id: string) => Promise<PlatformKey>} get rejects with an UnknownKeyError
 */

/**
 * The seam for signature schemes. Scheme A is SchemeA; an RFC 9421 signer
 * implements the same two methods (setting Signature-Input, Signature and
 * Content-Digest, and verifying the response's own RFC 9421 signature).
 * @typedef {object} Signer
 * @property {(req: SignableRequest) => Record<string, string>} signRequest returns the headers to add
 * @property {(res: ReceivedResponse, keys: KeySource, req: SignableRequest) => Promise<void>} verifyResponse rejects if the response does not verify
 */

/** The response's signature is missing, stale, by an unknown key or wrong. */
export class VerificationError extends Error {
  /**
   * @param {string} message
   * @param {ErrorOptions} [options]
   */
  constructor(message, options) {
    super(message, options);
    this.name = 'VerificationError';
  }
}

/** No platform key has the id a response names (even after a refetch). */
export class UnknownKeyError extends VerificationError {
  /**
   * @param {string} message
   * @param {ErrorOptions} [options]
   */
  constructor(message, options) {
    super(message, options);
    this.name = 'UnknownKeyError';
  }
}

/**
 * @param {Record<string, string | string[] | undefined>} headers
 * @param {string} name lower case
 * @returns {string}
 */
export function header(headers, name) {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] ?? '' : v ?? '';
  }
  return '';
}

/**
 * Scheme A signer and response verifier for one merchant.
 * @implements {Signer}
 */
export class SchemeA {
  #key;
  #now;
  #randomBytes;

  /**
   * @param {object} options
   * @param {string} options.merchantId mchid
   * @param {string} options.keyId serial_no: the merchant key's id (not the platform's)
   * @param {string | Buffer | KeyObject} options.privateKey the merchant's RSA key, PEM (PKCS#1 or PKCS#8) or KeyObject
   * @param {() => number} [options.now] clock in milliseconds (Date.now); for tests
   * @param {(n: number) => Buffer} [options.randomBytes] nonce source (node:crypto); for tests
   * @param {number} [options.windowSeconds] accepted response-timestamp skew (300)
   */
  constructor({ merchantId, keyId, privateKey, now = Date.now, randomBytes = nodeRandomBytes, windowSeconds = DEFAULT_RESPONSE_WINDOW_SECONDS }) {
    if (!MERCHANT.test(merchantId ?? '')) throw new Error('quill: merchantId must be 1-64 of A-Z a-z 0-9 . _ -');
    if (!FIELD.test(keyId ?? '') || keyId.length > 128 || /["\\]/.test(keyId)) throw new Error('quill: keyId must be 1-128 visible ASCII characters without quotes');
    const key = privateKeyOf(privateKey);
    if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
      throw new Error('quill: scheme A needs an RSA key of 2048 bits or more');
    }
    this.merchantId = merchantId;
    this.keyId = keyId;
    this.windowSeconds = windowSeconds;
    this.#key = key;
    this.#now = now;
    this.#randomBytes = randomBytes;
  }

  /**
   * A fresh Authorization header value over the exact target and body.
   * @param {string} method
   * @param {string} target path and query exactly as sent
   * @param {BodyInput} [body]
   * @returns {string}
   */
  authorization(method, target, body) {
    const timestamp = String(Math.floor(this.#now() / 1000));
    const nonce = newNonce(this.#randomBytes);
    const signature = sign('sha256', stringToSign(method, target, timestamp, nonce, body), this.#key).toString('base64');
    // The field order of the official WeChat Pay Go SDK (and of Quill's Go client).
    return `${SCHEME_A} mchid="${this.merchantId}",nonce_str="${nonce}",signature="${signature}",timestamp="${timestamp}",serial_no="${this.keyId}"`;
  }

  /**
   * @param {SignableRequest} req
   * @returns {Record<string, string>}
   */
  signRequest(req) {
    return { authorization: this.authorization(req.method, req.target, req.body) };
  }

  /**
   * Checks Wechatpay-Signature over TIMESTAMP\nNONCE\nBODY\n with the platform
   * key named by Wechatpay-Serial, and that Wechatpay-Timestamp is within the
   * window. Rejects with a VerificationError (UnknownKeyError for an unknown
   * serial).
   * @param {ReceivedResponse} res
   * @param {KeySource} keys
   * @returns {Promise<void>}
   */
  async verifyResponse(res, keys) {
    const sig = {
      timestamp: header(res.headers, 'wechatpay-timestamp'),
      nonce: header(res.headers, 'wechatpay-nonce'),
      serial: header(res.headers, 'wechatpay-serial'),
      signature: header(res.headers, 'wechatpay-signature'),
    };
    if (!sig.timestamp || !sig.nonce || !sig.serial || !sig.signature) {
      throw new VerificationError('quill: response has no complete Wechatpay-* signature headers');
    }
    if (!/^[0-9]{1,18}$/.test(sig.timestamp)) throw new VerificationError('quill: Wechatpay-Timestamp is not Unix seconds');
    const skew = Math.floor(this.#now() / 1000) - Number(sig.timestamp);
    if (Math.abs(skew) > this.windowSeconds) {
      throw new VerificationError(`quill: response timestamp ${skew} s from the client clock, outside ±${this.windowSeconds} s`);
    }
    const key = await keys.get(sig.serial);
    if (!verifyResponseSignature(sig, res.body, key.publicKey)) {
      throw new VerificationError('quill: response signature does not verify');
    }
  }

  /** Never shows the key. */
  toString() {
    return `SchemeA{merchantId: ${this.merchantId}, keyId: ${this.keyId}, key: [redacted]}`;
  }

  /** Never shows the key (console.log, util.inspect). */
  [Symbol.for('nodejs.util.inspect.custom')]() {
    return this.toString();
  }
}
