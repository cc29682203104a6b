// A strict RFC 8941 structured-field parser and serializer, enough for
// Signature-Input, Signature and Content-Digest: dictionaries, inner lists,
// items and parameters. Like Quill's own parser it refuses a dictionary key
// or parameter that occurs twice (RFC 8941 would keep the last), so this
// client and Quill never read different signatures from one field.

/**
 * A bare item.
 * @typedef {{type: 'integer' | 'decimal', value: number}
 *   | {type: 'string' | 'token', value: string}
 *   | {type: 'bytes', value: Buffer}
 *   | {type: 'boolean', value: boolean}} Bare
 */

/** @typedef {Array<[string, Bare]>} Params ordered; keys unique */
/** @typedef {{value: Bare, params: Params}} Item */
/** @typedef {{items: Item[], params: Params}} InnerList */
/** @typedef {Item | InnerList} Member */
/** @typedef {Array<[string, Member]>} Dictionary ordered; keys unique */

/** A field value that is not valid RFC 8941, with the byte offset. */
export class StructuredFieldError extends Error {
  /**
   * @param {string} message
   * @param {number} offset
   */
  constructor(message, offset) {
    super(`at byte ${offset}: ${message}`);
    this.name = 'StructuredFieldError';
    this.offset = offset;
  }
}

const isLCAlpha = (/** @type {string} */ c) => c >= 'a' && c <= 'z';
const isDigit = (/** @type {string} */ c) => c >= '0' && c <= '9';
const isAlpha = (/** @type {string} */ c) => isLCAlpha(c) || (c >= 'A' && c <= 'Z');
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
const KEY = /^[a-z*][a-z0-9_\-.*]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

class Parser {
  /** @param {string} s */
  constructor(s) {
    this.s = s;
    this.pos = 0;
  }

  eof() { return this.pos >= this.s.length; }

  peek() { return this.s[this.pos] ?? ''; }

  /** @param {string} msg */
  fail(msg) { return new StructuredFieldError(msg, this.pos); }

  describe() { return this.eof() ? 'the end' : JSON.stringify(this.peek()); }

  skipSP() { while (this.peek() === ' ') this.pos++; }

  skipOWS() { while (this.peek() === ' ' || this.peek() === '\t') this.pos++; }

  /** @returns {Dictionary} */
  dictionary() {
    this.skipSP();
    /** @type {Dictionary} */
    const d = [];
    while (!this.eof()) {
      const start = this.pos;
      const key = this.key();
      if (d.some(([k]) => k === key)) {
        this.pos = start;
        throw this.fail(`dictionary key ${JSON.stringify(key)} occurs twice`);
      }
      /** @type {Member} */
      let m;
      if (this.peek() === '=') {
        this.pos++;
        m = this.member();
      } else {
        m = { value: { type: 'boolean', value: true }, params: this.params() };
      }
      d.push([key, m]);
      this.skipOWS();
      if (this.eof()) return d;
      if (this.peek() !== ',') throw this.fail(`expected "," between dictionary members, found ${this.describe()}`);
      this.pos++;
      this.skipOWS();
      if (this.eof()) throw this.fail('trailing "," after the last dictionary member');
    }
    return d;
  }

  /** @returns {Member} */
  member() {
    return this.peek() === '(' ? this.innerList() : this.item();
  }

  /** @returns {InnerList} */
  innerList() {
    this.pos++; // '('
    /** @type {Item[]} */
    const items = [];
    for (;;) {
      this.skipSP();
      if (this.eof()) throw this.fail('inner list is not closed with ")"');
      if (this.peek() === ')') {
        this.pos++;
        return { items, params: this.params() };
      }
      items.push(this.item());
      if (this.eof()) throw this.fail('inner list is not closed with ")"');
      const c = this.peek();
      if (c !== ' ' && c !== ')') throw this.fail(`expected " " or ")" in an inner list, found ${this.describe()}`);
    }
  }

  /** @returns {Item} */
  item() {
    const value = this.bare();
    return { value, params: this.params() };
  }

  /** @returns {Params} */
  params() {
    /** @type {Params} */
    const ps = [];
    while (this.peek() === ';') {
      this.pos++;
      this.skipSP();
      const start = this.pos;
      const key = this.key();
      if (ps.some(([k]) => k === key)) {
        this.pos = start;
        throw this.fail(`parameter ${JSON.stringify(key)} occurs twice`);
      }
      /** @type {Bare} */
      let v = { type: 'boolean', value: true };
      if (this.peek() === '=') {
        this.pos++;
        v = this.bare();
      }
      ps.push([key, v]);
    }
    return ps;
  }

  key() {
    const start = this.pos;
    const c = this.peek();
    if (!isLCAlpha(c) && c !== '*') throw this.fail(`a key starts with a lower-case letter or "*", found ${this.describe()}`);
    this.pos++;
    while (!this.eof()) {
      const d = this.peek();
      if (!isLCAlpha(d) && !isDigit(d) && d !== '_' && d !== '-' && d !== '.' && d !== '*') break;
      this.pos++;
    }
    return this.s.slice(start, this.pos);
  }

  /** @returns {Bare} */
  bare() {
    const c = this.peek();
    if (c === '-' || isDigit(c)) return this.number();
    if (c === '"') return this.string();
    if (c === ':') return this.bytes();
    if (c === '?') return this.boolean();
    if (isAlpha(c) || c === '*') return this.token();
    throw this.fail(`expected an item, found ${this.describe()}`);
  }

  /** @returns {Bare} */
  number() {
    const start = this.pos;
    let neg = false;
    if (this.peek() === '-') {
      neg = true;
      this.pos++;
    }
    if (!isDigit(this.peek())) throw this.fail(`expected a digit, found ${this.describe()}`);
    let digits = '';
    let decimal = false;
    let intLen = 0;
    while (!this.eof()) {
      const c = this.peek();
      if (isDigit(c)) {
        digits += c;
      } else if (c === '.' && !decimal) {
        if (digits.length > 12) throw this.fail('a decimal has at most 12 integer digits');
        decimal = true;
        intLen = digits.length;
        digits += c;
      } else {
        break;
      }
      this.pos++;
      if (!decimal && digits.length > 15) throw this.fail('an integer has at most 15 digits');
      if (decimal && digits.length > 16) throw this.fail('a decimal has at most 16 characters');
    }
    if (!decimal) return { type: 'integer', value: (neg ? -1 : 1) * Number(digits) };
    const frac = digits.length - intLen - 1;
    if (frac === 0) throw this.fail('a decimal ends with a digit, not "."');
    if (frac > 3) {
      this.pos = start;
      throw this.fail('a decimal has at most 3 fraction digits');
    }
    return { type: 'decimal', value: (neg ? -1 : 1) * Number(digits) };
  }

  /** @returns {Bare} */
  string() {
    const open = this.pos;
    this.pos++; // '"'
    let out = '';
    while (!this.eof()) {
      const c = this.s[this.pos];
      const code = c.charCodeAt(0);
      if (c === '\\') {
        this.pos++;
        const n = this.peek();
        if (n !== '"' && n !== '\\') throw this.fail('a string escapes only \\" and \\\\');
        out += n;
      } else if (c === '"') {
        this.pos++;
        return { type: 'string', value: out };
      } else if (code < 0x20 || code > 0x7e) {
        throw this.fail('a string holds visible ASCII and spaces only');
      } else {
        out += c;
      }
      this.pos++;
    }
    this.pos = open;
    throw this.fail('string is not closed');
  }

  /** @returns {Bare} */
  token() {
    const start = this.pos;
    this.pos++;
    while (!this.eof() && (TCHAR.test(this.peek()) || this.peek() === ':' || this.peek() === '/')) this.pos++;
    return { type: 'token', value: this.s.slice(start, this.pos) };
  }

  /** @returns {Bare} */
  bytes() {
    const open = this.pos;
    const end = this.s.indexOf(':', open + 1);
    if (end < 0) throw this.fail('byte sequence is not closed with ":"');
    const enc = this.s.slice(open + 1, end);
    // RFC 8941 §4.2.7: a parser SHOULD NOT fail when "=" padding is absent.
    if (!BASE64.test(enc) || enc.length % 4 === 1) throw this.fail('byte sequence is not valid base64');
    this.pos = end + 1;
    return { type: 'bytes', value: Buffer.from(enc, 'base64') };
  }

  /** @returns {Bare} */
  boolean() {
    this.pos++; // '?'
    const c = this.peek();
    if (c !== '0' && c !== '1') throw this.fail(`boolean must be ?0 or ?1, found ?${this.describe()}`);
    this.pos++;
    return { type: 'boolean', value: c === '1' };
  }
}

/**
 * Parses a dictionary field value (RFC 8941 §4.2.2); the lines of a field
 * are joined with ", " first. An empty value is an empty dictionary.
 * @param {string} value
 * @returns {Dictionary}
 */
export function parseDictionary(value) {
  return new Parser(value).dictionary();
}

/**
 * Parses an item field value, e.g. a component identifier
 * `"@query-param";name="Pet"`.
 * @param {string} value
 * @returns {Item}
 */
export function parseItem(value) {
  const p = new Parser(value);
  p.skipSP();
  const it = p.item();
  p.skipSP();
  if (!p.eof()) throw p.fail(`unexpected ${p.describe()} after the item`);
  return it;
}

/**
 * @param {Bare} b
 * @returns {string}
 */
export function serializeBare(b) {
  switch (b.type) {
    case 'integer':
      if (!Number.isInteger(b.value) || Math.abs(b.value) > 999_999_999_999_999) throw new RangeError('sf: integer out of range');
      return String(b.value);
    case 'decimal': {
      const s = (Math.round(b.value * 1000) / 1000).toFixed(3).replace(/0+$/, '');
      return s.endsWith('.') ? `${s}0` : s;
    }
    case 'string':
      if (!/^[\x20-\x7e]*$/.test(b.value)) throw new RangeError('sf: a string holds visible ASCII and spaces only');
      return `"${b.value.replace(/[\\"]/g, '\\$&')}"`;
    case 'token':
      if (!/^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/.test(b.value)) throw new RangeError('sf: invalid token');
      return b.value;
    case 'bytes':
      return `:${b.value.toString('base64')}:`;
    case 'boolean':
      return b.value ? '?1' : '?0';
  }
  throw new TypeError('sf: unknown bare item');
}

/**
 * @param {Params} ps
 * @returns {string}
 */
export function serializeParams(ps) {
  return ps.map(([k, v]) => {
    if (!KEY.test(k)) throw new RangeError(`sf: invalid key ${JSON.stringify(k)}`);
    return v.type === 'boolean' && v.value ? `;${k}` : `;${k}=${serializeBare(v)}`;
  }).join('');
}

/**
 * @param {Item} it
 * @returns {string}
 */
export function serializeItem(it) {
  return serializeBare(it.value) + serializeParams(it.params);
}

/**
 * @param {Member} m
 * @returns {string}
 */
export function serializeMember(m) {
  if ('items' in m) return `(${m.items.map(serializeItem).join(' ')})${serializeParams(m.params)}`;
  return serializeItem(m);
}

/**
 * @param {Dictionary} d
 * @returns {string}
 */
export function serializeDictionary(d) {
  return d.map(([k, m]) => {
    if (!KEY.test(k)) throw new RangeError(`sf: invalid key ${JSON.stringify(k)}`);
    if (!('items' in m) && m.value.type === 'boolean' && m.value.value) return k + serializeParams(m.params);
    return `${k}=${serializeMember(m)}`;
  }).join(', ');
}

/**
 * The value of parameter key, if present.
 * @param {Params} ps
 * @param {string} key
 * @returns {Bare | undefined}
 */
export function param(ps, key) {
  return ps.find(([k]) => k === key)?.[1];
}

/**
 * The member named key of a dictionary, if present.
 * @param {Dictionary} d
 * @param {string} key
 * @returns {Member | undefined}
 */
export function member(d, key) {
  return d.find(([k]) => k === key)?.[1];
}

/** @type {(s: string) => Bare} */
export const sfString = (s) => ({ type: 'string', value: s });
