package quillclient_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/quillclient"
	"github.com/quillpay/quill/signing"
)

const (
	testMerchant = "M100"
	testKeyID    = "MKEY1"
)

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// rsaKey returns the i-th of four RSA-2048 keys generated once per test binary.
func rsaKey(tb testing.TB, i int) *rsa.PrivateKey {
	tb.Helper()
	rsaOnce.Do(func() {
		for range 4 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i]
}

// platform is the fake server's platform key ring: the listed keys and the one
// that signs. Signing with an unlisted key models a rotation the client has not
// seen, or a forger.
type platform struct {
	mu      sync.Mutex
	listed  map[string]crypto.Signer
	serial  string
	current crypto.Signer
}

func (p *platform) SigningKey(context.Context) (string, crypto.Signer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.serial, p.current, nil
}

// use makes (serial, k) the signing key, listed or not.
func (p *platform) use(serial string, k crypto.Signer, list bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serial, p.current = serial, k
	if list {
		p.listed[serial] = k
	}
}

type keyMap map[string]crypto.PublicKey

func (m keyMap) VerifyingKey(_ context.Context, merchant, keyID string, _ time.Time) (crypto.PublicKey, error) {
	if k, ok := m[merchant+"/"+keyID]; ok {
		return k, nil
	}
	return nil, signing.ErrUnknownKey
}

type memNonces struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (n *memNonces) Claim(_ context.Context, merchant, nonce string, _ time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen[merchant+"/"+nonce] {
		return signing.ErrReplay
	}
	n.seen[merchant+"/"+nonce] = true
	return nil
}

// fakeQuill is an httptest TLS server that checks request signatures with
// signing.Verifier and signs every response with signing.ResponseSigner, as
// Quill does. Its routes: GET /v1/certificates (the listed platform keys) and
// anything else, which answers 200 with the request body it received.
type fakeQuill struct {
	t        testing.TB
	srv      *httptest.Server
	clock    *fakeclock.Clock
	platform *platform
	listings atomic.Int32 // GET /v1/certificates served
	// tamper, when set, changes a response after it was signed.
	tamper atomic.Pointer[func(h http.Header, body []byte) []byte]

	mu       sync.Mutex
	received [][]byte // request bodies but the key listing's, in order
	auths    []string // their Authorization headers
}

func newFakeQuill(t testing.TB) *fakeQuill {
	t.Helper()
	f := &fakeQuill{
		t:        t,
		clock:    fakeclock.New(time.Unix(1_800_000_000, 0)),
		platform: &platform{listed: map[string]crypto.Signer{}},
	}
	f.platform.use("PLAT1", rsaKey(t, 1), true)
	verifier := &signing.Verifier{
		Keys:   keyMap{testMerchant + "/" + testKeyID: rsaKey(t, 0).Public()},
		Nonces: &memNonces{seen: map[string]bool{}},
		Now:    f.clock.Now,
	}
	signer := &signing.ResponseSigner{Keys: f.platform, Now: f.clock.Now}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server read: %v", err)
			return
		}
		if r.URL.Path != quillclient.CertificatesPath {
			f.mu.Lock()
			f.received = append(f.received, body)
			f.auths = append(f.auths, r.Header.Get("Authorization"))
			f.mu.Unlock()
		}
		status, out := http.StatusOK, body
		if _, err := verifier.Verify(r.Context(), signing.Request{
			Method: r.Method, Target: r.RequestURI, Authorization: r.Header.Get("Authorization"),
			Body: body, Merchant: testMerchant,
		}); err != nil {
			status, out = http.StatusUnauthorized, []byte(fmt.Sprintf(`{"code":"signature_invalid","detail":%q}`, err))
		} else if r.URL.Path == quillclient.CertificatesPath {
			f.listings.Add(1)
			out = f.listing()
		}
		sig, err := signer.Sign(r.Context(), out)
		if err != nil {
			t.Errorf("server sign: %v", err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Request-ID", "req-1")
		h.Set("Wechatpay-Timestamp", sig.Timestamp)
		h.Set("Wechatpay-Nonce", sig.Nonce)
		h.Set("Wechatpay-Serial", sig.Serial)
		h.Set("Wechatpay-Signature", sig.Signature)
		if tp := f.tamper.Load(); tp != nil && r.URL.Path != quillclient.CertificatesPath {
			out = (*tp)(h, out)
		}
		w.WriteHeader(status)
		w.Write(out)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeQuill) listing() []byte {
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
	for serial, k := range f.platform.listed {
		p, err := keys.MarshalPublicKeyPEM(k.Public())
		if err != nil {
			f.t.Fatal(err)
		}
		list.Data = append(list.Data, cert{serial, "rsa-v1_5-sha256", string(p)})
	}
	b, _ := json.Marshal(list)
	return b
}

func (f *fakeQuill) setTamper(fn func(h http.Header, body []byte) []byte) { f.tamper.Store(&fn) }

func (f *fakeQuill) lastReceived() ([]byte, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.received[len(f.received)-1], f.auths[len(f.auths)-1]
}

// client returns an http.Client whose transport signs as the test merchant,
// trusts the server and runs on its clock, plus extra options.
func (f *fakeQuill) client(t testing.TB, opts ...quillclient.Option) *http.Client {
	t.Helper()
	return &http.Client{Transport: f.transport(t, opts...)}
}

func (f *fakeQuill) transport(t testing.TB, opts ...quillclient.Option) *quillclient.Transport {
	t.Helper()
	base := append([]quillclient.Option{
		quillclient.WithBase(f.srv.Client().Transport),
		quillclient.WithMerchant(testMerchant),
		quillclient.WithKeyID(testKeyID),
		quillclient.WithPrivateKey(rsaKey(t, 0)),
		quillclient.WithClock(f.clock.Now),
	}, opts...)
	tr, err := quillclient.NewTransport(base...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// send does method url with body (JSON) through c and returns the response
// and its body.
func send(c *http.Client, method, url string, body io.Reader) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

// onlyReader hides a reader's type so http.NewRequest cannot learn its length
// (the request goes out chunked unless the transport fixes it).
type onlyReader struct{ io.Reader }

func bodyOf(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}
