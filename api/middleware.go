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
type ctxKey struct{}

// reqState is the request-scoped state the middleware and handlers share: the
// request id, and once authenticated, what was verified and the raw body.
type reqState struct {
	id       string
	verified signing.Verified
	body     []byte
}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(ctxKey{}).(*reqState)
	if st == nil {
		return &reqState{}
	}
	return st
}

func requestIDFrom(ctx context.Context) string { return stateFrom(ctx).id }

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
	// set by writeError, for the access log
	err  error
	code string
	// presigned: the Wechatpay-* headers are already set for this body
	// (limitFailures' cached 429), so envelope does not sign again.
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

// ResponseSigner signs response bodies with the platform key.
type ResponseSigner interface {
	// Prepare returns the function that signs one response body (the
	// Wechatpay-* header values) with the platform key current now, or an error
	// if there is none.
	Prepare(ctx context.Context) (func(body []byte) (signing.ResponseSignature, error), error)
}

// envelope gives every response a request id, panic recovery, a platform
// signature and one access-log line. It takes the platform key before the
// request runs, so a request whose answer could not be signed is refused
// before it does anything; then it buffers the response, signs the exact bytes
// sent (none for HEAD), and writes headers and body.
func envelope(ids *requestIDs, signer ResponseSigner, log zerolog.Logger, hooks accessHooks) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			st := &reqState{id: ids.next()}
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, st))
			rec := &recorder{header: w.Header()}
			w.Header().Set("Request-ID", st.id)
			sign, err := signer.Prepare(r.Context())
			if err != nil {
				// Without the platform key no response can be trusted by the
				// client: refuse unsigned, before any work.
				writeError(rec, r, fmt.Errorf("%w: %w", errSignerUnavailable, err))
				w.Header().Set("Content-Length", strconv.Itoa(rec.body.Len()))
				w.WriteHeader(rec.status)
				w.Write(rec.body.Bytes())
				logAccess(log, r, st, rec, time.Since(start), hooks)
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
						rec.header.Set("Request-ID", st.id)
						rec.status, rec.body = 0, bytes.Buffer{}
						writeError(rec, r, fmt.Errorf("api: panic: %v\n%s", p, debug.Stack()))
					}
				}()
				next.ServeHTTP(rec, r)
			}()
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			if r.Method == http.MethodHead {
				rec.body.Reset() // a HEAD response carries no body, so none is signed
			}
			h := w.Header()
			if !rec.presigned { // limitFailures' cached 429 already carries its signature
				sig, err := sign(rec.body.Bytes())
				if err != nil {
					// Only a crypto failure gets here, after the handler ran: the
					// outcome must not be reported as "nothing was done".
					rec.err, rec.code = fmt.Errorf("api: sign response: %w", err), internalRule.code
					rec.status, rec.body = 0, bytes.Buffer{}
					for _, k := range []string{"Idempotent-Replayed", "Content-Type"} {
						h.Del(k)
					}
					writeError(rec, r, rec.err)
				} else {
					h.Set("Wechatpay-Timestamp", sig.Timestamp)
					h.Set("Wechatpay-Nonce", sig.Nonce)
					h.Set("Wechatpay-Serial", sig.Serial)
					h.Set("Wechatpay-Signature", sig.Signature)
				}
			}
			h.Set("Content-Length", strconv.Itoa(rec.body.Len()))
			w.WriteHeader(rec.status)
			w.Write(rec.body.Bytes())
			logAccess(log, r, st, rec, time.Since(start), hooks)
		})
	}
}

// logAccess writes one line per request and hands its record to the
// observer. It names the merchant (on a refusal, the one the client
// certificate identified), the key id once verified and the remote address,
// but never the Authorization header, a signature, a token or a body.
func logAccess(log zerolog.Logger, r *http.Request, st *reqState, rec *recorder, took time.Duration, hooks accessHooks) {
	defer hooks.record(r, rec, took)
	var ev *zerolog.Event
	switch {
	case rec.status >= 500:
		ev = log.Error()
	case rec.status >= 400:
		ev = log.Warn()
	default:
		ev = log.Info()
	}
	ev = ev.Str("request_id", st.id).
		Str("method", r.Method).
		Str("path", r.URL.Path).
		Int("status", rec.status).
		Float64("latency_ms", millis(took)).
		Str("remote_addr", r.RemoteAddr)
	if st.verified.Merchant != "" {
		ev = ev.Str("merchant", st.verified.Merchant).Str("key_id", st.verified.KeyID)
	} else if rec.status >= 400 && rec.status < 500 {
		if m := hooks.certMerchant(r); m != "" {
			ev = ev.Str("merchant", m)
		}
	}
	if rec.code != "" {
		ev = ev.Str("code", rec.code)
	}
	if rec.err != nil && rec.status >= 500 {
		ev = ev.AnErr("error", rec.err)
	} else if rec.err != nil {
		ev = ev.Str("reason", rec.err.Error())
	}
	if rec.header.Get("Idempotent-Replayed") != "" {
		ev = ev.Bool("replayed", true)
	}
	ev.Msg("request")
}

// Authenticator verifies a request's signature, timestamp and nonce.
type Authenticator interface {
	// Verify returns what was verified, an error wrapping
	// signing.ErrUnauthorized (401) or signing.ErrUnavailable (503).
	Verify(ctx context.Context, r signing.Request) (signing.Verified, error)
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
// could be read two ways: a repeated header the signature or the decoding
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

// authenticate runs checks 2–6: the merchant in the signature equals the
// certificate's, the key resolves, the timestamp is in the window, the
// signature verifies over the raw request-target and body, the nonce is new.
// The raw body is kept for the handler and as evidence.
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
			v, err := a.Verify(r.Context(), signing.Request{
				Method:        r.Method,
				Target:        r.RequestURI,
				Authorization: r.Header.Get("Authorization"),
				Body:          body,
				Merchant:      merchant,
			})
			if err != nil {
				writeError(w, r, err)
				return
			}
			st := stateFrom(r.Context())
			st.verified, st.body = v, body
			next.ServeHTTP(w, r)
		})
	}
}
