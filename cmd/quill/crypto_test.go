package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
	"github.com/quillpay/quill/signing/openssl"
)

// haveOpenSSL reports whether this build can load OpenSSL (cgo and libssl3).
func haveOpenSSL() bool {
	_, err := openssl.Load(openssl.DefaultLibrary)
	return err == nil
}

func TestOpenCrypto(t *testing.T) {
	auto := "go"
	if haveOpenSSL() {
		auto = "openssl"
	}
	for _, tc := range []struct {
		mode, want string
	}{
		{"", auto},
		{cryptoAuto, auto},
		{cryptoGo, "go"},
		{cryptoOpenSSL, "openssl"},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			var logs bytes.Buffer
			c, err := openCrypto(tc.mode, zerolog.New(&logs))
			if tc.want == "openssl" && !haveOpenSSL() {
				if !errors.Is(err, openssl.ErrUnavailable) {
					t.Fatalf("openssl mode without OpenSSL: %v, want ErrUnavailable", err)
				}
				return
			}
			if err != nil || c.Name() != tc.want {
				t.Fatalf("openCrypto = %v, %v; want %s", c, err, tc.want)
			}
			var line struct{ Crypto, CryptoVersion string }
			for l := range strings.Lines(logs.String()) {
				var m map[string]string
				if json.Unmarshal([]byte(l), &m) == nil && m["crypto"] != "" {
					line.Crypto, line.CryptoVersion = m["crypto"], m["crypto_version"]
				}
			}
			if line.Crypto != tc.want || line.CryptoVersion != c.Version() || line.CryptoVersion == "" {
				t.Fatalf("start log names %q %q; want %s %s\n%s", line.Crypto, line.CryptoVersion, tc.want, c.Version(), logs.String())
			}
		})
	}
	bad := config{Window: time.Minute, MaxBody: 1 << 20, MaxBatch: 1, RedisTimeout: time.Second, PayerAlgorithm: "EdDSA", Crypto: "boringssl"}
	if err := bad.validate(); err == nil || !strings.Contains(err.Error(), "crypto") {
		t.Fatalf("validate(--crypto boringssl) = %v", err)
	}
}

// fixedKey is a PlatformKeys with one key (or an error).
type fixedKey struct {
	key crypto.Signer
	err error
}

func (f fixedKey) SigningKey(context.Context) (string, crypto.Signer, error) {
	return "P1", f.key, f.err
}

func TestCryptoReadiness(t *testing.T) {
	ctx := context.Background()
	good, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := signing.GoCrypto{}
	for _, tc := range []struct {
		name string
		keys fixedKey
		ok   bool
	}{
		{"loadable key", fixedKey{key: good}, true},
		{"no platform key yet", fixedKey{err: keys.ErrNotFound}, true},
		{"unloadable key", fixedKey{key: p384}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cryptoReady(c, signing.NewBackendKeys(tc.keys, c))
			if want := "crypto: go (" + c.Version() + ")"; r.Name != want {
				t.Fatalf("name %q, want %q", r.Name, want)
			}
			if err := r.Check(ctx); (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestUnloadablePlatformKeyStopsStart: a platform key the OpenSSL backend
// cannot load (a three-prime RSA key) stops the server at start with a clear
// error, rather than at the first signed response; with --crypto go the
// same store serves, and /readyz names the backend.
func TestUnloadablePlatformKeyStopsStart(t *testing.T) {
	if !haveOpenSSL() {
		t.Skip("OpenSSL does not load in this build")
	}
	dir := t.TempDir()
	now := time.Now()
	if err := devenv.Init(dir, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := devenv.AddMerchant(dir, policy.Merchant{ID: demoMerchant, Name: "demo", FeeBps: 60}, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 a three-prime key is exactly the input under test.
	threePrimes, err := rsa.GenerateMultiPrimeKey(rand.Reader, 3, 2048)
	if err != nil {
		t.Fatal(err)
	}
	store, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.RotatePlatform(context.Background(), keys.NewPrivateKey("P-3PRIME", keys.RSAPKCS1SHA256, threePrimes), 0); err != nil {
		t.Fatal(err)
	}
	c := testConfig(dir, testenv.Postgres(t), testenv.RedisAddr(t))
	c.MaxBatch, c.Crypto = 16, cryptoOpenSSL
	c.Addr, c.OpsAddr = "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = run(ctx, c, zerolog.New(io.Discard), runOptions{})
	if !errors.Is(err, signing.ErrUnsupportedKey) || !strings.Contains(err.Error(), "P-3PRIME") || !strings.Contains(err.Error(), "3 primes") {
		t.Fatalf("run with an unloadable platform key = %v; want ErrUnsupportedKey naming the key and why", err)
	}
	t.Logf("start refused: %v", err)

	// The Go backend takes the same key: the server starts and says so.
	c.Crypto = cryptoGo
	h := startWith(t, c)
	res, err := http.Get(h + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var ready struct{ Checks map[string]string }
	if err := json.NewDecoder(res.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	name := "crypto: go (" + (signing.GoCrypto{}).Version() + ")"
	if res.StatusCode != http.StatusOK || ready.Checks[name] != "ok" {
		t.Fatalf("/readyz %d %v; want %q ok", res.StatusCode, ready.Checks, name)
	}
}

// startWith runs the server with c until the test ends and returns the ops
// listener's base URL once it answers.
func startWith(t *testing.T, c config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() { runErr = run(ctx, c, zerolog.New(io.Discard), runOptions{api: ln, ops: ops}); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if runErr != nil {
			t.Errorf("server: %v", runErr)
		}
	})
	base := "http://" + ops.Addr().String()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			return base
		}
		select {
		case <-done:
			t.Fatalf("server stopped: %v", runErr)
		default:
		}
	}
	t.Fatal("server did not answer in 20s")
	return ""
}
