package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/openssl"
)

// Values of --crypto (QUILL_CRYPTO); empty means auto.
const (
	cryptoAuto    = "auto"    // OpenSSL when it loads, else Go
	cryptoGo      = "go"      // Go's standard library
	cryptoOpenSSL = "openssl" // OpenSSL 3 (libcrypto.so.3), or refuse to start
)

func validCrypto(mode string) bool {
	switch mode {
	case "", cryptoAuto, cryptoGo, cryptoOpenSSL:
		return true
	}
	return false
}

// openCrypto returns the signature backend mode names and logs the choice
// with the library version. In auto mode an OpenSSL that does not load (a
// build without cgo, no libssl3 installed) falls back to Go with a warning;
// in openssl mode it is an error.
func openCrypto(mode string, log zerolog.Logger) (signing.Crypto, error) {
	var c signing.Crypto = signing.GoCrypto{}
	if mode != cryptoGo {
		o, err := openssl.Load(openssl.DefaultLibrary)
		switch {
		case err == nil:
			c = o
		case mode == cryptoOpenSSL:
			return nil, fmt.Errorf("crypto: %w", err)
		default:
			log.Warn().Err(err).Msg("OpenSSL unavailable: signing with Go's crypto (slower for RSA); install libssl3 or build with cgo")
		}
	}
	if mode == "" {
		mode = cryptoAuto
	}
	log.Info().Str("crypto_mode", mode).Str("crypto", c.Name()).Str("crypto_version", c.Version()).Msg("signature backend")
	return c, nil
}

// loadPlatformKey loads the current platform key into the backend at start,
// so a key the backend cannot use stops the server now instead of failing
// the first request. No platform key yet is left to the platform_key
// readiness check.
func loadPlatformKey(ctx context.Context, keys *signing.BackendKeys) error {
	if _, _, err := keys.SigningKey(ctx); errors.Is(err, signing.ErrUnsupportedKey) {
		return fmt.Errorf("crypto: %w", err)
	}
	return nil
}

// cryptoReady is the /readyz entry that names the backend and its version,
// e.g. "crypto: openssl (OpenSSL 3.0.17 1 Jul 2025)". It fails only if the
// current platform key is one the backend cannot load (a rotation to an
// unsupported key); a missing key is the platform_key check's to report.
func cryptoReady(c signing.Crypto, keys *signing.BackendKeys) api.ReadyCheck {
	return api.ReadyCheck{
		Name:  "crypto: " + c.Name() + " (" + c.Version() + ")",
		Check: func(ctx context.Context) error { return loadPlatformKey(ctx, keys) },
	}
}
