package signing_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/signing"
)

const platformSerial = "PLATFORM-0001"

// fixture is a verifier over the test merchant's key with a fake clock and an
// in-memory nonce store.
type fixture struct {
	v      *signing.Verifier
	nonces *memNonces
	key    crypto.Signer
	other  crypto.Signer
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	key := loadKey(tb, "test-key-rsa.key.pem")
	ed := loadKey(tb, "test-key-ed25519.key.pem")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{nonces: &memNonces{}, key: key, other: loadKey(tb, "other-rsa.key.pem")}
	f.v = &signing.Verifier{
		Keys: keyMap{
			merchant + "/" + serial:     key.Public(),
			merchant + "/ed25519-key":   ed.Public(),
			merchant + "/rsa-1024":      small.Public(),
			"1900000002" + "/" + serial: key.Public(),
		},
		Nonces:           f.nonces,
		Now:              clock,
		IsPlatformSerial: func(s string) bool { return s == platformSerial },
	}
	return f
}

// signRaw builds a header the way a client would, from raw pieces (so tests can
// send millisecond timestamps or sign something other than what is sent).
func signRaw(tb testing.TB, key crypto.Signer, mchid, keyID, method, target, ts, nonce string, body []byte) string {
	tb.Helper()
	d := sha256.Sum256(signing.StringToSign(method, target, ts, nonce, body))
	sig, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	return signing.Credentials{Merchant: mchid, Nonce: nonce, Timestamp: ts, Serial: keyID,
		Signature: base64.StdEncoding.EncodeToString(sig)}.Header()
}

func signedAt(tb testing.TB, key crypto.Signer, method, target string, body []byte, ts time.Time, nonce string) string {
	tb.Helper()
	h, err := signing.SignRequest(key, merchant, serial, method, target, body, ts, nonce)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

var payBody = []byte(`{"order_id":"ORD000000000001","amount":"12.34","currency":"CNY"}`)

func TestVerify(t *testing.T) {
	f := newFixture(t)
	post := func(h string) signing.Request {
		return signing.Request{Method: "POST", Target: "/v1/payments?x=1", Authorization: h, Body: payBody, Merchant: merchant}
	}
	ts := func(d time.Duration) time.Time { return now.Add(d) }
	valid := signedAt(t, f.key, "POST", "/v1/payments?x=1", payBody, now, "N-valid")

	tests := []struct {
		name     string
		req      signing.Request
		want     error  // nil: accepted
		hint     string // substring of Failure.Hint
		expected bool   // Failure.Expected must be the string to sign of req
	}{
		{name: "valid", req: post(valid)},
		{name: "valid body-less GET", req: signing.Request{Method: "GET", Target: "/v1/payments/ORD1?mchid=1900000001",
			Authorization: signedAt(t, f.key, "GET", "/v1/payments/ORD1?mchid=1900000001", nil, now, "N-get"), Merchant: merchant}},
		{name: "at -window", req: post(signedAt(t, f.key, "POST", "/v1/payments?x=1", payBody, ts(-300*time.Second), "N-old"))},
		{name: "at +window", req: post(signedAt(t, f.key, "POST", "/v1/payments?x=1", payBody, ts(300*time.Second), "N-new"))},
		{name: "1s before window", req: post(signedAt(t, f.key, "POST", "/v1/payments?x=1", payBody, ts(-301*time.Second), "N-o2")),
			want: signing.ErrStale, hint: "301 s behind"},
		{name: "1s after window", req: post(signedAt(t, f.key, "POST", "/v1/payments?x=1", payBody, ts(301*time.Second), "N-n2")),
			want: signing.ErrStale, hint: "301 s ahead of"},
		{name: "milliseconds", req: post(signRaw(t, f.key, merchant, serial, "POST", "/v1/payments?x=1",
			strconv.FormatInt(now.UnixMilli(), 10), "N-ms", payBody)),
			want: signing.ErrStale, hint: "milliseconds"},
		{name: "tampered body", req: signing.Request{Method: "POST", Target: "/v1/payments?x=1", Authorization: valid,
			Body: []byte(`{"order_id":"ORD000000000001","amount":"99.99","currency":"CNY"}`), Merchant: merchant},
			want: signing.ErrBadSignature, hint: "exact raw body bytes", expected: true},
		{name: "re-serialized body", req: signing.Request{Method: "POST", Target: "/v1/payments?x=1", Authorization: valid,
			Body: []byte(`{"order_id": "ORD000000000001", "amount": "12.34", "currency": "CNY"}`), Merchant: merchant},
			want: signing.ErrBadSignature, hint: "the body is the likely cause: it was re-serialized", expected: true},
		{name: "trailing newline added", req: signing.Request{Method: "POST", Target: "/v1/payments?x=1", Authorization: valid,
			Body: append(append([]byte(nil), payBody...), '\n'), Merchant: merchant},
			want: signing.ErrBadSignature, hint: "the body is the likely cause", expected: true},
		{name: "tampered query", req: signing.Request{Method: "POST", Target: "/v1/payments?x=2", Authorization: valid,
			Body: payBody, Merchant: merchant},
			want: signing.ErrBadSignature, hint: "request-target", expected: true},
		{name: "tampered method", req: signing.Request{Method: "PUT", Target: "/v1/payments?x=1", Authorization: valid,
			Body: payBody, Merchant: merchant},
			want: signing.ErrBadSignature, expected: true},
		{name: "query missing from signed URL", req: post(signedAt(t, f.key, "POST", "/v1/payments", payBody, now, "N-q")),
			want: signing.ErrBadSignature, hint: "omitted the query string", expected: true},
		{name: "signed by another key", req: post(signedAt(t, f.other, "POST", "/v1/payments?x=1", payBody, now, "N-other")),
			want: signing.ErrBadSignature, expected: true},
		{name: "unknown key id", req: post(signRaw(t, f.key, merchant, "no-such-key", "POST", "/v1/payments?x=1", "1700000000", "N-u", payBody)),
			want: signing.ErrUnknownKey, hint: `serial_no "no-such-key" is not an active`},
		{name: "platform serial", req: post(signRaw(t, f.key, merchant, platformSerial, "POST", "/v1/payments?x=1", "1700000000", "N-p", payBody)),
			want: signing.ErrUnknownKey, hint: "platform serial"},
		{name: "key of another merchant", req: signing.Request{Method: "POST", Target: "/v1/payments?x=1", Body: payBody, Merchant: "1900000003",
			Authorization: signRaw(t, f.key, "1900000003", serial, "POST", "/v1/payments?x=1", "1700000000", "N-m3", payBody)},
			want: signing.ErrUnknownKey},
		{name: "ed25519 key registered", req: post(signRaw(t, f.key, merchant, "ed25519-key", "POST", "/v1/payments?x=1", "1700000000", "N-e", payBody)),
			want: signing.ErrUnknownKey},
		{name: "RSA-1024 key registered", req: post(signRaw(t, f.key, merchant, "rsa-1024", "POST", "/v1/payments?x=1", "1700000000", "N-s", payBody)),
			want: signing.ErrUnknownKey},
		{name: "wrong merchant", req: signing.Request{Method: "POST", Target: "/v1/payments?x=1", Body: payBody, Authorization: valid, Merchant: "1900000002"},
			want: signing.ErrWrongMerchant, hint: "not the merchant of the client certificate"},
		{name: "malformed header", req: post(strings.Replace(valid, "nonce_str=", "nonce=", 1)),
			want: signing.ErrMalformed, hint: `unknown field "nonce"`},
		{name: "empty header", req: post(""), want: signing.ErrMalformed, hint: "scheme must be"},
		{name: "signature not base64", req: post(signing.Credentials{Merchant: merchant, Nonce: "N-b", Timestamp: "1700000000",
			Serial: serial, Signature: "not*base64"}.Header()),
			want: signing.ErrMalformed, hint: "base64"},
		{name: "signature unpadded base64", req: post(strings.Replace(valid, `==",`, `",`, 1)),
			want: signing.ErrMalformed, hint: "base64"},
		{name: "signature too long", req: post(signing.Credentials{Merchant: merchant, Nonce: "N-l", Timestamp: "1700000000",
			Serial: serial, Signature: strings.Repeat("AAAA", 200)}.Header()),
			want: signing.ErrMalformed, hint: "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := f.nonces.calls
			got, err := f.v.Verify(context.Background(), tt.req)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				c, _ := signing.ParseAuthorization(tt.req.Authorization)
				ts, _ := strconv.ParseInt(c.Timestamp, 10, 64)
				want := signing.Verified{Scheme: signing.SchemeWeChatPay, Merchant: merchant, KeyID: serial,
					Nonce: c.Nonce, Timestamp: time.Unix(ts, 0), Authorization: tt.req.Authorization}
				if got != want {
					t.Errorf("Verified = %+v, want %+v", got, want)
				}
				if f.nonces.calls != calls+1 {
					t.Errorf("nonce store called %d times, want once", f.nonces.calls-calls)
				}
				return
			}
			if got != (signing.Verified{}) {
				t.Errorf("Verified = %+v returned with an error", got)
			}
			if f.nonces.calls != calls {
				t.Errorf("a refused request claimed a nonce")
			}
			fail := checkFailure(t, err, tt.want, tt.req.Authorization)
			if !strings.Contains(fail.Hint, tt.hint) {
				t.Errorf("hint %q does not contain %q", fail.Hint, tt.hint)
			}
			if tt.expected {
				c, _ := signing.ParseAuthorization(tt.req.Authorization)
				want := string(signing.StringToSign(tt.req.Method, tt.req.Target, c.Timestamp, c.Nonce, tt.req.Body))
				if fail.Expected != want {
					t.Errorf("Expected = %q, want %q", fail.Expected, want)
				}
			} else if fail.Expected != "" {
				t.Errorf("Expected = %q, want empty", fail.Expected)
			}
		})
	}
}

// checkFailure asserts err is a *Failure for sentinel that matches
// ErrUnauthorized and does not contain the received signature anywhere.
func checkFailure(tb testing.TB, err error, sentinel error, authorization string) *signing.Failure {
	tb.Helper()
	var fail *signing.Failure
	if !errors.As(err, &fail) {
		tb.Fatalf("error %v (%T) is not a *Failure", err, err)
	}
	if !errors.Is(err, signing.ErrUnauthorized) || !errors.Is(err, sentinel) || fail.Err != sentinel {
		tb.Errorf("error %v: want ErrUnauthorized and %v", err, sentinel)
	}
	if c, perr := signing.ParseAuthorization(authorization); perr == nil && len(c.Signature) >= 16 {
		for _, s := range []string{err.Error(), fail.Hint, fail.Expected} {
			if strings.Contains(s, c.Signature[:16]) {
				tb.Errorf("failure text %q contains the received signature", s)
			}
		}
	}
	return fail
}

func TestVerifyReplay(t *testing.T) {
	f := newFixture(t)
	req := signing.Request{Method: "POST", Target: "/v1/payments", Body: payBody, Merchant: merchant,
		Authorization: signedAt(t, f.key, "POST", "/v1/payments", payBody, now, "N-replay")}
	if _, err := f.v.Verify(context.Background(), req); err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	_, err := f.v.Verify(context.Background(), req)
	fail := checkFailure(t, err, signing.ErrReplay, req.Authorization)
	if !strings.Contains(fail.Hint, "fresh") {
		t.Errorf("hint %q", fail.Hint)
	}
	// The nonce must outlive every instant the timestamp stays acceptable.
	if f.nonces.ttl < 2*signing.DefaultWindow {
		t.Errorf("nonce ttl %v, want at least twice the window %v", f.nonces.ttl, signing.DefaultWindow)
	}
}

func TestVerifyWindowIsConfigurable(t *testing.T) {
	f := newFixture(t)
	f.v.Window = 10 * time.Second
	tests := []struct {
		name  string
		skew  time.Duration
		stale bool
	}{
		{"at -window", -10 * time.Second, false},
		{"at +window", 10 * time.Second, false},
		{"beyond -window", -11 * time.Second, true},
		{"beyond +window", 11 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := signing.Request{Method: "GET", Target: "/", Merchant: merchant,
				Authorization: signedAt(t, f.key, "GET", "/", nil, now.Add(tt.skew), "N-"+tt.name[:2]+tt.skew.String())}
			_, err := f.v.Verify(context.Background(), req)
			if got := errors.Is(err, signing.ErrStale); got != tt.stale {
				t.Errorf("Verify: %v, want stale %v", err, tt.stale)
			}
		})
	}
	if f.nonces.ttl < 2*f.v.Window {
		t.Errorf("nonce ttl %v for window %v", f.nonces.ttl, f.v.Window)
	}
}

func TestVerifyNonceStoreUnavailable(t *testing.T) {
	tests := []struct {
		name     string
		storeErr error
	}{
		{"unavailable", errors.Join(signing.ErrUnavailable, context.DeadlineExceeded)},
		{"unexpected error", errors.New("boom")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.nonces.err = tt.storeErr
			req := signing.Request{Method: "POST", Target: "/v1/payments", Body: payBody, Merchant: merchant,
				Authorization: signedAt(t, f.key, "POST", "/v1/payments", payBody, now, "N-u")}
			got, err := f.v.Verify(context.Background(), req)
			if !errors.Is(err, signing.ErrUnavailable) {
				t.Fatalf("Verify: %v, want ErrUnavailable", err)
			}
			if errors.Is(err, signing.ErrUnauthorized) {
				t.Errorf("Verify: %v matches ErrUnauthorized; an uncertain replay guard is a 503, not a 401", err)
			}
			var fail *signing.Failure
			if errors.As(err, &fail) {
				t.Errorf("Verify returned a *Failure for an unavailable store")
			}
			if got != (signing.Verified{}) {
				t.Errorf("Verified = %+v returned with an error", got)
			}
		})
	}
}

func TestVerifyKeyStoreError(t *testing.T) {
	f := newFixture(t)
	down := errors.New("key store down")
	f.v.Keys = errResolver{err: down}
	req := signing.Request{Method: "GET", Target: "/", Merchant: merchant,
		Authorization: signedAt(t, f.key, "GET", "/", nil, now, "N-k")}
	_, err := f.v.Verify(context.Background(), req)
	if !errors.Is(err, down) || errors.Is(err, signing.ErrUnauthorized) {
		t.Errorf("Verify: %v, want the key store's error, not a 401", err)
	}
	if f.nonces.calls != 0 {
		t.Error("nonce claimed although the key could not be resolved")
	}
}

func TestVerifyExpectedIsTruncated(t *testing.T) {
	f := newFixture(t)
	body := []byte(strings.Repeat("a", 500) + strings.Repeat("é", 100)) // 700 bytes; byte 512 is mid-rune
	req := signing.Request{Method: "POST", Target: "/v1/payments", Body: body, Merchant: merchant,
		Authorization: signedAt(t, f.key, "POST", "/v1/payments", []byte("other"), now, "N-t")}
	_, err := f.v.Verify(context.Background(), req)
	fail := checkFailure(t, err, signing.ErrBadSignature, req.Authorization)
	want := "POST\n/v1/payments\n1700000000\nN-t\n" + strings.Repeat("a", 500) + strings.Repeat("é", 6) + "…(188 more bytes)\n"
	if fail.Expected != want {
		t.Errorf("Expected = %q, want %q", fail.Expected, want)
	}
}

func TestSignRequestVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	f.v.Now = time.Now
	tests := []struct {
		method, target string
		body           []byte
	}{
		{"POST", "/v1/payments", payBody},
		{"GET", "/v1/payments/ORD000000000001?mchid=1900000001&x=%E4%B8%AD", nil},
		{"POST", "/v1/refunds", []byte("{\n  \"binary\": \"\x00\xff\"\n}\n")},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			nonce, err := signing.NewNonce(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			h, err := signing.SignRequest(f.key, merchant, serial, tt.method, tt.target, tt.body, time.Now(), nonce)
			if err != nil {
				t.Fatal(err)
			}
			v, err := f.v.Verify(context.Background(), signing.Request{Method: tt.method, Target: tt.target,
				Authorization: h, Body: tt.body, Merchant: merchant})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if v.Nonce != nonce || v.KeyID != serial || v.Authorization != h {
				t.Errorf("Verified = %+v", v)
			}
		})
	}
}
