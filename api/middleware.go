package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/signing"
)

// ctxKey is unexported so no other package can read or overwrite our values.
type ctxKey int

const (
	accessKey   ctxKey = iota // *access, the envelope's log record
	verifiedKey               // verifiedRequest, set once by authenticate
)

// verifiedRequest is what authenticate proved about a request: the verified
// signature (scheme, merchant, key, evidence) and the raw body it covers.
// authenticate puts it in the request's context once, before the handler
// runs; nothing changes it afterwards, and handlers read it, never the
// request headers, for who is asking.
type verifiedRequest struct {
	signing.Verified
	body []byte
}

// verifiedFrom returns the request's verified signature, and false before
// authenticate (or outside it: the certificates route of a refused request
// never gets here).
func verifiedFrom(ctx context.Context) (verifiedRequest, bool) {
	v, ok := ctx.Value(verifiedKey).(verifiedRequest)
	return v, ok
}

// access is the envelope's record of one request for its access-log line,
// the failure limiter and the response signature. Only the envelope reads it;
// writeError records the error in it and authenticate the verified
// signature, through the context, so no ResponseWriter wrapping can lose
// them. Handlers never read it: they have verifiedFrom.
type access struct {
	id       string
	verified signing.Verified // zero until a signature verified
	err      error
	code     string
	reason   string
	stream   *streamBody // set by streamResponse: the envelope sends this body itself
}

func accessFrom(ctx context.Context) *access {
	a, _ := ctx.Value(accessKey).(*access)
	return a
}

func requestIDFrom(ctx context.Context) string {
	if a := accessFrom(ctx); a != nil {
		return a.id
	}
	return ""
}

// requestIDs makes ids unique across processes (random boot prefix) and cheap
// (a counter).
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return &requestIDs{prefix: hex.EncodeToString(b)}
}

func (g *requestIDs) next() string {
	return g.prefix + "-" + strconv.FormatUint(g.n.Add(1), 36)
}

// recorder buffers a response so it can be signed over its exact bytes before
// anything reaches the client.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	// presigned: the Wechatpay-* headers are already set for this body
	// (the failure limiter's cached 429), so envelope does not sign it again.
	presigned bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) reset() {
	r.status, r.body = 0, bytes.Buffer{}
}

// ResponseSigner signs response bodies with the platform key (scheme A).
type ResponseSigner interface {
	// Prepare returns the function that signs one response body (the
	// Wechatpay-* header values) with the platform key current now, or an error
	// if there is none.
	Prepare(ctx context.Context) (func(body []byte) (signing.ResponseSignature, error), error)
}

// MessageSigner signs responses to scheme B requests with RFC 9421 and the
// Ed25519 platform key (signing.MessageResponseSigner).
type MessageSigner interface {
	// Prepare returns the function that signs one response as the answer to
	// req (a scheme B Verified, or signing.BindingOf for a refused request)
	// with the platform key current now, or an error if there is none.
	Prepare(ctx context.Context) (func(resp signing.MessageResponse, req signing.Verified) (signing.MessageHeaders, error), error)
}

// Signers are the platform's two response signers: A (Wechatpay-* headers)
// for scheme A requests and requests in neither scheme, B (RFC 9421) for
// requests with Signature-Input or Signature. A request carrying both gets
// both signatures on its refusal. B may be nil: scheme B requests are then
// refused 503, unsigned.
type Signers struct {
	A ResponseSigner
	B MessageSigner
}

// usesSchemeB reports whether r carries scheme B (RFC 9421) signature fields,
// even unparseable ones: its answer, refusals included, is signed with RFC
// 9421, since that is what its client verifies.
func usesSchemeB(r *http.Request) bool {
	return len(r.Header.Values("Signature-Input")) > 0 || len(r.Header.Values("Signature")) > 0
}

func usesSchemeA(r *http.Request) bool { return len(r.Header.Values("Authorization")) > 0 }

// envelope gives every response a request id, panic recovery, a platform
// signature and one access-log line. It takes the platform key(s) before the
// request runs, so a request whose answer could not be signed is refused
// before it does anything; then it buffers the response, lets the failure
// limiter (nil: none) swap a throttled refusal for its 429, signs the exact
// bytes sent (none for HEAD) in the request's scheme, and writes headers and
// body. hooks feed the access-log line and the observer (metrics).
func envelope(ids *requestIDs, signers Signers, limit *throttle, log zerolog.Logger, hooks accessHooks) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			a := &access{id: ids.next()}
			r = r.WithContext(context.WithValue(r.Context(), accessKey, a))
			rec := &recorder{header: w.Header()}
			w.Header().Set("Request-ID", a.id)
			schemeB := usesSchemeB(r)
			needA := !schemeB || usesSchemeA(r)
			var signA func([]byte) (signing.ResponseSignature, error)
			var signB func(signing.MessageResponse, signing.Verified) (signing.MessageHeaders, error)
			var err error
			if needA {
				signA, err = signers.A.Prepare(r.Context())
			}
			if err == nil && schemeB {
				if signers.B == nil {
					err = errors.New("no scheme B response signer")
				} else {
					signB, err = signers.B.Prepare(r.Context())
				}
			}
			if err != nil {
				// Without the platform key no response can be trusted by the
				// client: refuse unsigned, before any work.
				writeError(rec, r, fmt.Errorf("%w: %w", errSignerUnavailable, err))
				w.Header().Set("Content-Length", strconv.Itoa(rec.body.Len()))
				w.WriteHeader(rec.status)
				w.Write(rec.body.Bytes())
				logAccess(log, r, a, rec, time.Since(start), hooks)
				return
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						if p == http.ErrAbortHandler {
							panic(p)
						}
						for k := range rec.header {
							delete(rec.header, k)
						}
						rec.header.Set("Request-ID", a.id)
						rec.reset()
						writeError(rec, r, fmt.Errorf("api: panic: %v\n%s", p, debug.Stack()))
					}
				}()
				next.ServeHTTP(rec, r)
			}()
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			if a.stream != nil {
				if sent, err := serveStream(w, r, a, rec, signers, needA, signB); sent {
					logAccess(log, r, a, rec, time.Since(start), hooks)
					if err != nil {
						panic(http.ErrAbortHandler) // cut the connection: the body is incomplete
					}
					return
				}
			}
			if limit != nil {
				limit.apply(r, rec, a, needA)
			}
			if r.Method == http.MethodHead {
				rec.body.Reset() // a HEAD response carries no body, so none is signed
			}
			if err := signResponse(r, rec, a, signA, signB); err != nil {
				// Only a crypto failure gets here, after the handler ran: the
				// outcome must not be reported as "nothing was done".
				err = fmt.Errorf("api: sign response: %w", err)
				rec.reset()
				for _, k := range []string{"Idempotent-Replayed", "Content-Type", "Retry-After",
					"Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial", "Wechatpay-Signature",
					"Signature-Input", "Signature", "Content-Digest"} {
					rec.header.Del(k)
				}
				writeError(rec, r, err)
				a.code = internalRule.code
			}
			rec.header.Set("Content-Length", strconv.Itoa(rec.body.Len()))
			w.WriteHeader(rec.status)
			w.Write(rec.body.Bytes())
			logAccess(log, r, a, rec, time.Since(start), hooks)
		})
	}
}

// signResponse signs rec's exact body with each prepared signer: scheme A's
// Wechatpay-* headers (unless rec is presigned), and scheme B's RFC 9421
// fields, bound to the verified request signature or, for a refusal, to what
// can be read of it (signing.BindingOf).
func signResponse(r *http.Request, rec *recorder, a *access, signA func([]byte) (signing.ResponseSignature, error),
	signB func(signing.MessageResponse, signing.Verified) (signing.MessageHeaders, error)) error {
	h := rec.header
	if signA != nil && !rec.presigned {
		sig, err := signA(rec.body.Bytes())
		if err != nil {
			return err
		}
		h.Set("Wechatpay-Timestamp", sig.Timestamp)
		h.Set("Wechatpay-Nonce", sig.Nonce)
		h.Set("Wechatpay-Serial", sig.Serial)
		h.Set("Wechatpay-Signature", sig.Signature)
	}
	if signB != nil {
		bind := a.verified
		if bind.Scheme != signing.SchemeHTTPSig {
			bind = signing.BindingOf(r.Header)
		}
		mh, err := signB(signing.MessageResponse{Status: rec.status, Header: h, Body: rec.body.Bytes()}, bind)
		if err != nil {
			return err
		}
		h.Set("Content-Digest", mh.ContentDigest)
		h.Set("Signature-Input", mh.SignatureInput)
		h.Set("Signature", mh.Signature)
	}
	return nil
}

// logAccess writes one line per request and hands its record to the
// observer. It names the merchant (on a refusal without a verified signature,
// the one the client certificate identified), scheme and key id once
// verified, and the remote address, but never the Authorization or Signature
// header, a token or a body; the refusal's reason is redacted
// (signing.Redact) like the hint.
func logAccess(log zerolog.Logger, r *http.Request, a *access, rec *recorder, took time.Duration, hooks accessHooks) {
	defer hooks.record(r, a, rec, took)
	var ev *zerolog.Event
	switch {
	case rec.status >= 500:
		ev = log.Error()
	case rec.status >= 400:
		ev = log.Warn()
	default:
		ev = log.Info()
	}
	ev = ev.Str("request_id", a.id).
		Str("method", r.Method).
		Str("path", r.URL.Path).
		Int("status", rec.status).
		Float64("latency_ms", millis(took)).
		Str("remote_addr", r.RemoteAddr)
	if a.verified.Merchant != "" {
		ev = ev.Str("merchant", a.verified.Merchant).Str("key_id", a.verified.KeyID).Str("scheme", a.verified.Scheme)
	} else if rec.status >= 400 && rec.status < 500 {
		if m := hooks.certMerchant(r); m != "" {
			ev = ev.Str("merchant", m)
		}
	}
	if a.code != "" {
		ev = ev.Str("code", a.code)
	}
	if a.reason != "" && a.reason != a.code {
		ev = ev.Str("reason_code", a.reason)
	}
	if a.err != nil && rec.status >= 500 {
		ev = ev.Str("error", signing.Redact(a.err.Error()))
	} else if a.err != nil {
		ev = ev.Str("reason", signing.Redact(a.err.Error()))
	}
	if rec.header.Get("Idempotent-Replayed") != "" {
		ev = ev.Bool("replayed", true)
	}
	ev.Msg("request")
}

// Authenticator verifies a request's signature, timestamp and nonce, in
// either scheme; authenticate picks the method by the headers present.
type Authenticator interface {
	// Verify checks a scheme A (WeChat Pay APIv3) request. It returns what
	// was verified, an error wrapping signing.ErrUnauthorized (401) or
	// signing.ErrUnavailable (503).
	Verify(ctx context.Context, r signing.Request) (signing.Verified, error)
	// VerifyMessage checks a scheme B (RFC 9421) request, with the same
	// errors as Verify.
	VerifyMessage(ctx context.Context, r signing.MessageRequest) (signing.Verified, error)
}

// Identify names the merchant proven by the connection's client certificate.
type Identify func(r *http.Request) (string, error)

// maxTarget bounds the request-target (path and query) like every other text
// stored with a ledger entry.
const maxTarget = 4096

// singleHeaders are the headers what is verified, routed or decoded depends
// on; each may appear at most once. net/http already refuses a repeated Host
// and conflicting Content-Length or Transfer-Encoding headers.
var singleHeaders = []string{"Authorization", "Content-Type"}

// checkRequest refuses, before a nonce is spent on it, a request whose parts
// could be read two ways: signed in both schemes (errAmbiguousScheme), a
// repeated header the signature or the decoding
// depends on (a proxy may read the last where Quill reads the first), or a
// request-target other than an origin-form path, since the signature covers
// the target as sent and an absolute form would name a host the routing
// ignores. The target is also stored as evidence, so what the ledger would
// refuse (over long, not UTF-8, NUL) is refused here.
func checkRequest(r *http.Request) error {
	for _, h := range singleHeaders {
		if len(r.Header.Values(h)) > 1 {
			return malformed("more than one " + h + " header")
		}
	}
	if usesSchemeA(r) && usesSchemeB(r) {
		return errAmbiguousScheme
	}
	switch {
	case len(r.RequestURI) > maxTarget:
		return errTargetTooLong
	case !strings.HasPrefix(r.RequestURI, "/"):
		return malformed("the request-target must be in origin form (a path starting with /); absolute-form targets are refused")
	case !utf8.ValidString(r.RequestURI) || strings.ContainsRune(r.RequestURI, 0):
		return malformed("the request-target is not valid UTF-8 text")
	}
	return nil
}

// bodyError classifies a failed body read. Each cause is the client's: a body
// over the limit, one that did not arrive before the server's read timeout
// (a slow or stalled client), or one cut short or badly framed.
func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooLarge):
		return errBodyTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		return &detailed{err: errBodyTimeout, detail: "the body did not arrive within the server's read timeout", cause: err}
	default:
		return &detailed{err: errMalformedRequest, detail: "the body ended before its declared length or is badly framed", cause: err}
	}
}

// authenticate runs checks 2–6 in the scheme the headers name (Authorization:
// scheme A; Signature-Input and Signature: scheme B; both were refused by
// checkRequest; neither is a 401): the merchant in the signature equals the
// certificate's, the key resolves, the timestamp is in the window, the
// signature verifies over the raw request-target and body, the nonce is new.
// The verified signature and the raw body go into the context once, as a
// verifiedRequest, for the handler and as evidence.
func authenticate(a Authenticator, identify Identify, maxBody int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			merchant, err := identify(r)
			if err != nil {
				writeError(w, r, fmt.Errorf("%w: %w", errNoClientIdentity, err))
				return
			}
			if err := checkRequest(r); err != nil {
				writeError(w, r, err)
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				writeError(w, r, bodyError(err))
				return
			}
			var v signing.Verified
			switch {
			case usesSchemeB(r):
				v, err = a.VerifyMessage(r.Context(), signing.MessageRequest{
					Method:    r.Method,
					Scheme:    "https",
					Authority: r.Host,
					Target:    r.RequestURI,
					Header:    r.Header,
					Body:      body,
					Merchant:  merchant,
				})
			case usesSchemeA(r):
				v, err = a.Verify(r.Context(), signing.Request{
					Method:        r.Method,
					Target:        r.RequestURI,
					Authorization: r.Header.Get("Authorization"),
					Body:          body,
					Merchant:      merchant,
				})
			default:
				err = errNoSignature
			}
			if err != nil {
				writeError(w, r, err)
				return
			}
			if acc := accessFrom(r.Context()); acc != nil {
				acc.verified = v
			}
			ctx := context.WithValue(r.Context(), verifiedKey, verifiedRequest{Verified: v, body: body})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
