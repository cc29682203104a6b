//go:build cgo

package openssl_test

import (
	"crypto/rand"
	"testing"
)

// BenchmarkSign signs a SHA-256 digest (the message for Ed25519) with each
// backend and algorithm; "parallel" runs b.RunParallel on every core.
func BenchmarkSign(b *testing.B) {
	msg := []byte("1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"id\":\"pay_1\"}\n")
	for _, a := range algorithms {
		key := loadKey(b, a.file)
		in := input(key, msg)
		for _, c := range backends(b) {
			s, err := c.NewSigner(key)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(a.name+"/"+c.Name()+"/serial", func(b *testing.B) {
				for b.Loop() {
					if _, err := s.Sign(rand.Reader, in, a.opts); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(a.name+"/"+c.Name()+"/parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.Sign(rand.Reader, in, a.opts); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkVerify verifies one signature with each backend and algorithm,
// with the public key already seen (the OpenSSL backend's cached copy).
func BenchmarkVerify(b *testing.B) {
	msg := []byte("1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"id\":\"pay_1\"}\n")
	for _, a := range algorithms {
		key := loadKey(b, a.file)
		in := input(key, msg)
		sig, err := key.Sign(rand.Reader, in, a.opts)
		if err != nil {
			b.Fatal(err)
		}
		pub := key.Public()
		for _, c := range backends(b) {
			b.Run(a.name+"/"+c.Name()+"/serial", func(b *testing.B) {
				for b.Loop() {
					if err := c.Verify(pub, in, sig, a.opts); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(a.name+"/"+c.Name()+"/parallel", func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := c.Verify(pub, in, sig, a.opts); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
