// Cross-implementation check for Quill's scheme B (RFC 9421): signs requests
// and verifies responses with the independent http-message-signatures package.
// Reads {"cases": [...]} as JSON on stdin and writes {"results": [...]}.
//
//   sign-request:    {op, alg, keyPem, keyid, created, nonce, fields, request}
//                    → {headers} (Content-Digest computed here for a body)
//   verify-request:  {op, alg, pubPem, request} → {ok}
//   verify-response: {op, alg, pubPem, request, response} → {ok, digestOk}
//
// A request is {method, url, headers, body}; a response {status, headers, body}.
import { createHash, createPrivateKey, createPublicKey, createSign, constants } from 'node:crypto';
import { httpbis, createSigner, createVerifier } from 'http-message-signatures';

function signer(alg, keyPem, keyid) {
  const key = createPrivateKey(keyPem);
  if (alg === 'rsa-pss-sha512') {
    // The package's PSS signer uses OpenSSL's default (maximum) salt length;
    // RFC 9421 §3.3.1 fixes it at 64 bytes, which Quill enforces.
    return {
      id: keyid,
      alg,
      sign: async (data) => createSign('sha512').update(data).sign({
        key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64,
      }),
    };
  }
  return createSigner(key, alg, keyid);
}

function contentDigest(body) {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

async function run(c) {
  switch (c.op) {
    case 'sign-request': {
      const headers = { ...c.request.headers };
      if (c.request.body) headers['Content-Digest'] = contentDigest(Buffer.from(c.request.body));
      const signed = await httpbis.signMessage({
        key: signer(c.alg, c.keyPem, c.keyid),
        fields: c.fields,
        params: ['created', 'keyid', 'nonce', 'alg'],
        paramValues: { created: new Date(c.created * 1000), nonce: c.nonce },
      }, { method: c.request.method, url: c.request.url, headers });
      return { headers: signed.headers };
    }
    case 'verify-request':
    case 'verify-response': {
      const pub = createPublicKey(c.pubPem);
      const keyLookup = async () => ({ id: 'any', algs: [c.alg], verify: createVerifier(pub, c.alg) });
      const config = { keyLookup, notAfter: Number.MAX_SAFE_INTEGER };
      let ok;
      try {
        ok = c.op === 'verify-request'
          ? await httpbis.verifyMessage(config, c.request)
          : await httpbis.verifyMessage(config, c.response, c.request);
      } catch (e) {
        return { ok: false, error: String(e && e.message || e) };
      }
      const out = { ok: ok === true };
      if (c.op === 'verify-response') {
        const h = Object.entries(c.response.headers).find(([k]) => k.toLowerCase() === 'content-digest');
        out.digestOk = !!h && [h[1]].flat().join(', ') === contentDigest(Buffer.from(c.response.body || ''));
      }
      return out;
    }
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

let input = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) input += chunk;
const { cases } = JSON.parse(input);
const results = [];
for (const c of cases) results.push(await run(c));
process.stdout.write(JSON.stringify({ results }));
