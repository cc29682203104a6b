package main

import (
	"bytes"
	"context"
	"crypto"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/policy"
)

// quillctl runs the CLI with args and returns what it printed.
func quillctl(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := rootCmd()
	cmd.SetArgs(append([]string{"--data-dir", dir}, args...))
	var errOut bytes.Buffer
	cmd.SetErr(&errOut)
	old := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout = w
	runErr := cmd.Execute()
	w.Close()
	os.Stdout = old
	out, _ := io.ReadAll(r)
	return string(out) + errOut.String(), runErr
}

func TestOnboardingFlow(t *testing.T) {
	dir := t.TempDir()
	if _, err := quillctl(t, dir, "dev", "init"); err != nil {
		t.Fatal(err)
	}
	ks, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	platform, err := ks.PlatformKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// init again keeps the material: the platform key does not change.
	if _, err := quillctl(t, dir, "dev", "init"); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	again, _ := ks.PlatformKey(context.Background())
	if again.ID() != platform.ID() {
		t.Fatalf("dev init replaced the platform key %s with %s", platform.ID(), again.ID())
	}

	out, err := quillctl(t, dir, "merchant", "add", "M7", "--fee-bps", "25", "--can-deposit")
	if err != nil {
		t.Fatal(err)
	}
	m, err := devenv.LoadMerchant(dir, "M7")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, m.KeyID) {
		t.Fatalf("add did not print the key id %s:\n%s", m.KeyID, out)
	}
	ks.Reload()
	k, err := ks.PublicKey(context.Background(), "M7", m.KeyID)
	if err != nil || k.Status != keys.Active || k.Algorithm != keys.RSAPKCS1SHA256 {
		t.Fatalf("registered key %+v, %v", k, err)
	}
	if !k.Public.(interface{ Equal(crypto.PublicKey) bool }).Equal(m.SigningKey.Public()) {
		t.Fatal("registered key is not the merchant's signing key")
	}
	d, err := policy.LoadDirectory(filepath.Join(dir, "merchants.json"))
	if err != nil {
		t.Fatal(err)
	}
	prof, err := d.Merchant(context.Background(), "M7")
	if err != nil || prof.FeeBps != 25 || !prof.CanDeposit {
		t.Fatalf("profile %+v, %v", prof, err)
	}
	if fi, err := os.Stat(filepath.Join(devenv.MerchantDir(dir, "M7"), "signing.key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key file mode: %v %v", fi, err)
	}

	if _, err := quillctl(t, dir, "merchant", "add", "M7"); err == nil {
		t.Fatal("adding an existing merchant succeeded")
	}
	if _, err := quillctl(t, dir, "merchant", "add", "M7", "--if-missing"); err != nil {
		t.Fatalf("--if-missing: %v", err)
	}
	if _, err := quillctl(t, dir, "merchant", "add", "bad id!"); err == nil {
		t.Fatal("an invalid merchant id was accepted")
	}

	list, err := quillctl(t, dir, "merchant", "list")
	if err != nil || !strings.Contains(list, "M7") || !strings.Contains(list, m.KeyID) {
		t.Fatalf("list: %v\n%s", err, list)
	}
	if strings.Contains(list, "PRIVATE KEY") {
		t.Fatal("list printed key material")
	}
}

func TestTokenVerifiesWithThePayerKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := quillctl(t, dir, "dev", "init"); err != nil {
		t.Fatal(err)
	}
	out, err := quillctl(t, dir, "token", "--sub", "u-77", "--ttl", "2m")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v := &policy.TokenVerifier{
		Keys:      tokenKeys{ks},
		Denylist:  noDenylist{},
		Issuer:    devenv.PayerIssuer,
		Audience:  devenv.PayerAudience,
		Algorithm: devenv.PayerAlgorithm,
	}
	p, err := v.VerifyPayer(context.Background(), strings.TrimSpace(out))
	if err != nil || p.Subject != "u-77" {
		t.Fatalf("payer %+v, %v", p, err)
	}
	v.Now = func() time.Time { return time.Now().Add(3 * time.Minute) }
	if _, err := v.VerifyPayer(context.Background(), strings.TrimSpace(out)); err == nil {
		t.Fatal("token outlived its --ttl")
	}
}

type tokenKeys struct{ s *keys.FileStore }

func (k tokenKeys) TokenKey(ctx context.Context, kid string) (crypto.PublicKey, error) {
	pk, err := k.s.PublicKey(ctx, keys.PayerOwner, kid)
	return pk.Public, err
}

type noDenylist struct{}

func (noDenylist) Denied(context.Context, string, string) (bool, error) { return false, nil }

func TestRequestNeedsAMerchant(t *testing.T) {
	dir := t.TempDir()
	if _, err := quillctl(t, dir, "dev", "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := quillctl(t, dir, "request", "GET", "/v1/certificates", "--merchant", "NOPE", "--url", "https://127.0.0.1:1"); err == nil {
		t.Fatal("request for an unknown merchant succeeded")
	}
	if _, err := quillctl(t, dir, "request", "GET"); err == nil {
		t.Fatal("request without a path succeeded")
	}
}
