//go:build cgo && unix

package openssl_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"syscall"
	"testing"
	"time"

	"github.com/quillpay/quill/signing"
)

// BenchmarkSign signs a SHA-256 digest (the message for Ed25519) with each
// backend and algorithm; "parallel" runs b.RunParallel on every core.
func BenchmarkSign(b *testing.B) {
	msg := []byte("1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"id\":\"pay_1\"}\n")
	for _, a := range algorithms {
		key := loadKey(b, a.file)
		in := input(a.opts, msg)
		for _, c := range backends(b) {
			s, err := c.NewSigner(key)
			if err != nil {
				b.Fatal(err)
			}
			pair(b, a.name+"/"+c.Name(), func() error { _, err := s.Sign(rand.Reader, in, a.opts); return err })
		}
	}
}

// BenchmarkVerify verifies one signature with each backend and algorithm,
// with the public key already seen (the OpenSSL backend's cached copy).
func BenchmarkVerify(b *testing.B) {
	msg := []byte("1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"id\":\"pay_1\"}\n")
	for _, a := range algorithms {
		key := loadKey(b, a.file)
		in := input(a.opts, msg)
		sig, err := key.Sign(rand.Reader, in, a.opts)
		if err != nil {
			b.Fatal(err)
		}
		pub := key.Public()
		for _, c := range backends(b) {
			pair(b, a.name+"/"+c.Name(), func() error { return c.Verify(pub, in, sig, a.opts) })
		}
	}
}

// BenchmarkSchemeA is the per-request signature work of scheme A with each
// backend: Verifier.Verify of a request with a 1 KiB body (in-memory keys,
// no-op nonce store) and ResponseSigner.Sign of a 1 KiB response with an
// RSA-2048 platform key, through BackendKeys as the server wires it.
func BenchmarkSchemeA(b *testing.B) {
	key := loadKey(b, "other-rsa.key.pem") // 1024-bit primes, as generated keys have
	body := bytes.Repeat([]byte("x"), 1024)
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { return now }
	auth, err := signing.SignRequest(key, "1900000001", "K1", "POST", "/v1/payments", body, now, "593BEC0C930BF1AFEB40B4A08C8FB242")
	if err != nil {
		b.Fatal(err)
	}
	req := signing.Request{Method: "POST", Target: "/v1/payments", Body: body, Merchant: "1900000001", Authorization: auth}
	ctx := context.Background()
	for _, c := range backends(b) {
		v := &signing.Verifier{Keys: oneKey{key.Public()}, Nonces: anyNonce{}, Now: clock, Crypto: c}
		pair(b, "verify/"+c.Name(), func() error { _, err := v.Verify(ctx, req); return err })
		s := &signing.ResponseSigner{Keys: signing.NewBackendKeys(platform{key}, c), Now: clock}
		pair(b, "respond/"+c.Name(), func() error { _, err := s.Sign(ctx, body); return err })
	}
}

type oneKey struct{ pub crypto.PublicKey }

func (k oneKey) VerifyingKey(context.Context, string, string, time.Time) (crypto.PublicKey, error) {
	return k.pub, nil
}

type anyNonce struct{}

func (anyNonce) Claim(context.Context, string, string, time.Duration) error { return nil }

type platform struct{ key crypto.Signer }

func (p platform) SigningKey(context.Context) (string, crypto.Signer, error) { return "P1", p.key, nil }

// pair benchmarks op on one goroutine ("serial") and with b.RunParallel on
// every core ("parallel"). Besides wall time it reports cpu-ns/op, the
// process's CPU time (user+system) per operation: on a machine shared with
// other work, wall time grows with the load but CPU time much less, and
// cores / cpu-ns/op is the throughput the machine could give to this alone.
func pair(b *testing.B, name string, op func() error) {
	b.Run(name+"/serial", func(b *testing.B) {
		start := cpuTime()
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	})
	b.Run(name+"/parallel", func(b *testing.B) {
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

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
