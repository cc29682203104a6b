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
// can replace it (WithSigner), which is how the RFC 9421 scheme plugs in.
// Presigned sends a request signed ahead of time (SchemeA.Authorization) as is.
//
// # Responses
//
// Every Quill response, errors included, is signed with a platform key. The
// transport reads the body (up to WithMaxResponseBody), verifies it with the
// signer's ResponseVerifier and returns it only if the signature holds; any
// failure is a *ResponseError matching ErrUnverified, never a response. The
// verification key is chosen by the id the response names (Wechatpay-Serial)
// from GET /v1/certificates on the same host, fetched on first use and cached
// by id. An unknown id (after a platform-key rotation) triggers one refetch,
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
//   - Private keys are never printed: SchemeA and Transport format as redacted.
//
// The protocol is described in docs/PROTOCOL.md; the same signing for Node.js
// is in clients/js, and testdata/vectors/scheme-a.json holds the vectors both
// are checked against.
package quillclient
