// Scheme B: RFC 9421 HTTP Message Signatures on requests, with an RFC 9530
// Content-Digest, and verification of Quill's RFC 9421 response signatures
// (Ed25519 or ECDSA P-256 platform keys), which cover the request's own
// signature. Only node:crypto is used; this is an implementation of its own,
// checked against the Go one through testdata/vectors/scheme-b.json.
import { createHash, sign, verify, timingSafeEqual, constants, randomBytes as nodeRandomBytes } from 'node:crypto';
import {
  parseDictionary, serializeDictionary, serializeItem, serializeMember,
  param, member, sfString, StructuredFieldError,
} from './sfv.js';
import { DEFAULT_RESPONSE_WINDOW_SECONDS, VerificationError, UnknownKeyError, newNonce, privateKeyOf, publicKeyOf, toBytes } from './scheme-a.js';

/** @typedef {import('./scheme-a.js').Signer} Signer */
/** @typedef {import('./scheme-a.js').SignableRequest} SignableRequest */
/** @typedef {import('./scheme-a.js').ReceivedResponse} ReceivedResponse */
/** @typedef {import('./scheme-a.js').KeySource} KeySource */
/** @typedef {import('./scheme-a.js').BodyInput} BodyInput */
/** @typedef {import('./sfv.js').Item} Item */
/** @typedef {import('./sfv.js').InnerList} InnerList */
/** @typedef {import('./sfv.js').Params} Params */
/** @typedef {import('node:crypto').KeyObject} KeyObject */

/** @typedef {'rsa-v1_5-sha256' | 'rsa-pss-sha512' | 'ecdsa-p256-sha256' | 'ed25519'} Algorithm */

/** The signature label this client uses. */
export const DEFAULT_LABEL = 'sig1';

const MAX_LABELS = 8;
const MAX_COVERED = 32;
const PSS_SALT_LENGTH = 64; // RFC 9421 §3.3.1

/** @typedef {Record<string, string | string[] | undefined>} Headers */

/**
 * A message as the signature base sees it. A request has method, scheme,
 * authority (the Host as sent) and target (the raw request-target); a
 * response has status, and request (the request it answers) for components
 * with the req flag. headers: field lines by name, any case.
 * @typedef {object} HttpMessage
 * @property {string} [method]
 * @property {string} [scheme]
 * @property {string} [authority]
 * @property {string} [target]
 * @property {number} [status]
 * @property {Headers} headers
 * @property {HttpMessage} [request]
 */

/** Fields whose structured type (Dictionary) is known, for the sf parameter. */
const DICT_FIELDS = new Set(['signature', 'signature-input', 'content-digest', 'repr-digest', 'accept-signature', 'want-content-digest', 'want-repr-digest', 'example-dict']);

/**
 * The field lines named name (any case), or undefined if there is none.
 * @param {Headers} headers
 * @param {string} name lower case
 * @returns {string[] | undefined}
 */
function fieldLines(headers, name) {
  /** @type {string[] | undefined} */
  let lines;
  for (const k of Object.keys(headers).sort()) {
    if (k.toLowerCase() !== name) continue;
    const v = headers[k];
    if (v === undefined) continue;
    lines = (lines ?? []).concat(v);
  }
  return lines;
}

/** @param {string[]} lines */
const joinLines = (lines) => lines.map((l) => l.replace(/^[ \t]+|[ \t]+$/g, '')).join(', ');

/**
 * RFC 9421 §2.2.3: lower case, without the scheme's default port.
 * @param {string} scheme
 * @param {string} authority
 */
function normAuthority(scheme, authority) {
  const a = authority.toLowerCase();
  const s = scheme.toLowerCase();
  if (s === 'https' && a.endsWith(':443')) return a.slice(0, -4);
  if (s === 'http' && a.endsWith(':80')) return a.slice(0, -3);
  return a;
}

/** @param {string} target */
const isAbsolute = (target) => /^https?:\/\//i.test(target);

/**
 * The raw path and query (without "?") of a request-target.
 * @param {string} target
 * @returns {{path: string, query: string}}
 */
function splitTarget(target) {
  let rest = target;
  if (isAbsolute(target)) {
    rest = target.slice(target.indexOf('//') + 2);
    const i = rest.search(/[/?]/);
    rest = i < 0 ? '/' : rest.slice(i);
  } else if (!target.startsWith('/')) {
    throw new SignatureBaseError(`request-target ${JSON.stringify(target.slice(0, 64))} is neither origin-form nor absolute-form`);
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  return q < 0 ? { path: rest, query: '' } : { path: rest.slice(0, q), query: rest.slice(q + 1) };
}

/** @param {string} s WHATWG urlencoded decoding: "+" is a space, bad "%" kept */
function formDecode(s) {
  const bytes = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === 0x2b) {
      bytes.push(0x20);
    } else if (c === 0x25 && i + 2 < raw.length && /^[0-9A-Fa-f]{2}$/.test(String.fromCharCode(raw[i + 1], raw[i + 2]))) {
      bytes.push(parseInt(String.fromCharCode(raw[i + 1], raw[i + 2]), 16));
      i += 2;
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes);
}

/** @param {Buffer} b percent-encode all but ASCII alphanumerics and *-._ */
function formEncode(b) {
  let out = '';
  for (const c of b) {
    const ch = String.fromCharCode(c);
    out += /[A-Za-z0-9*\-._]/.test(ch) ? ch : `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A signature base cannot be built: invalid components, or ones the message lacks. */
export class SignatureBaseError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'SignatureBaseError';
  }
}

/**
 * @param {Params} ps
 * @param {string} ident
 * @param {string[]} allowed
 */
function onlyParams(ps, ident, allowed) {
  for (const [k] of ps) {
    if (!allowed.includes(k)) throw new SignatureBaseError(`component ${ident} has parameter ${JSON.stringify(k)}, which is not supported on it`);
  }
}

/**
 * The value(s) of one covered component (RFC 9421 §2.1, §2.2).
 * @param {HttpMessage} msg
 * @param {Item} id
 * @param {string} ident its serialization
 * @returns {string[]}
 */
function componentValues(msg, id, ident) {
  if (id.value.type !== 'string' || id.value.value === '') throw new SignatureBaseError(`component identifiers are non-empty strings, found ${ident}`);
  const name = id.value.value;
  if (name === '@signature-params') throw new SignatureBaseError('@signature-params cannot be a covered component');
  /** @type {HttpMessage | undefined} */
  let m = msg;
  const req = param(id.params, 'req');
  if (req) {
    if (req.type !== 'boolean' || !req.value) throw new SignatureBaseError(`component ${ident}: req must be a true flag`);
    if (msg.status === undefined) throw new SignatureBaseError(`component ${ident} has the req flag, which only responses may use`);
    m = msg.request;
    if (!m) throw new SignatureBaseError(`component ${ident} needs the request the response answers`);
  }
  if (name === '@status') {
    onlyParams(id.params, ident, ['req']);
    if (m.status === undefined) throw new SignatureBaseError('@status is a response component');
    if (m.status < 100 || m.status > 999) throw new SignatureBaseError(`status ${m.status} is not a three-digit code`);
    return [String(m.status)];
  }
  if (name.startsWith('@')) {
    if (m.status !== undefined) throw new SignatureBaseError(`${name} is a request component; a response covers it only with the req flag`);
    if (m.method === undefined || m.target === undefined || m.scheme === undefined || m.authority === undefined) {
      throw new SignatureBaseError(`${name} needs the request's method, scheme, authority and target`);
    }
    if (name === '@query-param') {
      onlyParams(id.params, ident, ['name', 'req']);
      const n = param(id.params, 'name');
      if (n?.type !== 'string') throw new SignatureBaseError('@query-param needs a name parameter that is a string');
      const vals = [];
      for (const pair of splitTarget(m.target).query.split('&')) {
        if (pair === '') continue;
        const eq = pair.indexOf('=');
        const [k, v] = eq < 0 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
        if (formEncode(formDecode(k)) === n.value) vals.push(formEncode(formDecode(v)));
      }
      if (vals.length === 0) throw new SignatureBaseError(`covered query parameter ${JSON.stringify(n.value)} is not in the request-target`);
      return vals;
    }
    onlyParams(id.params, ident, ['req']);
    switch (name) {
      case '@method': return [m.method];
      case '@scheme': return [m.scheme.toLowerCase()];
      case '@authority': return [normAuthority(m.scheme, m.authority)];
      case '@request-target': return [m.target];
      case '@target-uri':
        if (isAbsolute(m.target)) return [m.target];
        if (m.target === '*') throw new SignatureBaseError('@target-uri of an asterisk-form request is not supported');
        return [`${m.scheme.toLowerCase()}://${normAuthority(m.scheme, m.authority)}${m.target}`];
      case '@path': return [splitTarget(m.target).path || '/'];
      case '@query': return [`?${splitTarget(m.target).query}`];
    }
    throw new SignatureBaseError(`unknown derived component ${JSON.stringify(name)}`);
  }
  if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) throw new SignatureBaseError(`field name ${JSON.stringify(name)} must be a lower-case HTTP field name`);
  onlyParams(id.params, ident, ['sf', 'key', 'bs', 'req']);
  const lines = fieldLines(m.headers, name);
  if (!lines) throw new SignatureBaseError(`the signature covers field ${JSON.stringify(name)}, which the message does not have`);
  const sf = param(id.params, 'sf');
  const key = param(id.params, 'key');
  if (param(id.params, 'bs')) {
    if (sf || key) throw new SignatureBaseError(`component ${ident}: bs cannot be combined with sf or key`);
    return [lines.map((l) => `:${Buffer.from(l.replace(/^[ \t]+|[ \t]+$/g, ''), 'utf8').toString('base64')}:`).join(', ')];
  }
  const joined = joinLines(lines);
  if (!sf && !key) return [joined];
  if (!key && !DICT_FIELDS.has(name)) throw new SignatureBaseError(`component ${ident}: the structured type of ${JSON.stringify(name)} is not known, so sf cannot be used`);
  let d;
  try {
    d = parseDictionary(joined);
  } catch (err) {
    throw new SignatureBaseError(`component ${ident}: field ${JSON.stringify(name)} is not a valid dictionary: ${err instanceof Error ? err.message : err}`);
  }
  if (!key) return [serializeDictionary(d)];
  if (key.type !== 'string') throw new SignatureBaseError(`component ${ident}: key must be a string`);
  const mem = member(d, key.value);
  if (!mem) throw new SignatureBaseError(`field ${JSON.stringify(name)} has no member ${JSON.stringify(key.value)} covered by ${ident}`);
  return [serializeMember(mem)];
}

/**
 * Builds the RFC 9421 §2.5 signature base for one Signature-Input member.
 * @param {HttpMessage} msg
 * @param {InnerList} input the covered components and signature parameters
 * @returns {string}
 */
export function buildSignatureBase(msg, input) {
  if (input.items.length > MAX_COVERED) throw new SignatureBaseError(`${input.items.length} covered components; at most ${MAX_COVERED} are accepted`);
  let base = '';
  const seen = new Set();
  for (const id of input.items) {
    const ident = serializeItem(id);
    if (seen.has(ident)) throw new SignatureBaseError(`component ${ident} is covered twice`);
    seen.add(ident);
    for (const v of componentValues(msg, id, ident)) {
      if (/[\r\n]/.test(v)) throw new SignatureBaseError(`component ${ident} has a value with a line break`);
      base += `${ident}: ${v}\n`;
    }
  }
  return `${base}"@signature-params": ${serializeMember(input)}`;
}

/**
 * The signature base of the signature labelled label in signatureInput (a
 * Signature-Input field value) over msg: for debugging a 401, compare it with
 * the expected base in Quill's hint.
 * @param {HttpMessage} msg
 * @param {string} signatureInput
 * @param {string} [label]
 * @returns {string}
 */
export function signatureBase(msg, signatureInput, label = DEFAULT_LABEL) {
  const m = member(parseDictionary(signatureInput), label);
  if (!m || !('items' in m)) throw new SignatureBaseError(`Signature-Input has no inner list labelled ${JSON.stringify(label)}`);
  return buildSignatureBase(msg, m);
}

/**
 * The RFC 9530 Content-Digest field value of body.
 * @param {BodyInput} body
 * @param {'sha-256' | 'sha-512'} [alg]
 * @returns {string}
 */
export function contentDigest(body, alg = 'sha-256') {
  if (alg !== 'sha-256' && alg !== 'sha-512') throw new Error(`quill: unsupported digest ${alg}`);
  const d = createHash(alg === 'sha-256' ? 'sha256' : 'sha512').update(toBytes(body)).digest();
  return serializeDictionary([[alg, { value: { type: 'bytes', value: d }, params: [] }]]);
}

/**
 * Checks a Content-Digest field value against body: every sha-256 and
 * sha-512 member is recomputed and compared in constant time (others are
 * ignored), and at least one must be present. Throws a VerificationError.
 * @param {string | undefined} value
 * @param {BodyInput} body
 */
export function verifyContentDigest(value, body) {
  if (value === undefined) throw new VerificationError('quill: no Content-Digest');
  let d;
  try {
    d = parseDictionary(value);
  } catch (err) {
    throw new VerificationError(`quill: Content-Digest: ${err instanceof Error ? err.message : err}`, { cause: err });
  }
  let checked = 0;
  for (const [k, m] of d.slice(0, 8)) {
    if (k !== 'sha-256' && k !== 'sha-512') continue;
    if ('items' in m || m.value.type !== 'bytes') throw new VerificationError(`quill: Content-Digest ${k} must be a byte sequence`);
    const want = createHash(k === 'sha-256' ? 'sha256' : 'sha512').update(toBytes(body)).digest();
    if (m.value.value.length !== want.length || !timingSafeEqual(m.value.value, want)) {
      throw new VerificationError(`quill: Content-Digest ${k} does not match the body (${toBytes(body).length} bytes)`);
    }
    checked++;
  }
  if (checked === 0) throw new VerificationError('quill: Content-Digest has neither sha-256 nor sha-512');
}

/**
 * The algorithm a key signs with: the key type decides, and an RSA key
 * may be registered for either RSA algorithm (rsa-v1_5-sha256 by default).
 * @param {KeyObject} key private or public
 * @param {Algorithm} [want]
 * @returns {Algorithm}
 */
export function algorithmOf(key, want) {
  /** @type {Algorithm} */
  let def;
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new Error('quill: an RSA key needs 2048 bits or more');
      def = key.asymmetricKeyType === 'rsa-pss' ? 'rsa-pss-sha512' : 'rsa-v1_5-sha256';
      if (want === 'rsa-pss-sha512' || want === 'rsa-v1_5-sha256') {
        if (key.asymmetricKeyType === 'rsa-pss' && want !== 'rsa-pss-sha512') break;
        return want;
      }
      break;
    case 'ec':
      if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('quill: an ECDSA key must be on P-256');
      def = 'ecdsa-p256-sha256';
      break;
    case 'ed25519':
      def = 'ed25519';
      break;
    default:
      throw new Error(`quill: scheme B needs an Ed25519, ECDSA P-256 or RSA key, not ${key.asymmetricKeyType}`);
  }
  if (want !== undefined && want !== def) throw new Error(`quill: a ${def} key cannot sign ${want}`);
  return def;
}

/**
 * Signs base with key for alg (ECDSA as raw r‖s, 64 bytes).
 * @param {Algorithm} alg
 * @param {KeyObject} key
 * @param {string} base
 * @returns {Buffer}
 */
export function signBase(alg, key, base) {
  const data = Buffer.from(base, 'utf8');
  switch (alg) {
    case 'rsa-v1_5-sha256': return sign('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING });
    case 'rsa-pss-sha512': return sign('sha512', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_LENGTH });
    case 'ecdsa-p256-sha256': return sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
    case 'ed25519': return sign(null, data, key);
  }
  throw new Error(`quill: unsupported algorithm ${alg}`);
}

/**
 * Verifies sig over base with key for alg.
 * @param {Algorithm} alg
 * @param {KeyObject} key public
 * @param {string} base
 * @param {Buffer} sig
 * @returns {boolean}
 */
export function verifyBase(alg, key, base, sig) {
  const data = Buffer.from(base, 'utf8');
  try {
    switch (alg) {
      case 'rsa-v1_5-sha256': return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
      case 'rsa-pss-sha512': return verify('sha512', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_LENGTH }, sig);
      case 'ecdsa-p256-sha256': return sig.length === 64 && verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
      case 'ed25519': return sig.length === 64 && verify(null, data, key, sig);
    }
  } catch {
    return false; // a key of another type
  }
  return false;
}

/**
 * The request as it goes on the wire, for the signature base: scheme and
 * authority from req.url (Node sends the URL's host as Host), the raw target.
 * @param {SignableRequest} req
 * @param {Headers} headers
 * @returns {HttpMessage}
 */
function wireRequest(req, headers) {
  if (!req.url) throw new Error('quill: scheme B needs the request URL (scheme and host) for @target-uri');
  const u = new URL(req.url);
  return { method: req.method, scheme: u.protocol.replace(/:$/, ''), authority: u.host, target: req.target, headers };
}

/**
 * Scheme B signer and response verifier for one merchant key. The merchant is
 * the one the mTLS client certificate names; only the key id is signed.
 * @implements {Signer}
 */
export class SchemeB {
  #key;
  #now;
  #randomBytes;

  /**
   * @param {object} options
   * @param {string} options.keyId the merchant key's id as registered with Quill (not the platform's)
   * @param {string | Buffer | KeyObject} options.privateKey PEM (PKCS#1, PKCS#8, SEC1) or KeyObject: RSA, ECDSA P-256 or Ed25519
   * @param {Algorithm} [options.algorithm] only to choose rsa-pss-sha512 for an RSA key registered for it
   * @param {'sha-256' | 'sha-512'} [options.digest] the Content-Digest algorithm (sha-256)
   * @param {string} [options.label] the signature label (sig1)
   * @param {() => number} [options.now] clock in milliseconds (Date.now); for tests
   * @param {(n: number) => Buffer} [options.randomBytes] nonce source (node:crypto); for tests
   * @param {number} [options.windowSeconds] accepted skew of a response's created (300)
   */
  constructor({ keyId, privateKey, algorithm, digest = 'sha-256', label = DEFAULT_LABEL, now = Date.now, randomBytes = nodeRandomBytes, windowSeconds = DEFAULT_RESPONSE_WINDOW_SECONDS }) {
    if (typeof keyId !== 'string' || !/^[\x20-\x7e]{1,256}$/.test(keyId)) throw new Error('quill: keyId must be 1-256 printable ASCII characters');
    if (digest !== 'sha-256' && digest !== 'sha-512') throw new Error('quill: digest must be sha-256 or sha-512');
    serializeDictionary([[label, { value: { type: 'boolean', value: true }, params: [] }]]); // throws for a bad label
    const key = privateKeyOf(privateKey);
    this.algorithm = algorithmOf(key, algorithm);
    this.keyId = keyId;
    this.digest = digest;
    this.label = label;
    this.windowSeconds = windowSeconds;
    this.#key = key;
    this.#now = now;
    this.#randomBytes = randomBytes;
  }

  /**
   * Signs a request: covers @method, @target-uri, content-type when the
   * request has one and content-digest when it has a body, with parameters
   * created, keyid, nonce and alg. Returns the headers to add:
   * content-digest (for a body), signature-input and signature.
   * @param {SignableRequest} req
   * @returns {Record<string, string>}
   */
  signRequest(req) {
    const body = toBytes(req.body);
    /** @type {Record<string, string>} */
    const out = {};
    /** @type {Headers} */
    const headers = {};
    for (const [k, v] of Object.entries(req.headers ?? {})) {
      if (k.toLowerCase() !== 'content-digest') headers[k] = v;
    }
    /** @type {Item[]} */
    const covered = [{ value: sfString('@method'), params: [] }, { value: sfString('@target-uri'), params: [] }];
    if (fieldLines(headers, 'content-type')) covered.push({ value: sfString('content-type'), params: [] });
    if (body.length > 0) {
      out['content-digest'] = contentDigest(body, /** @type {'sha-256' | 'sha-512'} */ (this.digest));
      headers['content-digest'] = out['content-digest'];
      covered.push({ value: sfString('content-digest'), params: [] });
    }
    /** @type {InnerList} */
    const input = {
      items: covered,
      params: [
        ['created', { type: 'integer', value: Math.floor(this.#now() / 1000) }],
        ['keyid', sfString(this.keyId)],
        ['nonce', sfString(newNonce(this.#randomBytes))],
        ['alg', sfString(this.algorithm)],
      ],
    };
    const base = buildSignatureBase(wireRequest(req, headers), input);
    const sig = signBase(/** @type {Algorithm} */ (this.algorithm), this.#key, base);
    out['signature-input'] = serializeDictionary([[this.label, input]]);
    out.signature = serializeDictionary([[this.label, { value: { type: 'bytes', value: sig }, params: [] }]]);
    return out;
  }

  /**
   * Checks Quill's RFC 9421 response signature (see verifyResponse).
   * @param {ReceivedResponse} res
   * @param {KeySource} keys
   * @param {SignableRequest} req the request as signed and sent
   * @returns {Promise<void>}
   */
  async verifyResponse(res, keys, req) {
    const { created } = await verifyResponse(res, keys, wireRequest(req, req.headers ?? {}));
    const skew = Math.floor(this.#now() / 1000) - created;
    if (Math.abs(skew) > this.windowSeconds) {
      throw new VerificationError(`quill: response created ${skew} s from the client clock, outside ±${this.windowSeconds} s`);
    }
  }

  /** Never shows the key. */
  toString() {
    return `SchemeB{keyId: ${this.keyId}, algorithm: ${this.algorithm}, key: [redacted]}`;
  }

  /** Never shows the key (console.log, util.inspect). */
  [Symbol.for('nodejs.util.inspect.custom')]() {
    return this.toString();
  }
}

/**
 * The algorithm of a scheme B platform key: Quill signs scheme B responses
 * with Ed25519 or ECDSA P-256 only, never with its scheme A RSA keys.
 * @param {KeyObject} key
 * @returns {Algorithm}
 */
function platformAlgorithm(key) {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256-sha256';
  throw new UnknownKeyError(`quill: a ${key.asymmetricKeyType} platform key does not sign scheme B responses (Ed25519 or ECDSA P-256 do)`);
}

/**
 * Verifies a scheme B response as Quill signs it: exactly one Signature-Input
 * member names a platform key known to keys (by keyid; unknown ids are
 * skipped, and cost the caching source one refetch); it covers @status,
 * content-digest, content-type when the response has one, and the request's
 * own signature ("signature";key="<label>";req); an alg parameter agrees
 * with the key; Content-Digest matches the body; the signature verifies.
 * Freshness of created is left to the caller. Rejects with a
 * VerificationError (UnknownKeyError when no member names a known key).
 * @param {ReceivedResponse} res status, headers (any case) and the complete body
 * @param {KeySource} keys
 * @param {HttpMessage} request the request exactly as sent, its Signature field included
 * @returns {Promise<{label: string, keyId: string, created: number, algorithm: Algorithm}>}
 */
export async function verifyResponse(res, keys, request) {
  const inLines = fieldLines(res.headers, 'signature-input');
  const sigLines = fieldLines(res.headers, 'signature');
  if (!inLines || !sigLines) throw new VerificationError('quill: response has no Signature-Input and Signature fields');
  let inputs, sigs;
  try {
    inputs = parseDictionary(joinLines(inLines));
    sigs = parseDictionary(joinLines(sigLines));
  } catch (err) {
    if (err instanceof StructuredFieldError) throw new VerificationError(`quill: response signature fields: ${err.message}`, { cause: err });
    throw err;
  }
  if (inputs.length === 0 || inputs.length > MAX_LABELS) throw new VerificationError(`quill: response has ${inputs.length} signatures`);
  /** @type {Array<{label: string, input: InnerList, keyId: string, key: KeyObject, alg: Algorithm}>} */
  const found = [];
  /** @type {unknown} */
  let unknown = null;
  for (const [label, m] of inputs) {
    if (!('items' in m)) continue;
    const kid = param(m.params, 'keyid');
    if (kid?.type !== 'string') continue;
    let pk;
    try {
      pk = await keys.get(kid.value);
    } catch (err) {
      if (err instanceof UnknownKeyError) {
        unknown = err;
        continue;
      }
      throw err;
    }
    const key = publicKeyOf(pk.publicKey);
    found.push({ label, input: m, keyId: kid.value, key, alg: platformAlgorithm(key) });
  }
  if (found.length === 0) {
    throw new UnknownKeyError(`quill: no response signature names a known platform key${unknown instanceof Error ? ` (${unknown.message})` : ''}`, { cause: unknown });
  }
  if (found.length > 1) throw new VerificationError('quill: more than one response signature names a platform key');
  const { label, input, keyId, key, alg } = found[0];
  const a = param(input.params, 'alg');
  if (a && (a.type !== 'string' || a.value !== alg)) throw new VerificationError(`quill: alg disagrees with the platform key's algorithm ${alg}`);
  const created = param(input.params, 'created');
  if (created?.type !== 'integer') throw new VerificationError('quill: response signature has no integer created parameter');

  const reqSigs = fieldLines(request.headers, 'signature');
  const reqLabels = reqSigs ? parseDictionary(joinLines(reqSigs)).map(([k]) => k) : [];
  const plain = (/** @type {string} */ n) => input.items.some((it) => it.value.type === 'string' && it.value.value === n && it.params.length === 0);
  const bound = input.items.some((it) => {
    const k = param(it.params, 'key');
    return it.value.type === 'string' && it.value.value === 'signature' && it.params.length === 2 && param(it.params, 'req') !== undefined
      && k?.type === 'string' && reqLabels.includes(k.value);
  });
  const hasType = fieldLines(res.headers, 'content-type') !== undefined;
  if (!plain('@status') || !plain('content-digest') || !bound || (hasType && !plain('content-type'))) {
    throw new VerificationError('quill: the response signature must cover "@status", "content-digest", "content-type" (when present) and the request\'s signature ("signature";key=…;req)');
  }
  let base;
  try {
    base = buildSignatureBase({ status: res.status, headers: res.headers, request }, input);
  } catch (err) {
    if (err instanceof SignatureBaseError) throw new VerificationError(`quill: response signature base: ${err.message}`, { cause: err });
    throw err;
  }
  const cd = fieldLines(res.headers, 'content-digest');
  verifyContentDigest(cd && joinLines(cd), res.body);
  const sig = member(sigs, label);
  if (!sig || 'items' in sig || sig.value.type !== 'bytes') throw new VerificationError(`quill: Signature has no byte sequence under label ${JSON.stringify(label)}`);
  if (!verifyBase(alg, key, base, sig.value.value)) throw new VerificationError('quill: response signature does not verify');
  return { label, keyId, created: created.value, algorithm: alg };
}
