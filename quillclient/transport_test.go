package quillclient_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quillpay/quill/quillclient"
	"github.com/quillpay/quill/signing"
)

// TestRoundTrip sends requests of every shape through the transport: the
// server (signing.Verifier, as Quill) must accept each signature, receive the
// body bytes exactly as given, and the client must get the verified answer.
func TestRoundTrip(t *testing.T) {
	f := newFakeQuill(t)
	c := f.client(t)
	odd := []byte("{\"amount\": \"1.00\" ,\r\n \"note\":\"咖啡 \\u00e9\"}\x00\xff\n\n")
	for _, tc := range []struct {
		name, method, path string
		body               func() io.Reader
		want               []byte
	}{
		{"GET without body", "GET", "/v1/payments/ORD000000000001", nil, nil},
		{"GET with query, kept as sent", "GET", "/v1/payments/ORD1?mchid=1900000001&x=a%20b&y=&z=%2F", nil, nil},
		{"POST odd bytes", "POST", "/v1/payments", func() io.Reader { return bytes.NewReader(odd) }, odd},
		{"POST unknown length", "POST", "/v1/payments", func() io.Reader { return onlyReader{bytes.NewReader(odd)} }, odd},
		{"POST empty body", "POST", "/v1/payments", func() io.Reader { return strings.NewReader("") }, nil},
		{"PUT large body", "PUT", "/x", func() io.Reader { return bytes.NewReader(bytes.Repeat([]byte("ab\n"), 100_000)) }, bytes.Repeat([]byte("ab\n"), 100_000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			res, got, err := send(c, tc.method, f.srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, got)
			}
			received, auth := f.lastReceived()
			if !bytes.Equal(received, tc.want) {
				t.Fatalf("server received %d bytes %q, want %d bytes", len(received), trunc(received), len(tc.want))
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("client got back %q, want what it sent", trunc(got))
			}
			if !strings.HasPrefix(auth, signing.SchemeWeChatPay+" ") || !strings.Contains(auth, `serial_no="`+testKeyID+`"`) {
				t.Fatalf("Authorization %q", auth)
			}
		})
	}
}

func trunc(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// recordingBase is a base transport that checks, before sending, that the
// request's Body and GetBody both yield the same bytes (a retry would resend
// exactly what was signed) and that ContentLength says how many.
type recordingBase struct {
	t    *testing.T
	next http.RoundTripper
	mu   sync.Mutex
	seen [][]byte
}

func (b *recordingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	var first []byte
	if req.Body != nil {
		first, _ = io.ReadAll(req.Body)
	}
	if int64(len(first)) != req.ContentLength {
		b.t.Errorf("ContentLength %d, body %d bytes", req.ContentLength, len(first))
	}
	if req.Body == nil || req.Body == http.NoBody {
		return b.next.RoundTrip(req) // the key listing
	}
	if req.GetBody == nil {
		b.t.Fatal("no GetBody: the base transport could not retry")
	}
	for i := range 2 {
		rc, err := req.GetBody()
		if err != nil {
			b.t.Fatal(err)
		}
		again, _ := io.ReadAll(rc)
		if !bytes.Equal(again, first) {
			b.t.Errorf("GetBody #%d yields %q, Body yielded %q", i+1, trunc(again), trunc(first))
		}
	}
	b.mu.Lock()
	b.seen = append(b.seen, first)
	b.mu.Unlock()
	req.Body, _ = req.GetBody()
	return b.next.RoundTrip(req)
}

func TestBodyReadOnceAndRetryable(t *testing.T) {
	f := newFakeQuill(t)
	base := &recordingBase{t: t, next: f.srv.Client().Transport}
	c := f.client(t, quillclient.WithBase(base))
	body := []byte(`{"order_id":"ORD000000000001",   "amount":"12.34"}`)
	req, err := http.NewRequest("POST", f.srv.URL+"/v1/payments", onlyReader{bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got, _ := f.lastReceived(); !bytes.Equal(got, body) {
		t.Fatalf("server got %q", got)
	}
	if req.Header.Get("Authorization") != "" {
		t.Fatal("the caller's request was modified")
	}
}

// TestUnverifiedResponses: a response that does not verify is an error
// (ErrUnverified, a *ResponseError with the status), never a response.
func TestUnverifiedResponses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(h http.Header, body []byte) []byte
		is     error
	}{
		{"body changed after signing", func(h http.Header, b []byte) []byte { return append([]byte(nil), append(b, ' ')...) }, signing.ErrBadSignature},
		{"one body byte flipped", func(h http.Header, b []byte) []byte {
			b = append([]byte(nil), b...)
			b[0] ^= 1
			return b
		}, signing.ErrBadSignature},
		{"timestamp changed", func(h http.Header, b []byte) []byte {
			h.Set("Wechatpay-Timestamp", "1800000001")
			return b
		}, signing.ErrBadSignature},
		{"nonce changed", func(h http.Header, b []byte) []byte {
			h.Set("Wechatpay-Nonce", strings.Repeat("A", 32))
			return b
		}, signing.ErrBadSignature},
		{"signature not base64", func(h http.Header, b []byte) []byte {
			h.Set("Wechatpay-Signature", "!!!")
			return b
		}, signing.ErrBadSignature},
		{"unsigned", func(h http.Header, b []byte) []byte {
			h.Del("Wechatpay-Signature")
			return b
		}, nil},
		{"stale timestamp", func(h http.Header, b []byte) []byte {
			h.Set("Wechatpay-Timestamp", "1799999000")
			return b
		}, quillclient.ErrStaleResponse},
		{"unknown serial", func(h http.Header, b []byte) []byte {
			h.Set("Wechatpay-Serial", "NOSUCH")
			return b
		}, quillclient.ErrUnknownKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeQuill(t)
			c := f.client(t)
			f.setTamper(tc.tamper)
			res, _, err := send(c, "POST", f.srv.URL+"/v1/payments", strings.NewReader(`{"a":"1"}`))
			if res != nil || err == nil {
				t.Fatalf("got a response (%v), want an error", res)
			}
			var re *quillclient.ResponseError
			if !errors.Is(err, quillclient.ErrUnverified) || !errors.As(err, &re) {
				t.Fatalf("err %v, want a *ResponseError matching ErrUnverified", err)
			}
			if re.StatusCode != http.StatusOK || re.RequestID != "req-1" {
				t.Fatalf("status %d, request id %q", re.StatusCode, re.RequestID)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err %v, want it to match %v", err, tc.is)
			}
		})
	}
}

// TestUnknownSerialRefetchesOnce: the keys are fetched on first use, once more
// when a response names a new serial (a rotation), and no more than once per
// interval for a serial that stays unknown.
func TestUnknownSerialRefetchesOnce(t *testing.T) {
	f := newFakeQuill(t)
	c := f.client(t)
	get := func() error {
		_, _, err := send(c, "GET", f.srv.URL+"/v1/payments/ORD1", nil)
		return err
	}
	for range 3 {
		if err := get(); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.listings.Load(); n != 1 {
		t.Fatalf("%d listings fetched for three requests, want 1", n)
	}

	// Rotation: PLAT2 is listed and signs. Many concurrent responses name it;
	// exactly one refetch serves them all.
	f.platform.use("PLAT2", rsaKey(t, 2), true)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- get() }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.listings.Load(); n != 2 {
		t.Fatalf("%d listings after the rotation, want 2", n)
	}

	// A serial that is never listed: one refetch, then refusals without
	// fetching until the interval has passed.
	f.platform.use("ROGUE", rsaKey(t, 3), false)
	for i := range 3 {
		if err := get(); !errors.Is(err, quillclient.ErrUnknownKey) {
			t.Fatalf("request %d: %v, want ErrUnknownKey", i, err)
		}
	}
	if n := f.listings.Load(); n != 3 {
		t.Fatalf("%d listings, want 3: one refetch for the unknown serial", n)
	}
	f.clock.Advance(quillclient.DefaultRefetchInterval)
	if err := get(); !errors.Is(err, quillclient.ErrUnknownKey) {
		t.Fatalf("%v, want ErrUnknownKey", err)
	}
	if n := f.listings.Load(); n != 4 {
		t.Fatalf("%d listings, want 4: the interval had passed", n)
	}

	// Quill stops listing PLAT1: after the next refetch, PLAT1 no longer
	// verifies.
	f.platform.mu.Lock()
	delete(f.platform.listed, "PLAT1")
	f.platform.mu.Unlock()
	f.clock.Advance(2 * time.Second)            // past the floor after a fruitless fetch
	f.platform.use("PLAT3", rsaKey(t, 3), true) // a rotation: refetch
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if n := f.listings.Load(); n != 5 {
		t.Fatalf("%d listings, want 5", n)
	}
	f.clock.Advance(2 * time.Second)
	f.platform.use("PLAT1", rsaKey(t, 1), false)
	if err := get(); !errors.Is(err, quillclient.ErrUnknownKey) {
		t.Fatalf("%v: a key no longer listed still verified", err)
	}
	if n := f.listings.Load(); n != 6 {
		t.Fatalf("%d listings, want 6", n)
	}
}

func TestPinnedKeysNeverFetch(t *testing.T) {
	f := newFakeQuill(t)
	c := f.client(t, quillclient.WithPinnedKeys(quillclient.PlatformKey{ID: "PLAT1", Public: rsaKey(t, 1).Public()}))
	if _, _, err := send(c, "GET", f.srv.URL+"/v1/payments/ORD1", nil); err != nil {
		t.Fatal(err)
	}
	f.platform.use("PLAT2", rsaKey(t, 2), true)
	if _, _, err := send(c, "GET", f.srv.URL+"/v1/payments/ORD1", nil); !errors.Is(err, quillclient.ErrUnknownKey) {
		t.Fatalf("%v, want ErrUnknownKey", err)
	}
	// The pinned key is the key: a listed key under the pinned id is not used.
	f.platform.use("PLAT1", rsaKey(t, 3), true)
	if _, _, err := send(c, "GET", f.srv.URL+"/v1/payments/ORD1", nil); !errors.Is(err, signing.ErrBadSignature) {
		t.Fatalf("%v, want ErrBadSignature", err)
	}
	if n := f.listings.Load(); n != 0 {
		t.Fatalf("%d listings fetched with pinned keys", n)
	}
}

// TestListingMustVerify: a key listing whose own signature is by a key it does
// not list is refused, and nothing from it is trusted.
func TestListingMustVerify(t *testing.T) {
	f := newFakeQuill(t)
	c := f.client(t)
	f.platform.use("ROGUE", rsaKey(t, 3), false)
	_, _, err := send(c, "GET", f.srv.URL+"/v1/payments/ORD1", nil)
	if !errors.Is(err, quillclient.ErrUnverified) || !strings.Contains(err.Error(), "listing") {
		t.Fatalf("%v, want an unverified listing", err)
	}
	if n := f.listings.Load(); n != 1 {
		t.Fatalf("%d listings", n)
	}
}

func TestPresigned(t *testing.T) {
	f := newFakeQuill(t)
	a, err := quillclient.NewSchemeA(testMerchant, testKeyID, rsaKey(t, 0), quillclient.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	c := f.client(t, quillclient.WithPinnedKeys(quillclient.PlatformKey{ID: "PLAT1", Public: rsaKey(t, 1).Public()}))
	body := []byte(`{"order_id":"ORD000000000009"}`)
	auth, err := a.Authorization("POST", "/v1/payments?k=v", body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/payments?k=v", bytes.NewReader(body))
	req.Header.Set("Authorization", auth)
	res, err := c.Do(quillclient.Presigned(req))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if _, got := f.lastReceived(); got != auth {
		t.Fatalf("sent %q, want the presigned header", got)
	}
	// Sending it again is a replay; the refusal is itself a signed response.
	req, _ = http.NewRequest("POST", f.srv.URL+"/v1/payments?k=v", bytes.NewReader(body))
	req.Header.Set("Authorization", auth)
	res, err = c.Do(quillclient.Presigned(req))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replay: status %d", res.StatusCode)
	}
}

// TestNonceAndClock: the injected clock and nonce source decide the header.
func TestNonceAndClock(t *testing.T) {
	f := newFakeQuill(t)
	c := f.client(t, quillclient.WithNonceSource(io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{0xab}, 16)), rand.Reader)))
	if _, _, err := send(c, "GET", f.srv.URL+"/v1/payments/ORD1", nil); err != nil {
		t.Fatal(err)
	}
	_, auth := f.lastReceived()
	cred, err := signing.ParseAuthorization(auth)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Nonce != strings.Repeat("AB", 16) || cred.Timestamp != fmt.Sprint(f.clock.Now().Unix()) || cred.Merchant != testMerchant {
		t.Fatalf("credentials %v", cred)
	}
}

func TestResponseTooLarge(t *testing.T) {
	f := newFakeQuill(t)
	c := f.client(t, quillclient.WithMaxResponseBody(4096))
	_, _, err := send(c, "POST", f.srv.URL+"/x", bytes.NewReader(make([]byte, 5000)))
	if !errors.Is(err, quillclient.ErrResponseTooLarge) || !errors.Is(err, quillclient.ErrUnverified) {
		t.Fatalf("%v, want ErrResponseTooLarge", err)
	}
}

func TestNewTransportRefuses(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	scheme := []quillclient.Option{quillclient.WithMerchant("M1"), quillclient.WithKeyID("K1"), quillclient.WithPrivateKey(rsaKey(t, 0))}
	with := func(extra ...quillclient.Option) []quillclient.Option {
		return append(append([]quillclient.Option{}, scheme...), extra...)
	}
	for _, tc := range []struct {
		name string
		opts []quillclient.Option
		want string
	}{
		{"no key", []quillclient.Option{quillclient.WithMerchant("M1"), quillclient.WithKeyID("K1")}, "private key"},
		{"ECDSA key", with(quillclient.WithPrivateKey(ec)), "RSA"},
		{"PSS for scheme A", with(quillclient.WithAlgorithm(signing.RSAPSSSHA512)), "scheme A signs"},
		{"quote in merchant id", with(quillclient.WithMerchant(`M1",x="`)), "merchant id"},
		{"empty key id", with(quillclient.WithKeyID("")), "key id"},
		{"signer and scheme A options", with(quillclient.WithSigner(signerOnly{})), "excludes"},
		{"signer that cannot verify", []quillclient.Option{quillclient.WithSigner(signerOnly{})}, "WithResponseVerifier"},
		{"relative keys URL", with(quillclient.WithKeysURL("/v1/certificates")), "absolute"},
		{"pinned key without id", with(quillclient.WithPinnedKeys(quillclient.PlatformKey{Public: rsaKey(t, 1).Public()})), "pinned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := quillclient.NewTransport(tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := quillclient.NewTransport(with()...); err != nil {
		t.Fatalf("valid options: %v", err)
	}
}

type signerOnly struct{}

func (signerOnly) SignRequest(*http.Request, []byte) error { return nil }

// TestCustomSigner: a second scheme plugs in through WithSigner and
// WithResponseVerifier; the transport hands them the exact body and the
// request as sent.
func TestCustomSigner(t *testing.T) {
	f := newFakeQuill(t)
	sv := &fakeScheme{}
	c := &http.Client{Transport: mustTransport(t, quillclient.WithBase(f.srv.Client().Transport), quillclient.WithSigner(sv), quillclient.WithResponseVerifier(sv))}
	res, _, err := send(c, "POST", f.srv.URL+"/x?q=1", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusUnauthorized { // the fake server speaks scheme A only
		t.Fatalf("status %d", res.StatusCode)
	}
	if sv.signed != "POST /x?q=1 hello" || sv.verified != "X-Fake: yes" {
		t.Fatalf("signer saw %q, verifier saw %q", sv.signed, sv.verified)
	}
}

type fakeScheme struct{ signed, verified string }

func (s *fakeScheme) SignRequest(req *http.Request, body []byte) error {
	s.signed = req.Method + " " + req.URL.RequestURI() + " " + string(body)
	req.Header.Set("X-Fake", "yes")
	return nil
}

func (s *fakeScheme) VerifyResponse(_ context.Context, req *http.Request, res *http.Response, _ []byte, _ quillclient.KeySource) error {
	s.verified = "X-Fake: " + req.Header.Get("X-Fake")
	if res.Header.Get("Wechatpay-Signature") == "" {
		return errors.New("unsigned")
	}
	return nil
}

func mustTransport(t *testing.T, opts ...quillclient.Option) *quillclient.Transport {
	t.Helper()
	tr, err := quillclient.NewTransport(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestKeysNeverPrinted: formatting the signer or the transport with any verb
// shows no key material.
func TestKeysNeverPrinted(t *testing.T) {
	k := rsaKey(t, 0)
	a, err := quillclient.NewSchemeA(testMerchant, testKeyID, k)
	if err != nil {
		t.Fatal(err)
	}
	tr := mustTransport(t, quillclient.WithSigner(a))
	secret := k.D.String()[:12]
	public := k.N.String()[:12]
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{a, tr, *a, *tr} {
			out := fmt.Sprintf(format, v)
			if strings.Contains(out, secret) || strings.Contains(out, public) || strings.Contains(out, fmt.Sprintf("%x", k.D.Bytes()[:6])) {
				t.Fatalf("%s of %T shows key material: %s", format, v, out)
			}
		}
	}
}

// slowListing holds GET /v1/certificates until the request's context ends.
type slowListing struct {
	next http.RoundTripper
	hold atomic.Bool
}

func (s *slowListing) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == quillclient.CertificatesPath && s.hold.Load() {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	return s.next.RoundTrip(req)
}

// TestCancelledFetchDoesNotHoldBack: a key fetch that fails because its caller
// gave up is not rate-limited, so the next request fetches at once.
func TestCancelledFetchDoesNotHoldBack(t *testing.T) {
	f := newFakeQuill(t)
	base := &slowListing{next: f.srv.Client().Transport}
	base.hold.Store(true)
	c := f.client(t, quillclient.WithBase(base))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/v1/payments/ORD1", nil)
	if _, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want the deadline", err)
	}
	base.hold.Store(false)
	if _, _, err := send(c, "GET", f.srv.URL+"/v1/payments/ORD1", nil); err != nil {
		t.Fatalf("after a cancelled fetch: %v", err)
	}
}
