// Package quillclient is the Go client library for Quill's merchant API: an
// http.RoundTripper that signs every request and verifies every response, so
// a merchant's backend talks to Quill with a plain *http.Client.
//
//	tr, err := quillclient.NewTransport(
//		quillclient.WithBase(mtls), // an *http.Transport with the client certificate and Quill's CA
//		quillclient.WithMerchant("M100"),
//		quillclient.WithKeyID(keyID),
//		quillclient.WithPrivateKey(signingKey),
//	)
//	client := &http.Client{Transport: tr}
//	res, err := client.Post("https://quill.example:8443/v1/payments", "application/json", body)
//
// # Requests
//
// The transport reads each request body once, signs those exact bytes and the
// request-target as it goes on the wire (path and query, URL.RequestURI), and
// hands the base transport a copy of the request whose Body and GetBody yield
// the same bytes, so a retry by the base transport resends what was signed.
// Scheme A (WeChat Pay APIv3 style, SchemeA) is the default signer; any Signer
// can replace it (WithSigner). Presigned sends a request signed ahead of time
// (SchemeA.Authorization, SchemeB.SignRequest) as is.
//
// # Scheme B (RFC 9421)
//
// WithSchemeB (or WithSigner with NewSchemeB) signs with RFC 9421 HTTP Message
// Signatures instead, using signing.RequestSigner:
//
//	tr, err := quillclient.NewTransport(
//		quillclient.WithBase(mtls),
//		quillclient.WithSchemeB(),
//		quillclient.WithKeyID(keyID),       // the merchant key's id; the merchant is the certificate's
//		quillclient.WithPrivateKey(signer), // Ed25519, ECDSA P-256 or RSA
//	)
//
// Each request gets Signature-Input and Signature covering @method,
// @target-uri (the URL's scheme, the Host sent and the raw path and query),
// content-type when set and content-digest (sha-256, also set) when there is
// a body, with parameters created, keyid, nonce and alg. The key type decides
// the algorithm (ed25519, ecdsa-p256-sha256, rsa-v1_5-sha256); an RSA key
// registered for rsa-pss-sha512 needs WithAlgorithm(signing.RSAPSSSHA512).
// Responses are verified with signing.VerifyMessageResponse: signed with
// Quill's Ed25519 (or P-256) platform key, found by the response's keyid in
// the same GET /v1/certificates listing (RSA keys listed there are refused for
// scheme B), covering @status, content-type, content-digest and the request's
// own signature ("signature";key="sig1";req), so a response cannot be replayed
// as the answer to another request; created must be within the window.
//
// # Responses
//
// Every Quill response, errors included, is signed with a platform key. The
// transport reads the body (up to WithMaxResponseBody), verifies it with the
// signer's ResponseVerifier and returns it only if the signature holds; any
// failure is a *ResponseError matching ErrUnverified, never a response. The
// verification key is chosen by the id the response names (Wechatpay-Serial)
// from GET /v1/certificates on the same host, fetched on first use and cached
// by id (scheme B: the keyid of the response's Signature-Input). An unknown
// id (after a platform-key rotation) triggers one refetch,
// at most once per WithRefetchInterval; the refetched listing replaces the old
// one, so a key Quill stopped publishing stops verifying. WithPinnedKeys
// trusts a fixed set instead and never fetches.
//
// Security caveats:
//
//   - The listing of platform keys is trusted because it arrives over TLS from
//     the server whose certificate the base transport checked, and its own
//     response must verify under a key it lists. Pin the keys (WithPinnedKeys)
//     if the TLS trust anchor alone is not enough for you.
//   - A *ResponseError means the request reached Quill: the payment may have
//     been recorded. Retry with the same order id (idempotent) or query it; do
//     not act on the unverified status.
//   - Response timestamps are checked against the clock (±300 s by default),
//     but response nonces are not remembered: a captured response could be
//     replayed within the window by someone who can answer in Quill's place,
//     which TLS already prevents.
//   - Nonces come from crypto/rand. WithNonceSource and WithClock exist for
//     tests; a predictable nonce source makes requests replayable.
//   - Private keys are never printed: SchemeA, SchemeB and Transport format
//     as redacted.
//   - Scheme B covers only the listed components: headers other than
//     Content-Type (e.g. Idempotency-Key) are not signed.
//
// # Listings and statements
//
// Client (NewClient over a Transport) reads the routes that return many
// records: ListPayments (ListRefunds) returns a page of the merchant's own
// payments (refunds) and Payments (Refunds) iterates over a whole listing,
// following its sealed cursors;
// Statement writes a daily statement (CSV) to an io.Writer as it arrives, in
// constant memory, checking the platform signature over every byte (scheme
// A: the SHA-256 of TIMESTAMP\nNONCE\nBODY\n, scheme B: Content-Digest) and
// failing with ErrUnverified at the end if it does not hold. Until Statement
// returns nil, what it wrote is unverified: write to a temporary file and
// rename it on success. Refusals are *APIError (code, reason, detail).
//
// The protocol is described in docs/PROTOCOL.md; the same signing for Node.js
// is in clients/js, and testdata/vectors/scheme-a.json and scheme-b.json hold
// the vectors both are checked against.
package quillclient
