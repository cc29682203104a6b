// Package openssl is a signing.Crypto backed by OpenSSL 3's libcrypto, through
// github.com/golang-fips/openssl/v2 (cgo; the library is loaded at run time
// with dlopen, so the build needs no OpenSSL headers). On the 2-core dev VM it
// signs RSA-2048 PKCS#1 v1.5 about three times faster than crypto/rsa; see
// docs/BENCHMARKS.md.
//
// Load initializes the library once per process. Built without cgo
// (CGO_ENABLED=0) the package still compiles, and Load returns an error
// wrapping ErrUnavailable, so a caller can fall back to signing.GoCrypto.
//
// Guarantees:
//
//   - RSA PKCS#1 v1.5 signatures are byte-for-byte those of crypto/rsa, and
//     every signature verifies with signing.GoCrypto (and the other way round).
//   - NewSigner refuses a key it cannot load, or loads wrongly, at load time:
//     it signs a test message and verifies it with Go's standard library.
//   - Signers are safe for concurrent use; key material lives in OpenSSL
//     memory and the signers do not print it.
//
// Security caveats:
//
//   - Quill's guarantees then rest on the system's libcrypto: keep it patched.
//     The OpenSSL version is logged at start and shown in /readyz.
//   - ECDSA nonces come from OpenSSL's random generator, not from the
//     io.Reader passed to Sign (which is ignored, as crypto.Signer allows).
//
// Performance caveats (measured, docs/BENCHMARKS.md):
//
//   - The 3× gain is for RSA keys with two equal-size primes, which is what
//     crypto/rsa, OpenSSL and quillctl generate. OpenSSL 3.0 signs with a key
//     whose primes differ in size (the RFC 9421 test key: 1088 and 960 bits)
//     nearly four times slower than with a balanced key (still 1.7× faster
//     than Go, which slows down on such a key too).
//   - Ed25519 is implemented (and pinned equal to Go by tests) but Go's is
//     faster: about 1.9× for signing and 2.2× for verifying on the dev VM.
//     ECDSA P-256 verification is about even.
package openssl

import "errors"

// DefaultLibrary is the shared library Load opens by default: OpenSSL 3's
// libcrypto (Debian package libssl3).
const DefaultLibrary = "libcrypto.so.3"

// ErrUnavailable means OpenSSL cannot be used: the program was built without
// cgo, or the library did not load.
var ErrUnavailable = errors.New("openssl: backend unavailable")
