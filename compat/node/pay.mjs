// pay.mjs: one payment through the unmodified WeChat Pay APIv3 Node SDK
// (wechatpay-axios-plugin) against Quill, then the payment queried back.
//
// The SDK signs every request itself and verifies every 2xx response's
// Wechatpay-* signature with the platform public key configured below; a bad
// or missing response signature makes it throw, and this script exit 1.
//
// Inputs (environment):
//   QUILL_BASE_URL          https://127.0.0.1:8443
//   QUILL_CA                PEM file of Quill's CA
//   QUILL_CLIENT_CERT       merchant mTLS certificate (client.pem)
//   QUILL_CLIENT_KEY        merchant mTLS key (client.key.pem)
//   QUILL_MCHID             merchant id
//   QUILL_KEY_ID            merchant signing key id (the SDK's `serial`)
//   QUILL_SIGNING_KEY       merchant signing private key PEM file
//   QUILL_PLATFORM_SERIAL   platform key id (Wechatpay-Serial)
//   QUILL_PLATFORM_PUB      platform public key PEM file
//   QUILL_PAYMENT           the payment request, a JSON object
//
// Output: one JSON line on stdout, {"payment":{status,body},"query":{status,body}};
// on error one JSON line on stderr, {"error":{code,message,status,body}}, exit 1.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { Wechatpay } from 'wechatpay-axios-plugin';

function env(name) {
  const v = process.env[name];
  if (!v) throw Object.assign(new Error(`${name} is not set`), { code: 'USAGE' });
  return v;
}

async function main() {
  const file = (name) => readFileSync(env(name));
  const payment = JSON.parse(env('QUILL_PAYMENT'));
  const mchid = env('QUILL_MCHID');

  const wxpay = new Wechatpay({
    mchid,
    serial: env('QUILL_KEY_ID'),
    privateKey: file('QUILL_SIGNING_KEY'),
    certs: { [env('QUILL_PLATFORM_SERIAL')]: file('QUILL_PLATFORM_PUB') },
    baseURL: env('QUILL_BASE_URL'),
    httpsAgent: new https.Agent({
      ca: file('QUILL_CA'),
      cert: file('QUILL_CLIENT_CERT'),
      key: file('QUILL_CLIENT_KEY'),
    }),
    timeout: 20000,
  });

  // POST /v1/payments; the SDK signs JSON.stringify(payment), the bytes axios sends.
  const paid = await wxpay.v1.payments.post(payment);
  // GET /v1/payments/{order_id}?mchid=…; the query is part of the signed URL.
  const queried = await wxpay.v1.payments._order_id_.get({
    order_id: payment.order_id,
    params: { mchid },
  });
  return {
    payment: { status: paid.status, body: paid.data },
    query: { status: queried.status, body: queried.data },
  };
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
} catch (err) {
  process.stderr.write(`${JSON.stringify({
    error: {
      code: err.code,
      message: err.message,
      status: err.response?.status,
      body: err.response?.data,
    },
  })}\n`);
  process.exitCode = 1;
}
