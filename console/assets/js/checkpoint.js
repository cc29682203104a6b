// Checkpoint signatures checked in the page with WebCrypto, from the bytes
// docs/AUDIT.md defines: "quill.ledger.checkpoint.v1", seq, head hash,
// created_at (µs), key id — each string/bytes field length-prefixed (4 bytes
// big-endian), each integer 8 bytes big-endian.

function str(bytes) {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

function i64(v) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, BigInt(v));
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function hexBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function b64Bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function checkpointMessage(cp) {
  const enc = new TextEncoder();
  return concat([str(enc.encode('quill.ledger.checkpoint.v1')), i64(cp.seq), str(hexBytes(cp.head_hash)),
    i64(cp.created_at_unix_micro), str(enc.encode(cp.key_id))]);
}

function pemDER(pem) {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return b64Bytes(b64);
}

// derToP1363 turns an ASN.1 ECDSA signature into r‖s (32 bytes each).
function derToP1363(der) {
  let i = 2;
  if (der[1] & 0x80) i = 2 + (der[1] & 0x7f);
  const int = () => {
    if (der[i++] !== 0x02) throw new Error('bad DER');
    const len = der[i++];
    let v = der.slice(i, i + len);
    i += len;
    while (v.length > 32 && v[0] === 0) v = v.slice(1);
    const out = new Uint8Array(32);
    out.set(v, 32 - v.length);
    return out;
  };
  return concat([int(), int()]);
}

const ALGS = {
  'rsa-v1_5-sha256': { imp: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, ver: { name: 'RSASSA-PKCS1-v1_5' } },
  'ecdsa-p256-sha256': { imp: { name: 'ECDSA', namedCurve: 'P-256' }, ver: { name: 'ECDSA', hash: 'SHA-256' }, p1363: true },
  'ed25519': { imp: { name: 'Ed25519' }, ver: { name: 'Ed25519' } },
};

// verifyCheckpoint returns {ok, reason} for cp against the published keys
// (the auditor API's platform-keys list).
export async function verifyCheckpoint(cp, published) {
  const k = published.find(p => p.key_id === cp.key_id);
  if (!k) return { ok: false, reason: 'signed by unknown key ' + cp.key_id };
  if (k.status === 'revoked') return { ok: false, reason: 'signed by revoked key ' + cp.key_id };
  const alg = ALGS[cp.algorithm];
  if (!alg || k.algorithm !== cp.algorithm) return { ok: false, reason: 'algorithm ' + cp.algorithm + ' does not match key ' + k.key_id };
  try {
    const key = await crypto.subtle.importKey('spki', pemDER(k.public_key_pem), alg.imp, false, ['verify']);
    let sig = b64Bytes(cp.signature_base64);
    if (alg.p1363) sig = derToP1363(sig);
    const ok = await crypto.subtle.verify(alg.ver, key, sig, checkpointMessage(cp));
    return ok ? { ok: true, reason: '' } : { ok: false, reason: 'signature does not verify' };
  } catch (e) {
    return { ok: false, reason: 'cannot check: ' + e.message };
  }
}
