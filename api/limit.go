package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quillpay/quill/signing"
)

// FailureLimiter bounds what refused requests cost. Each answer is signed
// with the platform's RSA key (about 1 ms of CPU), so a client holding only a
// merchant's certificate could otherwise make Quill sign as fast as it can
// send garbage. It counts, per merchant of the client certificate, requests
// refused before they were authenticated (a 4xx without a verified
// signature); past Max in one Window, such refusals are answered with one
// cached, signed 429 and Retry-After until the window ends. Requests that do
// verify are served as usual throughout, so a merchant's healthy clients keep
// working while a broken or hostile one is throttled.
//
// Windows are fixed: the first refusal opens one; at most Max refusals per
// merchant per Window cost a signature. A throttled answer is held for Delay
// (or until the window ends, if sooner) before it is sent: a client looping
// on refusals over keep-alive connections then gets at most one answer per
// connection per Delay, and connections per merchant are capped below this
// layer, so a flood cannot buy CPU with request rate either. A
// FailureLimiter is safe for concurrent use.
type FailureLimiter struct {
	max    int
	window time.Duration
	delay  time.Duration
	now    func() time.Time

	mu        sync.Mutex
	windows   map[string]*failWindow
	throttled atomic.Uint64
}

type failWindow struct {
	start time.Time
	n     int
}

// maxTracked is how many merchants' windows are kept before expired ones
// are swept; identities come from certificates Quill issued, so it is a
// bound on work, not on memory an attacker controls.
const maxTracked = 4096

// NewFailureLimiter allows max refusals per merchant per window and holds
// each throttled answer for delay; now is the clock (time.Now if nil).
func NewFailureLimiter(max int, window, delay time.Duration, now func() time.Time) *FailureLimiter {
	if now == nil {
		now = time.Now
	}
	return &FailureLimiter{max: max, window: window, delay: delay, now: now, windows: map[string]*failWindow{}}
}

// refuse records one refusal of merchant and returns how long its refusals
// stay throttled counting this one: zero while it is within Max.
func (l *FailureLimiter) refuse(merchant string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[merchant]
	if w == nil || now.Sub(w.start) >= l.window {
		if w == nil && len(l.windows) >= maxTracked {
			for k, v := range l.windows {
				if now.Sub(v.start) >= l.window {
					delete(l.windows, k)
				}
			}
		}
		w = &failWindow{start: now}
		l.windows[merchant] = w
	}
	if w.n++; w.n <= l.max {
		return 0
	}
	l.throttled.Add(1)
	return w.start.Add(l.window).Sub(now)
}

// Throttled counts the refusals answered with the throttled 429 since the
// limiter was made, for metrics.
func (l *FailureLimiter) Throttled() uint64 { return l.throttled.Load() }

// presignTTL is how long one signed 429 is reused: its Wechatpay-Timestamp
// is at most this old, well inside the ±5 min clients accept.
const presignTTL = 10 * time.Second

// presigned429 is the throttled answer, signed once per presignTTL. The body
// carries no request id so it can be shared; Request-ID is in the header.
type presigned429 struct {
	signer ResponseSigner
	now    func() time.Time
	body   []byte

	mu  sync.Mutex
	sig signing.ResponseSignature
	at  time.Time
}

// newPresigned429 is the throttled answer; for HEAD, whose response carries
// no body (and so signs none), it is the empty body.
func newPresigned429(signer ResponseSigner, now func() time.Time, head bool) *presigned429 {
	var body []byte
	if !head {
		body, _ = json.Marshal(problemFor(errTooManyFailures, ""))
	}
	return &presigned429{signer: signer, now: now, body: body}
}

// signature returns the cached signature of body, re-signing when it is
// older than presignTTL.
func (p *presigned429) signature(ctx context.Context) (signing.ResponseSignature, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := p.now(); p.sig.Signature == "" || now.Sub(p.at) >= presignTTL || now.Before(p.at) {
		sign, err := p.signer.Prepare(ctx)
		if err != nil {
			return signing.ResponseSignature{}, err
		}
		sig, err := sign(p.body)
		if err != nil {
			return signing.ResponseSignature{}, err
		}
		p.sig, p.at = sig, now
	}
	return p.sig, nil
}

// throttle applies a FailureLimiter to the merchant identify names ("" for
// a connection that names none). The envelope calls it once the handler has
// answered: a refusal of an unauthenticated request of a throttled merchant
// is swapped for the 429. For a scheme A answer that is the presigned 429
// (envelope does not sign again); a scheme B answer must be bound to its own
// request's signature, so its 429 is signed by the envelope as usual, with
// Ed25519, fifty times cheaper than the RSA signature the cache saves. The
// refusal's reason stays in the access log.
type throttle struct {
	l        *FailureLimiter
	identify Identify
	answers  map[bool]*presigned429 // by HEAD
}

func newThrottle(l *FailureLimiter, identify Identify, signer ResponseSigner) *throttle {
	if l == nil {
		return nil
	}
	return &throttle{l: l, identify: identify, answers: map[bool]*presigned429{
		false: newPresigned429(signer, l.now, false), true: newPresigned429(signer, l.now, true)}}
}

// apply swaps rec, the answer to r, for the 429 if r is a refusal to count
// and its merchant is throttled; schemeA says whether the answer is signed
// with scheme A (and so can be the presigned one).
func (t *throttle) apply(r *http.Request, rec *recorder, a *access, schemeA bool) {
	if a.verified.Merchant != "" || rec.status < 400 || rec.status >= 500 {
		return
	}
	merchant, err := t.identify(r)
	if err != nil {
		merchant = ""
	}
	wait := t.l.refuse(merchant)
	if wait <= 0 {
		return
	}
	reason := fmt.Errorf("%w (refused: %v)", errTooManyFailures, a.err)
	for k := range rec.header {
		delete(rec.header, k)
	}
	rec.header.Set("Request-ID", a.id)
	rec.header.Set("Retry-After", strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10))
	rec.reset()
	answer := t.answers[r.Method == http.MethodHead]
	var sig signing.ResponseSignature
	if schemeA {
		if sig, err = answer.signature(r.Context()); err != nil {
			writeError(rec, r, reason) // envelope signs it, or refuses unsigned
			return
		}
		rec.header.Set("Wechatpay-Timestamp", sig.Timestamp)
		rec.header.Set("Wechatpay-Nonce", sig.Nonce)
		rec.header.Set("Wechatpay-Serial", sig.Serial)
		rec.header.Set("Wechatpay-Signature", sig.Signature)
		rec.presigned = true
	}
	rec.header.Set("Content-Type", "application/problem+json")
	rec.status = http.StatusTooManyRequests
	a.err, a.code, a.reason = reason, "too_many_failures", "too_many_failures"
	rec.body.Write(answer.body)
	if d := min(t.l.delay, wait); d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-r.Context().Done(): // client gone, or the server shutting down
			timer.Stop()
		}
	}
}
