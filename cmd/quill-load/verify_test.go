package main

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/quillclient"
	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/openssl"
)

// backends are the signature backends the generator can verify with: Go's
// always, OpenSSL's unless the build has no cgo or QUILL_SKIP_OPENSSL says
// the library is missing (scripts/test.sh installs it).
func backends(tb testing.TB) []signing.Crypto {
	tb.Helper()
	out := []signing.Crypto{signing.GoCrypto{}}
	c, err := openssl.Load(openssl.DefaultLibrary)
	switch {
	case err == nil:
		out = append(out, c)
	case !cgoBuild || os.Getenv("QUILL_SKIP_OPENSSL") != "":
		tb.Logf("OpenSSL backend not tested: %v", err)
	default:
		tb.Fatalf("OpenSSL does not load (apt-get install libssl3, or set QUILL_SKIP_OPENSSL=1): %v", err)
	}
	return out
}

func testKey(tb testing.TB, name string) crypto.Signer {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "signing", "testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	k, err := keys.ParsePrivateKeyPEM(b)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

type onePlatformKey struct {
	serial string
	key    crypto.Signer
}

func (p onePlatformKey) SigningKey(context.Context) (string, crypto.Signer, error) {
	return p.serial, p.key, nil
}

// signedResponse is a payment answer signed by key as the server signs it.
func signedResponse(tb testing.TB, key crypto.Signer, at time.Time) (*http.Response, []byte) {
	tb.Helper()
	body := []byte(`{"entry_id":1042,"order_id":"ORD178000000000012000000017","amount":"10.00","currency":"CNY","status":"SUCCESS"}`)
	s := &signing.ResponseSigner{Keys: onePlatformKey{"P1", key}, Now: func() time.Time { return at }}
	sig, err := s.Sign(context.Background(), body)
	if err != nil {
		tb.Fatal(err)
	}
	h := http.Header{}
	h.Set("Wechatpay-Timestamp", sig.Timestamp)
	h.Set("Wechatpay-Nonce", sig.Nonce)
	h.Set("Wechatpay-Serial", sig.Serial)
	h.Set("Wechatpay-Signature", sig.Signature)
	return &http.Response{StatusCode: http.StatusOK, Header: h}, body
}

// TestResponseVerifierA checks the generator's scheme A response check with
// each backend: a genuine response passes; a changed body, another key, an
// unknown serial, a stale timestamp and missing headers fail.
func TestResponseVerifierA(t *testing.T) {
	key, other := testKey(t, "other-rsa.key.pem"), testKey(t, "test-key-rsa.key.pem")
	now := time.Unix(1_780_000_000, 0)
	ks := pinnedKeys{"P1": {ID: "P1", Public: key.Public()}, "P2": {ID: "P2", Public: other.Public()}}
	ctx := context.Background()
	for _, c := range backends(t) {
		t.Run(c.Name(), func(t *testing.T) {
			v := &responseVerifierA{crypto: c, now: func() time.Time { return now }}
			res, body := signedResponse(t, key, now.Add(-time.Minute))
			if err := v.VerifyResponse(ctx, nil, res, body, ks); err != nil {
				t.Fatalf("genuine response: %v", err)
			}
			if err := v.VerifyResponse(ctx, nil, res, append(bytes.Clone(body), ' '), ks); !errors.Is(err, signing.ErrBadSignature) {
				t.Errorf("changed body: %v", err)
			}
			res.Header.Set("Wechatpay-Serial", "P2")
			if err := v.VerifyResponse(ctx, nil, res, body, ks); !errors.Is(err, signing.ErrBadSignature) {
				t.Errorf("other key: %v", err)
			}
			res.Header.Set("Wechatpay-Serial", "P3")
			if err := v.VerifyResponse(ctx, nil, res, body, ks); !errors.Is(err, quillclient.ErrUnknownKey) {
				t.Errorf("unknown serial: %v", err)
			}
			stale, body := signedResponse(t, key, now.Add(-10*time.Minute))
			if err := v.VerifyResponse(ctx, nil, stale, body, ks); !errors.Is(err, quillclient.ErrStaleResponse) {
				t.Errorf("stale: %v", err)
			}
			stale.Header.Del("Wechatpay-Nonce")
			if err := v.VerifyResponse(ctx, nil, stale, body, ks); err == nil {
				t.Error("no nonce header: verified")
			}
		})
	}
}

// BenchmarkResponseVerifyA is the generator's cost per scheme A response:
// the check responseVerifierA makes of a signed payment answer (RSA-2048
// platform key with balanced primes, as generated keys have), with each
// backend, on one goroutine and on every core. cpu-ns/op is the process's
// CPU time per response, the figure a loaded machine leaves comparable.
//
//	go test -run '^$' -bench ResponseVerifyA ./cmd/quill-load/
func BenchmarkResponseVerifyA(b *testing.B) {
	key := testKey(b, "other-rsa.key.pem")
	now := time.Now()
	res, body := signedResponse(b, key, now)
	ks := pinnedKeys{"P1": {ID: "P1", Public: key.Public()}}
	ctx := context.Background()
	for _, c := range backends(b) {
		v := &responseVerifierA{crypto: c}
		op := func() error { return v.VerifyResponse(ctx, nil, res, body, ks) }
		b.Run(c.Name()+"/serial", func(b *testing.B) {
			start := cpuTime()
			for b.Loop() {
				if err := op(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
		b.Run(c.Name()+"/parallel", func(b *testing.B) {
			start := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
