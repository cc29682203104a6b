package quillclient_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/quillclient"
	"github.com/quillpay/quill/signing"
)

var (
	otherKeysOnce sync.Once
	ecKeys        []*ecdsa.PrivateKey
	edKeys        []ed25519.PrivateKey
)

// ecKey and edKey return the i-th of three P-256 and Ed25519 keys generated
// once per test binary.
func ecKey(tb testing.TB, i int) *ecdsa.PrivateKey  { tb.Helper(); genOtherKeys(); return ecKeys[i] }
func edKey(tb testing.TB, i int) ed25519.PrivateKey { tb.Helper(); genOtherKeys(); return edKeys[i] }

func genOtherKeys() {
	otherKeysOnce.Do(func() {
		for range 3 {
			ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				panic(err)
			}
			_, ed, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				panic(err)
			}
			ecKeys, edKeys = append(ecKeys, ec), append(edKeys, ed)
		}
	})
}

// merchantKeyB is one of the test merchant's scheme B keys as registered.
type merchantKeyB struct {
	id  string
	alg signing.Algorithm
	key crypto.Signer
}

func merchantKeysB(tb testing.TB) []merchantKeyB {
	return []merchantKeyB{
		{"K-RSA", signing.RSAPKCS1SHA256, rsaKey(tb, 0)},
		{"K-PSS", signing.RSAPSSSHA512, rsaKey(tb, 0)},
		{"K-EC", signing.ECDSAP256SHA256, ecKey(tb, 0)},
		{"K-ED", signing.Ed25519, edKey(tb, 0)},
	}
}

type regKeys map[string]signing.RegisteredKey

func (m regKeys) RegisteredKey(_ context.Context, merchant, keyID string, _ time.Time) (signing.RegisteredKey, error) {
	if k, ok := m[merchant+"/"+keyID]; ok {
		return k, nil
	}
	return signing.RegisteredKey{}, signing.ErrUnknownKey
}

// receivedB is what the scheme B fake server saw of one request.
type receivedB struct {
	verified signing.Verified
	err      error
	body     []byte
	header   http.Header
}

// tamperB changes a response after it was signed.
type tamperB func(status *int, h http.Header, body []byte) []byte

// fakeQuillB is an httptest TLS server that verifies scheme B requests with
// signing.MessageVerifier and signs every response, refusals included, with
// signing.MessageResponseSigner, as Quill does for RFC 9421. Its key listing
// publishes an RSA (scheme A) platform key next to the scheme B ones. Routes
// as fakeQuill: GET /v1/certificates, and anything else echoes the body.
type fakeQuillB struct {
	t        testing.TB
	srv      *httptest.Server
	clock    *fakeclock.Clock
	platform *platform // the scheme B keys (Ed25519 or P-256)
	respSkew atomic.Int64
	listings atomic.Int32
	tamper   atomic.Pointer[tamperB]

	mu       sync.Mutex
	received []receivedB
}

const rsaPlatformSerial = "PLAT-RSA"

func newFakeQuillB(t testing.TB, platformKey crypto.Signer) *fakeQuillB {
	t.Helper()
	f := &fakeQuillB{
		t:        t,
		clock:    fakeclock.New(time.Unix(1_800_000_000, 0)),
		platform: &platform{listed: map[string]crypto.Signer{}},
	}
	f.platform.use("PLAT-B1", platformKey, true)
	reg := regKeys{}
	for _, k := range merchantKeysB(t) {
		reg[testMerchant+"/"+k.id] = signing.RegisteredKey{Public: k.key.Public(), Algorithm: k.alg}
	}
	verifier := &signing.MessageVerifier{Keys: reg, Nonces: &memNonces{seen: map[string]bool{}}, Now: f.clock.Now}
	signer := &signing.MessageResponseSigner{Keys: f.platform, Now: func() time.Time {
		return f.clock.Now().Add(time.Duration(f.respSkew.Load()) * time.Second)
	}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server read: %v", err)
			return
		}
		ver, verr := verifier.Verify(r.Context(), signing.MessageRequest{
			Method: r.Method, Scheme: "https", Authority: r.Host, Target: r.RequestURI,
			Header: r.Header, Body: body, Merchant: testMerchant,
		})
		if r.URL.Path != quillclient.CertificatesPath {
			f.mu.Lock()
			f.received = append(f.received, receivedB{ver, verr, body, r.Header.Clone()})
			f.mu.Unlock()
		}
		status, out := http.StatusOK, body
		switch {
		case verr != nil:
			// A refusal is signed too, bound to the request's signature.
			status, out = http.StatusUnauthorized, []byte(fmt.Sprintf(`{"code":"signature_invalid","hint":%q}`, verr))
			ver = signing.Verified{Scheme: signing.SchemeHTTPSig, Label: signing.DefaultLabel, Signature: r.Header.Get("Signature")}
		case r.URL.Path == quillclient.CertificatesPath:
			f.listings.Add(1)
			out = f.listing()
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Request-ID", "req-1")
		sig, err := signer.Sign(r.Context(), signing.MessageResponse{Status: status, Header: h, Body: out}, ver)
		if err != nil {
			http.Error(w, "cannot sign: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h.Set("Content-Digest", sig.ContentDigest)
		h.Set("Signature-Input", sig.SignatureInput)
		h.Set("Signature", sig.Signature)
		if tp := f.tamper.Load(); tp != nil && r.URL.Path != quillclient.CertificatesPath {
			out = (*tp)(&status, h, out)
		}
		w.WriteHeader(status)
		w.Write(out)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// listing publishes the scheme B platform keys and an RSA scheme A key.
func (f *fakeQuillB) listing() []byte {
	f.platform.mu.Lock()
	defer f.platform.mu.Unlock()
	type cert struct {
		SerialNo  string `json:"serial_no"`
		Algorithm string `json:"algorithm"`
		PublicKey string `json:"public_key"`
	}
	var list struct {
		Data []cert `json:"data"`
	}
	listed := map[string]crypto.Signer{rsaPlatformSerial: rsaKey(f.t, 1)}
	for serial, k := range f.platform.listed {
		listed[serial] = k
	}
	for serial, k := range listed {
		p, err := keys.MarshalPublicKeyPEM(k.Public())
		if err != nil {
			f.t.Fatal(err)
		}
		alg, _ := keys.AlgorithmOf(k.Public())
		list.Data = append(list.Data, cert{serial, string(alg), string(p)})
	}
	b, _ := json.Marshal(list)
	return b
}

func (f *fakeQuillB) setTamper(fn tamperB) { f.tamper.Store(&fn) }

func (f *fakeQuillB) last() receivedB {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.received[len(f.received)-1]
}

func (f *fakeQuillB) client(t testing.TB, k merchantKeyB, opts ...quillclient.Option) *http.Client {
	t.Helper()
	base := []quillclient.Option{
		quillclient.WithBase(f.srv.Client().Transport),
		quillclient.WithSchemeB(),
		quillclient.WithKeyID(k.id),
		quillclient.WithPrivateKey(k.key),
		quillclient.WithClock(f.clock.Now),
	}
	if k.alg == signing.RSAPSSSHA512 {
		base = append(base, quillclient.WithAlgorithm(k.alg))
	}
	tr, err := quillclient.NewTransport(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: tr}
}

// TestSchemeBRoundTrip signs requests of every shape with each of the four
// algorithms, against platform keys of both scheme B types: the server
// (signing.MessageVerifier) accepts each, with the algorithm the key was
// registered for and the components Quill requires, receives the exact
// bytes, and the client verifies each response.
func TestSchemeBRoundTrip(t *testing.T) {
	odd := []byte("{\"amount\": \"1.00\" ,\r\n \"note\":\"咖啡 \\u00e9\"}\x00\xff\n\n")
	shapes := []struct {
		name, method, path, ctype string
		body                      []byte
	}{
		{"GET", "GET", "/v1/payments/ORD000000000001", "", nil},
		{"GET with query, kept as sent", "GET", "/v1/payments/ORD1?mchid=M100&x=a%20b&y=&z=%2F", "", nil},
		{"POST JSON", "POST", "/v1/payments", "application/json", []byte(`{"order_id":"ORD000000000001","amount":"12.34"}`)},
		{"POST odd bytes, no content type", "POST", "/v1/payments?x=1", "", odd},
		{"POST empty body", "POST", "/v1/payments", "application/json", nil},
	}
	for _, plat := range []struct {
		name string
		key  crypto.Signer
	}{{"Ed25519 platform key", edKey(t, 1)}, {"P-256 platform key", ecKey(t, 1)}} {
		f := newFakeQuillB(t, plat.key)
		for _, mk := range merchantKeysB(t) {
			c := f.client(t, mk)
			for _, sh := range shapes {
				t.Run(plat.name+"/"+string(mk.alg)+"/"+sh.name, func(t *testing.T) {
					req, err := http.NewRequest(sh.method, f.srv.URL+sh.path, bodyOf(sh.body))
					if err != nil {
						t.Fatal(err)
					}
					if sh.ctype != "" {
						req.Header.Set("Content-Type", sh.ctype)
					}
					res, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					got, _ := io.ReadAll(res.Body)
					res.Body.Close()
					rec := f.last()
					if rec.err != nil || res.StatusCode != http.StatusOK {
						t.Fatalf("server refused (%d): %v", res.StatusCode, rec.err)
					}
					if !bytes.Equal(rec.body, sh.body) || !bytes.Equal(got, sh.body) {
						t.Fatalf("server received %q, client got back %q, sent %q", trunc(rec.body), trunc(got), trunc(sh.body))
					}
					v := rec.verified
					if v.KeyID != mk.id || v.Algorithm != mk.alg || v.Scheme != signing.SchemeHTTPSig {
						t.Fatalf("verified %+v", v)
					}
					wantInput := `("@method" "@target-uri"`
					if sh.ctype != "" {
						wantInput += ` "content-type"`
					}
					if len(sh.body) > 0 {
						wantInput += ` "content-digest"`
					}
					wantInput += `);created=`
					if !strings.Contains(v.SignatureInput, wantInput) || !strings.Contains(v.SignatureInput, `;alg="`+string(mk.alg)+`"`) {
						t.Fatalf("Signature-Input %s, want it to cover %s", v.SignatureInput, wantInput)
					}
					if !strings.Contains(v.SignatureBase, `"@target-uri": `+f.srv.URL+sh.path+"\n") {
						t.Fatalf("base does not cover the target as sent:\n%s", v.SignatureBase)
					}
					if (rec.header.Get("Content-Digest") != "") != (len(sh.body) > 0) {
						t.Fatalf("Content-Digest %q for a %d-byte body", rec.header.Get("Content-Digest"), len(sh.body))
					}
				})
			}
		}
	}
}

// TestSchemeBNonceAndClock: the injected clock and nonce source decide
// created and nonce.
func TestSchemeBNonceAndClock(t *testing.T) {
	f := newFakeQuillB(t, edKey(t, 1))
	c := f.client(t, merchantKeysB(t)[3], quillclient.WithNonceSource(io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{0xab}, 16)), rand.Reader)))
	if _, _, err := send(c, "GET", f.srv.URL+"/v1/payments/ORD1", nil); err != nil {
		t.Fatal(err)
	}
	v := f.last().verified
	if v.Nonce != strings.Repeat("AB", 16) || !v.Timestamp.Equal(f.clock.Now()) {
		t.Fatalf("nonce %q, created %v", v.Nonce, v.Timestamp)
	}
}

var keyidRE = regexp.MustCompile(`keyid="([^"]*)"`)

// responseKeyIDB is the platform key id a scheme B response names.
func responseKeyIDB(res *http.Response) string {
	m := keyidRE.FindStringSubmatch(res.Header.Get("Signature-Input"))
	if m == nil {
		return ""
	}
	return m[1]
}

// TestSchemeBUnverifiedResponses: a response that does not verify, for any
// reason, is an error (ErrUnverified, with the status sent), never a response.
func TestSchemeBUnverifiedResponses(t *testing.T) {
	var replay struct {
		sync.Mutex
		h http.Header
	}
	for _, tc := range []struct {
		name   string
		tamper tamperB
		skew   int64
		is     error
	}{
		{"body changed after signing", func(_ *int, _ http.Header, b []byte) []byte { return append(append([]byte(nil), b...), ' ') }, 0, signing.ErrBadDigest},
		{"body and Content-Digest changed", func(_ *int, h http.Header, b []byte) []byte {
			b = append(append([]byte(nil), b...), ' ')
			h.Set("Content-Digest", signing.ContentDigest(b))
			return b
		}, 0, signing.ErrBadSignature},
		{"status changed", func(s *int, _ http.Header, b []byte) []byte { *s = http.StatusAccepted; return b }, 0, signing.ErrBadSignature},
		{"content type changed", func(_ *int, h http.Header, b []byte) []byte { h.Set("Content-Type", "text/plain"); return b }, 0, signing.ErrBadSignature},
		{"one signature byte flipped", func(_ *int, h http.Header, b []byte) []byte {
			sig := []byte(h.Get("Signature"))
			i := len("sig1=:") + 3
			// Another base64 character, so the header still parses: XOR-ing
			// bits turned some letters into '@' or '{' (a malformed header,
			// not a bad signature), depending on the signature's bytes.
			if sig[i] == 'A' {
				sig[i] = 'B'
			} else {
				sig[i] = 'A'
			}
			h.Set("Signature", string(sig))
			return b
		}, 0, signing.ErrBadSignature},
		{"unsigned", func(_ *int, h http.Header, b []byte) []byte { h.Del("Signature"); h.Del("Signature-Input"); return b }, 0, signing.ErrMalformed},
		{"request signature not covered", func(_ *int, h http.Header, b []byte) []byte {
			h.Set("Signature-Input", strings.Replace(h.Get("Signature-Input"), ` "signature";key="sig1";req`, "", 1))
			return b
		}, 0, signing.ErrCoverage},
		{"alg disagrees with the platform key", func(_ *int, h http.Header, b []byte) []byte {
			h.Set("Signature-Input", strings.Replace(h.Get("Signature-Input"), `alg="ed25519"`, `alg="ecdsa-p256-sha256"`, 1))
			return b
		}, 0, signing.ErrAlgorithm},
		{"unknown key id", func(_ *int, h http.Header, b []byte) []byte {
			h.Set("Signature-Input", strings.Replace(h.Get("Signature-Input"), `keyid="PLAT-B1"`, `keyid="NOSUCH"`, 1))
			return b
		}, 0, quillclient.ErrUnknownKey},
		{"the RSA scheme A platform key named", func(_ *int, h http.Header, b []byte) []byte {
			h.Set("Signature-Input", strings.Replace(h.Get("Signature-Input"), `keyid="PLAT-B1"`, `keyid="`+rsaPlatformSerial+`"`, 1))
			return b
		}, 0, quillclient.ErrUnknownKey},
		{"created 301 s behind", nil, -301, quillclient.ErrStaleResponse},
		{"created 301 s ahead", nil, 301, quillclient.ErrStaleResponse},
		{"the answer to another request", func(_ *int, h http.Header, b []byte) []byte {
			replay.Lock()
			defer replay.Unlock()
			if replay.h == nil { // the first request: keep its signed answer
				replay.h = h.Clone()
				return b
			}
			for _, k := range []string{"Signature-Input", "Signature", "Content-Digest"} {
				h.Set(k, replay.h.Get(k))
			}
			return b
		}, 0, signing.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeQuillB(t, edKey(t, 1))
			c := f.client(t, merchantKeysB(t)[0])
			f.respSkew.Store(tc.skew)
			if tc.tamper != nil {
				f.setTamper(tc.tamper)
			}
			body := `{"a":"1"}`
			if tc.name == "the answer to another request" {
				if _, _, err := send(c, "POST", f.srv.URL+"/v1/payments", strings.NewReader(body)); err != nil {
					t.Fatalf("first request: %v", err)
				}
			}
			res, _, err := send(c, "POST", f.srv.URL+"/v1/payments", strings.NewReader(body))
			if res != nil || err == nil {
				t.Fatalf("got a response (%v), want an error", res)
			}
			var re *quillclient.ResponseError
			if !errors.Is(err, quillclient.ErrUnverified) || !errors.As(err, &re) {
				t.Fatalf("err %v, want a *ResponseError matching ErrUnverified", err)
			}
			if f.last().err != nil {
				t.Fatalf("the server refused the request: %v", f.last().err)
			}
			if re.RequestID != "req-1" {
				t.Fatalf("request id %q", re.RequestID)
			}
			if !errors.Is(err, tc.is) {
				t.Fatalf("err %v, want it to match %v", err, tc.is)
			}
		})
	}
}

// TestSchemeBRefusalsVerify: the server's refusals are signed answers too;
// the client returns them as responses. An RSA key registered for
// rsa-pss-sha512 but used with the default rsa-v1_5-sha256 is refused for the
// algorithm, and a presigned request sent twice is a replay.
func TestSchemeBRefusalsVerify(t *testing.T) {
	f := newFakeQuillB(t, ecKey(t, 1))
	pss := merchantKeysB(t)[1]
	pss.alg = signing.RSAPKCS1SHA256 // the client forgot WithAlgorithm
	// Pinned: the key listing itself needs a correctly signed request.
	pinned := quillclient.WithPinnedKeys(quillclient.PlatformKey{ID: "PLAT-B1", Public: ecKey(t, 1).Public()})
	res, got, err := send(f.client(t, pss, pinned), "GET", f.srv.URL+"/v1/payments/ORD1", nil)
	if err != nil || res.StatusCode != http.StatusUnauthorized || !errors.Is(f.last().err, signing.ErrAlgorithm) {
		t.Fatalf("%v %v %s (server: %v)", err, res, got, f.last().err)
	}
	if !strings.Contains(string(got), "rsa-pss-sha512") {
		t.Fatalf("the hint does not name the registered algorithm: %s", got)
	}

	mk := merchantKeysB(t)[2]
	b, err := quillclient.NewSchemeB(mk.id, mk.key, quillclient.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	c := f.client(t, mk)
	body := []byte(`{"order_id":"ORD000000000009"}`)
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/payments?k=v", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if err := b.SignRequest(req, body); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{http.StatusOK, http.StatusUnauthorized} {
		again := req.Clone(context.Background())
		again.Body = io.NopCloser(bytes.NewReader(body))
		res, err := c.Do(quillclient.Presigned(again))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("send %d: status %d, want %d (server: %v)", i+1, res.StatusCode, want, f.last().err)
		}
	}
	if !errors.Is(f.last().err, signing.ErrReplay) {
		t.Fatalf("second send: %v, want ErrReplay", f.last().err)
	}
	if f.last().header.Get("Signature") != req.Header.Get("Signature") {
		t.Fatal("the presigned signature was not sent as is")
	}
}

// TestSchemeBRotation: the scheme B platform key is found by keyid in the
// listing next to the RSA key; a rotation costs one refetch, and a key id that
// stays unknown is refused.
func TestSchemeBRotation(t *testing.T) {
	f := newFakeQuillB(t, edKey(t, 1))
	counting := &countingBase{next: f.srv.Client().Transport}
	c := f.client(t, merchantKeysB(t)[3], quillclient.WithBase(counting))
	get := func() (*http.Response, error) {
		res, _, err := send(c, "GET", f.srv.URL+"/v1/payments/ORD1", nil)
		return res, err
	}
	for range 3 {
		if _, err := get(); err != nil {
			t.Fatal(err)
		}
	}
	f.platform.use("PLAT-B2", edKey(t, 2), true)
	res, err := get()
	if err != nil {
		t.Fatal(err)
	}
	if id := responseKeyIDB(res); id != "PLAT-B2" {
		t.Fatalf("response signed by %q", id)
	}
	if n := counting.listings.Load(); n != 2 {
		t.Fatalf("%d listings, want 2: first use and one refetch", n)
	}
	f.platform.use("ROGUE", edKey(t, 0), false)
	if _, err := get(); !errors.Is(err, quillclient.ErrUnknownKey) {
		t.Fatalf("%v, want ErrUnknownKey", err)
	}
}

func TestNewSchemeBRefuses(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		keyID string
		key   crypto.Signer
		opts  []quillclient.Option
		want  string
	}{
		{"no key", "K1", nil, nil, "private key"},
		{"P-384 key", "K1", p384, nil, "P-256"},
		{"PSS with an EC key", "K1", ecKey(t, 0), []quillclient.Option{quillclient.WithAlgorithm(signing.RSAPSSSHA512)}, "cannot sign"},
		{"Ed25519 algorithm for an RSA key", "K1", rsaKey(t, 0), []quillclient.Option{quillclient.WithAlgorithm(signing.Ed25519)}, "cannot sign"},
		{"empty key id", "", edKey(t, 0), nil, "key id"},
		{"non-ASCII key id", "K\u00e9", edKey(t, 0), nil, "key id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := quillclient.NewSchemeB(tc.keyID, tc.key, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	for _, mk := range merchantKeysB(t) {
		b, err := quillclient.NewSchemeB(mk.id, mk.key, quillclient.WithAlgorithm(map[bool]signing.Algorithm{true: mk.alg}[mk.alg == signing.RSAPSSSHA512]))
		if err != nil || b.Algorithm() != mk.alg || b.KeyID() != mk.id {
			t.Fatalf("%s: %v %v", mk.id, b, err)
		}
	}
	if _, err := quillclient.NewTransport(quillclient.WithSchemeB(), quillclient.WithSigner(signerOnly{})); err == nil || !strings.Contains(err.Error(), "excludes") {
		t.Fatalf("WithSchemeB and WithSigner: %v", err)
	}
	if _, err := quillclient.NewTransport(quillclient.WithSchemeB(), quillclient.WithKeyID("K1")); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Fatalf("WithSchemeB without a key: %v", err)
	}
}

func TestSchemeBKeysNeverPrinted(t *testing.T) {
	k := edKey(t, 0)
	b, err := quillclient.NewSchemeB("K-ED", k)
	if err != nil {
		t.Fatal(err)
	}
	tr := mustTransport(t, quillclient.WithSigner(b))
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{b, *b, tr} {
			out := fmt.Sprintf(format, v)
			for _, secret := range []string{fmt.Sprintf("%x", []byte(k.Seed()[:6])), fmt.Sprint([]byte(k.Seed()[:4]))[1:10]} {
				if strings.Contains(out, secret) {
					t.Fatalf("%s of %T shows key material: %s", format, v, out)
				}
			}
			if !strings.Contains(out, "K-ED") && v != any(tr) {
				t.Fatalf("%s of %T: %s", format, v, out)
			}
		}
	}
}
