package signing

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// DefaultWindow is the timestamp window used when Verifier.Window is zero.
const DefaultWindow = 300 * time.Second

// MaxExpectedBody is how many body bytes Failure.Expected shows at most.
const MaxExpectedBody = 512

const (
	maxExpectedTarget = 1024
	minRSABytes       = 2048 / 8
	maxSignatureBytes = 512 // 4096-bit RSA
)

// Verifier checks scheme A (WeChat Pay APIv3) request signatures. Keys and
// Nonces are required; the other fields are optional. A Verifier is safe for
// concurrent use once set up.
type Verifier struct {
	Keys   KeyResolver
	Nonces NonceStore
	// Window is how far a request's timestamp may be from Now, either way, in
	// whole seconds. Zero means DefaultWindow.
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IsPlatformSerial reports whether serial is one of Quill's platform key
	// serials; it only improves the hint when a client sends it by mistake.
	IsPlatformSerial func(serial string) bool
	// Crypto verifies the signatures; nil means GoCrypto.
	Crypto Crypto
}

func (v *Verifier) window() time.Duration {
	if v.Window <= 0 {
		return DefaultWindow
	}
	return v.Window
}

func (v *Verifier) isPlatformSerial(serial string) bool {
	return v.IsPlatformSerial != nil && v.IsPlatformSerial(serial)
}

// Pooled string-to-sign buffers: Verify hashes one contiguous buffer without
// allocating. Buffers grown for unusually large bodies are not kept.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledBuf = 64 << 10

// digestStringToSign returns the SHA-256 of the scheme A string to sign.
func digestStringToSign(method, target, timestamp, nonce string, body []byte) [sha256.Size]byte {
	bp := bufPool.Get().(*[]byte)
	b := appendStringToSign((*bp)[:0], method, target, timestamp, nonce, body)
	d := sha256.Sum256(b)
	if cap(b) <= maxPooledBuf {
		*bp = b
		bufPool.Put(bp)
	}
	return d
}

// Verify checks r's scheme A signature. The checks run in this order, and the
// first that fails ends verification with nothing recorded:
//
//  1. the Authorization header parses (ErrMalformed);
//  2. its mchid equals r.Merchant, the client certificate's merchant
//     (ErrWrongMerchant);
//  3. serial_no resolves through Keys to an RSA key of at least 2048 bits
//     usable now (ErrUnknownKey);
//  4. the timestamp is within Window of Now (ErrStale);
//  5. the signature verifies over StringToSign of the raw r.Method, r.Target
//     and r.Body (ErrBadSignature; ErrMalformed if it is not base64);
//  6. only then, the nonce is claimed in Nonces (ErrReplay).
//
// Every refusal is a *Failure, which matches ErrUnauthorized and the specific
// sentinel with errors.Is; its Hint and Expected are meant for the honest client
// and never contain key material or the received signature. Two errors are not
// refusals and do not match ErrUnauthorized: an error wrapping ErrUnavailable
// when the nonce store cannot answer with certainty (answer 503, do nothing), and
// a key-resolution error that does not wrap ErrUnknownKey (e.g. the key store is
// down), passed through wrapped.
//
// Passing the nonce check is not proof against replay on its own: the store may
// forget nonces (restart, failover, eviction). The ledger's unique constraint on
// (merchant, order id) is the durable stop.
func (v *Verifier) Verify(ctx context.Context, r Request) (Verified, error) {
	c, err := ParseAuthorization(r.Authorization)
	if err != nil {
		var me *malformedError
		if errors.As(err, &me) {
			return Verified{}, &Failure{Err: ErrMalformed, Hint: me.detail}
		}
		return Verified{}, &Failure{Err: ErrMalformed, Hint: "authorization header does not parse"}
	}
	if c.Merchant != r.Merchant {
		return Verified{}, &Failure{Err: ErrWrongMerchant,
			Hint: fmt.Sprintf("mchid %q is not the merchant of the client certificate (%q)", c.Merchant, r.Merchant)}
	}

	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now()

	pub, err := v.Keys.VerifyingKey(ctx, c.Merchant, c.Serial, t)
	if err != nil {
		if !errors.Is(err, ErrUnknownKey) {
			return Verified{}, fmt.Errorf("signing: resolve key %s/%s: %w", c.Merchant, c.Serial, err)
		}
		return Verified{}, v.unknownKey(c)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok || rsaPub.Size() < minRSABytes {
		// Scheme A is RSA-2048 or larger only; a key registered for another
		// scheme must not be usable here.
		return Verified{}, v.unknownKey(c)
	}

	// Parsing guarantees 1–18 decimal digits, so this cannot fail or overflow.
	ts, err := strconv.ParseInt(c.Timestamp, 10, 64)
	if err != nil {
		return Verified{}, &Failure{Err: ErrMalformed, Hint: "timestamp must be decimal Unix seconds"}
	}
	window := v.window()
	if skew := t.Unix() - ts; skew > int64(window/time.Second) || -skew > int64(window/time.Second) {
		return Verified{}, &Failure{Err: ErrStale, Hint: staleHint(c.Timestamp, skew, t, window)}
	}

	var sigBuf [maxSignatureBytes]byte
	if base64.StdEncoding.DecodedLen(len(c.Signature)) > len(sigBuf) {
		return Verified{}, &Failure{Err: ErrMalformed, Hint: "signature is longer than a 4096-bit RSA signature"}
	}
	n, err := base64.StdEncoding.Strict().Decode(sigBuf[:], []byte(c.Signature))
	if err != nil {
		return Verified{}, &Failure{Err: ErrMalformed, Hint: "signature is not standard (padded) base64"}
	}
	sig := sigBuf[:n]
	digest := digestStringToSign(r.Method, r.Target, c.Timestamp, c.Nonce, r.Body)
	if v.verifyPKCS1(rsaPub, digest[:], sig) != nil {
		return Verified{}, v.badSignature(rsaPub, sig, r, c)
	}

	if err := v.Nonces.Claim(ctx, c.Merchant, c.Nonce, nonceTTL(window)); err != nil {
		switch {
		case errors.Is(err, ErrReplay):
			return Verified{}, &Failure{Err: ErrReplay,
				Hint: "nonce_str was already used within the replay window; send a fresh random nonce_str with every request"}
		case errors.Is(err, ErrUnavailable):
			return Verified{}, err
		default:
			// Any other answer is not a certain "first use": fail closed as unavailable.
			return Verified{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return Verified{
		Scheme:        SchemeWeChatPay,
		Merchant:      c.Merchant,
		KeyID:         c.Serial,
		Nonce:         c.Nonce,
		Timestamp:     time.Unix(ts, 0),
		Authorization: r.Authorization,
	}, nil
}

// nonceTTL is how long a claimed nonce must be remembered. A request stamped ts
// is accepted while floor(now) is in [ts-W, ts+W], i.e. for 2W+1s of real time;
// it can first be seen at the start of that span, so the claim must outlive the
// rest of it. A TTL of only W would let a request sent early (ts in the future
// by up to W) be replayed after its nonce expired but while its timestamp is
// still fresh. Clock skew between API nodes adds to the span; the ledger's
// unique constraint covers what this margin does not.
func nonceTTL(window time.Duration) time.Duration {
	return 2*window + time.Second
}

func (v *Verifier) unknownKey(c Credentials) *Failure {
	if v.isPlatformSerial(c.Serial) {
		return &Failure{Err: ErrUnknownKey,
			Hint: "serial_no is Quill's platform serial; send your merchant key's serial"}
	}
	return &Failure{Err: ErrUnknownKey,
		Hint: fmt.Sprintf("serial_no %q is not an active RSA-2048 key of merchant %q", c.Serial, c.Merchant)}
}

func staleHint(timestamp string, skew int64, now time.Time, window time.Duration) string {
	if len(timestamp) == 13 {
		return "timestamp looks like milliseconds; send Unix seconds"
	}
	dir := "behind"
	if skew < 0 {
		dir, skew = "ahead of", -skew
	}
	return fmt.Sprintf("timestamp is %d s %s Quill's clock (now %d); the window is ±%d s",
		skew, dir, now.Unix(), int64(window/time.Second))
}

// badSignature builds the failure for a signature that does not verify, with
// hints for the known client-side traps. It runs only on the failure path.
func (v *Verifier) badSignature(pub *rsa.PublicKey, sig []byte, r Request, c Credentials) *Failure {
	sum := sha256.Sum256(r.Body)
	hints := []string{fmt.Sprintf("signature does not verify over the expected string to sign; it must cover the exact raw body bytes and request-target (path and query) as sent, with Unix-second timestamp and nonce_str from the header; the body Quill received is %d bytes with SHA-256 %x: if yours differs, the body is the cause", len(r.Body), sum)}
	if i := strings.IndexByte(r.Target, '?'); i >= 0 {
		d := digestStringToSign(r.Method, r.Target[:i], c.Timestamp, c.Nonce, r.Body)
		if v.verifyPKCS1(pub, d[:], sig) == nil {
			hints = []string{"the signed URL omitted the query string; sign the path and query exactly as sent"}
		}
	}
	if how := reserialized(r.Body, func(body []byte) bool {
		d := digestStringToSign(r.Method, r.Target, c.Timestamp, c.Nonce, body)
		return v.verifyPKCS1(pub, d[:], sig) == nil
	}); how != "" {
		hints = []string{fmt.Sprintf("the body is the likely cause: it was re-serialized between signing and sending (the signature verifies over the body %s); sign the exact raw body bytes you send, and send the bytes you signed", how)}
	}
	if v.isPlatformSerial(c.Serial) {
		hints = append(hints, "serial_no is Quill's platform serial; send your merchant key's serial")
	}
	return &Failure{Err: ErrBadSignature, Hint: strings.Join(hints, "; "), Expected: expected(r, c)}
}

// expected renders the string Quill expected to be signed for the client,
// truncating the target and body; newlines are kept so it reads as the five
// lines. Secrets in the body (a payer token, anything JWT-shaped) are
// redacted (Redact): the hint gives the body's length and SHA-256 instead.
func expected(r Request, c Credentials) string {
	target, body := r.Target, []byte(Redact(string(r.Body)))
	var more int
	if len(target) > maxExpectedTarget {
		target = truncUTF8(target, maxExpectedTarget) + "…"
	}
	if len(body) > MaxExpectedBody {
		cut := len(truncUTF8(string(body[:MaxExpectedBody+1]), MaxExpectedBody))
		more, body = len(body)-cut, body[:cut]
	}
	b := appendStringToSign(nil, r.Method, target, c.Timestamp, c.Nonce, body)
	if more > 0 {
		b = append(b[:len(b)-1], fmt.Sprintf("…(%d more bytes)\n", more)...)
	}
	return string(b)
}

// reserialized reports how body, as received, differs from a body that
// verifies: it tries the common re-serializations of JSON (whitespace
// removed, two-space indentation, a trailing newline added or dropped) and
// returns a description of the first that verifies, or "". It runs only on
// the failure path, a few signature checks at most.
func reserialized(body []byte, verifies func([]byte) bool) string {
	if len(body) == 0 || len(body) > maxPooledBuf {
		return ""
	}
	var tries []struct {
		how  string
		body []byte
	}
	add := func(how string, b []byte) {
		if !bytes.Equal(b, body) {
			tries = append(tries, struct {
				how  string
				body []byte
			}{how, b})
		}
	}
	if json.Valid(body) {
		var compact, indented bytes.Buffer
		if json.Compact(&compact, body) == nil {
			add("with the JSON whitespace removed", compact.Bytes())
		}
		if json.Indent(&indented, body, "", "  ") == nil {
			add("indented with two spaces", indented.Bytes())
		}
	}
	if body[len(body)-1] == '\n' {
		add("without its trailing newline", body[:len(body)-1])
	} else {
		add("with a trailing newline", append(bytes.Clone(body), '\n'))
	}
	for _, t := range tries {
		if verifies(t.body) {
			return t.how
		}
	}
	return ""
}

// truncUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
