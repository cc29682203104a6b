package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/internal/vaulttest"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/merchant"
	merchantpg "github.com/quillpay/quill/merchant/postgres"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

// quillctl runs the CLI with args against the dev material in dir and the
// registry at QUILL_PG_DSN (see setup) and returns what it printed.
func quillctl(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := rootCmd()
	cmd.SetArgs(append([]string{"--data-dir", dir}, args...))
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	// Commands that print with fmt.Print* write to os.Stdout: catch that too.
	old := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	runErr := cmd.Execute()
	w.Close()
	os.Stdout = old
	return string(<-done) + out.String(), runErr
}

// setup makes dev material and a fresh, migrated registry database, and
// points quillctl at them as operator "alice".
func setup(t *testing.T) (dir string, reg *merchantpg.Store) {
	t.Helper()
	dir = t.TempDir()
	dsn := testenv.Postgres(t)
	t.Setenv("QUILL_PG_DSN", dsn)
	t.Setenv("QUILL_OPERATOR", "alice@ops")
	t.Setenv("QUILL_VAULT_ADDR", "")
	t.Setenv("QUILL_CONFIG", "")
	t.Setenv("QUILL_REPLAY_WINDOW", "300s")
	if _, err := quillctl(t, dir, "migrate"); err != nil {
		t.Fatal(err)
	}
	if _, err := quillctl(t, dir, "dev", "init"); err != nil {
		t.Fatal(err)
	}
	reg, err := merchantpg.Open(context.Background(), dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return dir, reg
}

func events(t *testing.T, reg *merchantpg.Store, subject string) []merchant.Event {
	t.Helper()
	evs, err := reg.Events(context.Background(), merchant.EventFilter{Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func fileStore(t *testing.T, dir string) *keys.FileStore {
	t.Helper()
	ks, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestOnboardingFlow(t *testing.T) {
	dir, reg := setup(t)
	ks := fileStore(t, dir)
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

	out, err := quillctl(t, dir, "merchant", "add", "M7", "--fee-bps", "25", "--can-deposit", "--currency", "CNY", "--currency", "USD")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
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
	prof, err := reg.Get(context.Background(), "M7")
	if err != nil || prof.FeeBps != 25 || !prof.CanDeposit || prof.Status != merchant.Active || len(prof.Rules.Currencies) != 2 {
		t.Fatalf("profile %+v, %v", prof, err)
	}
	if fi, err := os.Stat(filepath.Join(devenv.MerchantDir(dir, "M7"), "signing.key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key file mode: %v %v", fi, err)
	}
	evs := events(t, reg, "M7")
	if len(evs) != 1 || evs[0].Action != merchant.MerchantAdded || evs[0].Actor != "alice@ops" || evs[0].NewKeyID != m.KeyID {
		t.Fatalf("events after add: %+v", evs)
	}

	for name, args := range map[string][]string{
		"existing merchant": {"merchant", "add", "M7"},
		"invalid id":        {"merchant", "add", "bad id!"},
		"reserved id":       {"merchant", "add", "_platform"},
		"fee over 100%":     {"merchant", "add", "M8", "--fee-bps", "10001"},
		"unknown currency":  {"merchant", "add", "M8", "--currency", "XYZ"},
	} {
		if out, err := quillctl(t, dir, args...); err == nil {
			t.Errorf("%s: accepted\n%s", name, out)
		}
	}
	if _, err := reg.Get(context.Background(), "M8"); !errors.Is(err, merchant.ErrUnknown) {
		t.Fatalf("a refused add registered M8: %v", err)
	}
	if _, err := quillctl(t, dir, "merchant", "add", "M7", "--if-missing"); err != nil {
		t.Fatalf("--if-missing: %v", err)
	}
	if n := len(events(t, reg, "")); n != 1 {
		t.Fatalf("refused and no-op adds wrote events: %d events", n)
	}

	list, err := quillctl(t, dir, "merchant", "list")
	if err != nil || !strings.Contains(list, "M7") || !strings.Contains(list, m.KeyID) || !strings.Contains(list, "ACTIVE_KEYS") {
		t.Fatalf("list: %v\n%s", err, list)
	}
	if strings.Contains(list, "PRIVATE KEY") {
		t.Fatal("list printed key material")
	}
	js, err := quillctl(t, dir, "merchant", "list", "--json")
	var rows []struct {
		ID         string   `json:"id"`
		FeeBps     int64    `json:"fee_bps"`
		ActiveKeys []string `json:"active_keys"`
	}
	if err != nil || json.Unmarshal([]byte(js), &rows) != nil || len(rows) != 1 || rows[0].FeeBps != 25 || len(rows[0].ActiveKeys) != 1 {
		t.Fatalf("list --json: %v\n%s", err, js)
	}
}

func TestAddWithKeyOut(t *testing.T) {
	dir, reg := setup(t)
	path := filepath.Join(t.TempDir(), "m9.key.pem")
	if out, err := quillctl(t, dir, "merchant", "add", "M9", "--key-out", path); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(path)
	signer, err := keys.ParsePrivateKeyPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	ks := fileStore(t, dir)
	pubs, _ := ks.PublicKeys(context.Background(), "M9")
	if len(pubs) != 1 || !pubs[0].Public.(interface{ Equal(crypto.PublicKey) bool }).Equal(signer.Public()) {
		t.Fatalf("registered %+v", pubs)
	}
	if devenv.HasClientCert(dir, "M9") {
		t.Fatal("--key-out wrote dev material")
	}
	// An existing file is never overwritten, and nothing is registered.
	if _, err := quillctl(t, dir, "merchant", "add", "M10", "--key-out", path); err == nil {
		t.Fatal("--key-out overwrote an existing file")
	}
	if _, err := reg.Get(context.Background(), "M10"); !errors.Is(err, merchant.ErrUnknown) {
		t.Fatalf("M10 registered: %v", err)
	}
	// --key-out - prints the key once, on stdout.
	out, err := quillctl(t, dir, "merchant", "add", "M11", "--key-out", "-")
	if err != nil || strings.Count(out, "BEGIN PRIVATE KEY") != 1 {
		t.Fatalf("--key-out -: %v\n%s", err, out)
	}
	if list, _ := quillctl(t, dir, "keys", "show", "M11", "1"); strings.Contains(list, "PRIVATE") || !strings.Contains(list, "PUBLIC KEY") {
		t.Fatalf("keys show: %s", list)
	}
}

func TestMerchantUpdateDisableEnable(t *testing.T) {
	dir, reg := setup(t)
	ctx := context.Background()
	if _, err := quillctl(t, dir, "merchant", "add", "M7", "--fee-bps", "60"); err != nil {
		t.Fatal(err)
	}
	if out, err := quillctl(t, dir, "merchant", "update", "M7", "--fee-bps", "30", "--max-amount", "500.00"); err != nil || !strings.Contains(out, "fee_bps 60→30") {
		t.Fatalf("update: %v\n%s", err, out)
	}
	if p, _ := reg.Get(ctx, "M7"); p.FeeBps != 30 || p.Rules.MaxAmount != "500.00" || p.Name != "M7" {
		t.Fatalf("after update: %+v", p)
	}
	for name, args := range map[string][]string{
		"bad fee":         {"merchant", "update", "M7", "--fee-bps", "-1"},
		"bad bound":       {"merchant", "update", "M7", "--max-amount", "12,00"},
		"bad pattern":     {"merchant", "update", "M7", "--order-id-pattern", "("},
		"unknown":         {"merchant", "update", "NOPE", "--fee-bps", "1"},
		"disable unknown": {"merchant", "disable", "NOPE"},
		"no flags":        {"merchant", "update", "M7"},
	} {
		if out, err := quillctl(t, dir, args...); err == nil {
			t.Errorf("%s accepted\n%s", name, out)
		}
	}
	if p, _ := reg.Get(ctx, "M7"); p.FeeBps != 30 || p.Rules.MaxAmount != "500.00" {
		t.Fatalf("refused updates changed the profile: %+v", p)
	}
	// A change of nothing writes nothing.
	before := len(events(t, reg, "M7"))
	if _, err := quillctl(t, dir, "merchant", "update", "M7", "--fee-bps", "30"); err != nil {
		t.Fatal(err)
	}
	if _, err := quillctl(t, dir, "merchant", "disable", "M7"); err != nil {
		t.Fatal(err)
	}
	if p, _ := reg.Get(ctx, "M7"); p.Status != merchant.Disabled {
		t.Fatalf("status %s after disable", p.Status)
	}
	if _, err := quillctl(t, dir, "merchant", "disable", "M7"); err != nil {
		t.Fatal(err)
	}
	if _, err := quillctl(t, dir, "merchant", "enable", "M7"); err != nil {
		t.Fatal(err)
	}
	evs := events(t, reg, "M7")[before:]
	if len(evs) != 2 || evs[0].Action != merchant.MerchantDisabled || evs[1].Action != merchant.MerchantEnabled || evs[0].Actor != "alice@ops" || evs[0].Detail != "status active→disabled" {
		t.Fatalf("events: %+v", evs)
	}
	if out, _ := quillctl(t, dir, "merchant", "list"); !strings.Contains(out, "active") {
		t.Fatalf("list: %s", out)
	}
}

func TestKeysRotateRetireRevoke(t *testing.T) {
	dir, reg := setup(t)
	ctx := context.Background()
	if _, err := quillctl(t, dir, "merchant", "add", "M7"); err != nil {
		t.Fatal(err)
	}
	first, _ := devenv.LoadMerchant(dir, "M7")
	nEvents := func() int { return len(events(t, reg, "")) }
	base := nEvents()

	for name, args := range map[string][]string{
		"missing ring":           {"keys", "rotate", "M404", "--overlap", "1h"},
		"overlap below window":   {"keys", "rotate", "M7", "--overlap", "299s"},
		"no overlap":             {"keys", "rotate", "M7"},
		"bad ring name":          {"keys", "rotate", "a/b", "--overlap", "1h"},
		"revoke only active":     {"keys", "revoke", "M7", "1"},
		"retire only active":     {"keys", "retire", "M7", first.KeyID},
		"retire grace too short": {"keys", "retire", "M7", "1", "--grace", "10s", "--force"},
		"revoke unknown version": {"keys", "revoke", "M7", "9"},
		"platform with key-out":  {"keys", "rotate", "platform", "--overlap", "1h", "--key-out", "x.pem"},
	} {
		out, err := quillctl(t, dir, args...)
		if err == nil {
			t.Errorf("%s: accepted\n%s", name, out)
		}
	}
	if n := nEvents(); n != base {
		t.Fatalf("refused commands wrote %d events", n-base)
	}
	ks := fileStore(t, dir)
	if k, _ := ks.PublicKey(ctx, "M7", first.KeyID); k.Status != keys.Active {
		t.Fatalf("refused commands changed the key: %s", k.Status)
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "M404")); err == nil {
		t.Fatal("a refused rotation created something")
	}

	// Rotate the merchant key: the dev layout switches to the new key, the old
	// one retires with the overlap.
	out, err := quillctl(t, dir, "keys", "rotate", "M7", "--overlap", "1h")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	second, _ := devenv.LoadMerchant(dir, "M7")
	if second.KeyID == first.KeyID {
		t.Fatal("dev key id unchanged after rotation")
	}
	ks.Reload()
	old, _ := ks.PublicKey(ctx, "M7", first.KeyID)
	cur, _ := ks.PublicKey(ctx, "M7", second.KeyID)
	if old.Status != keys.Retiring || old.NotAfter.Before(time.Now().Add(59*time.Minute)) || cur.Status != keys.Active {
		t.Fatalf("after rotate: old %s until %s, new %s", old.Status, old.NotAfter, cur.Status)
	}
	evs := events(t, reg, "M7")
	last := evs[len(evs)-1]
	if last.Action != merchant.KeyRotated || last.OldKeyID != first.KeyID || last.NewKeyID != second.KeyID || last.Actor != "alice@ops" {
		t.Fatalf("rotation event: %+v", last)
	}

	// Now the first key may be revoked; the only active one still may not.
	if out, err := quillctl(t, dir, "keys", "revoke", "M7", "1"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := quillctl(t, dir, "keys", "revoke", "M7", second.KeyID); err == nil || !strings.Contains(out+err.Error(), "--force") {
		t.Fatalf("revoking the last active key: %v\n%s", err, out)
	}
	if _, err := quillctl(t, dir, "keys", "retire", "M7", "2", "--grace", "10m", "--force"); err != nil {
		t.Fatal(err)
	}
	if _, err := quillctl(t, dir, "keys", "revoke", "M7", "2", "--force"); err != nil {
		t.Fatal(err)
	}
	ks.Reload()
	if k, _ := ks.PublicKey(ctx, "M7", second.KeyID); k.Status != keys.Revoked {
		t.Fatalf("forced revoke: %s", k.Status)
	}
	var actions []merchant.Action
	for _, e := range events(t, reg, "M7") {
		actions = append(actions, e.Action)
	}
	want := []merchant.Action{merchant.MerchantAdded, merchant.KeyRotated, merchant.KeyRevoked, merchant.KeyRetired, merchant.KeyRevoked}
	if fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Fatalf("actions %v; want %v", actions, want)
	}

	// keys list, as a table and as JSON.
	js, err := quillctl(t, dir, "keys", "list", "--ring", "M7", "--json")
	var rows []struct {
		Ring, ID string
		Version  int
		Status   keys.Status
	}
	if err != nil || json.Unmarshal([]byte(js), &rows) != nil || len(rows) != 2 || rows[0].Version != 2 || rows[0].Status != keys.Revoked {
		t.Fatalf("keys list --json: %v\n%s", err, js)
	}
	if out, err := quillctl(t, dir, "keys", "list"); err != nil || !strings.Contains(out, "_platform") || !strings.Contains(out, "_payer") || !strings.Contains(out, "M7") {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	if _, err := quillctl(t, dir, "keys", "list", "--ring", "M404"); err == nil {
		t.Fatal("keys list of a missing ring succeeded")
	}
}

func TestRotatePlatformAndPayer(t *testing.T) {
	dir, reg := setup(t)
	ctx := context.Background()
	ks := fileStore(t, dir)
	p1, _ := ks.PlatformKey(ctx)
	if out, err := quillctl(t, dir, "keys", "rotate", "platform", "--overlap", "10m"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ks.Reload()
	p2, _ := ks.PlatformKey(ctx)
	serial, _ := os.ReadFile(filepath.Join(dir, "platform.serial"))
	if p2.ID() == p1.ID() || strings.TrimSpace(string(serial)) != p2.ID() {
		t.Fatalf("platform %s → %s, platform.serial %s", p1.ID(), p2.ID(), serial)
	}
	if pubs, _ := ks.PlatformPublicKeys(ctx); len(pubs) != 2 {
		t.Fatalf("both platform keys must stay published during the overlap: %d", len(pubs))
	}
	oldKid, _ := os.ReadFile(filepath.Join(dir, "payer-signer.kid"))
	if out, err := quillctl(t, dir, "keys", "rotate", "payer", "--overlap", "15m"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	newKid, _ := os.ReadFile(filepath.Join(dir, "payer-signer.kid"))
	if string(newKid) == string(oldKid) || !strings.HasPrefix(string(newKid), "PAYER_") {
		t.Fatalf("payer kid %q → %q", oldKid, newKid)
	}
	// Tokens from the rotated dev login service still verify.
	tok, err := quillctl(t, dir, "token", "--sub", "7")
	if err != nil {
		t.Fatal(err)
	}
	ks.Reload()
	v := &policy.TokenVerifier{Keys: tokenKeys{ks}, Denylist: noDenylist{}, Issuer: devenv.PayerIssuer, Audience: devenv.PayerAudience, Algorithm: devenv.PayerAlgorithm}
	if _, err := v.VerifyPayer(ctx, strings.TrimSpace(tok)); err != nil {
		t.Fatalf("token after payer rotation: %v", err)
	}
	// A merchant ring that was never created: refused.
	if _, err := quillctl(t, dir, "keys", "rotate", "M999", "--overlap", "1h", "--key-out", "-"); err == nil {
		t.Fatal("rotating a ring that does not exist succeeded")
	}
	evs := events(t, reg, keys.PlatformOwner)
	if len(evs) != 1 || evs[0].OldKeyID != p1.ID() || evs[0].NewKeyID != p2.ID() {
		t.Fatalf("platform events %+v", evs)
	}
	if out, err := quillctl(t, dir, "events", "--json"); err != nil || !strings.Contains(out, `"key.rotated"`) {
		t.Fatalf("events --json: %v\n%s", err, out)
	}
	if out, err := quillctl(t, dir, "events", "--subject", "_payer"); err != nil || strings.Count(out, "key.rotated") != 1 || !strings.Contains(out, "alice@ops") {
		t.Fatalf("events --subject: %v\n%s", err, out)
	}
}

func TestConfigFile(t *testing.T) {
	dir, _ := setup(t)
	conf := filepath.Join(t.TempDir(), "quillctl.conf")
	write := func(content string, mode os.FileMode) {
		if err := os.WriteFile(conf, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(conf, mode)
	}
	dsn := os.Getenv("QUILL_PG_DSN")
	for name, tt := range map[string]struct {
		content string
		mode    os.FileMode
		ok      bool
	}{
		"unknown name":           {"QUILL_PG_DNS=" + dsn + "\n", 0o600, false},
		"not NAME=value":         {"QUILL_OPERATOR\n", 0o600, false},
		"secret, world-readable": {"QUILL_PG_DSN=" + dsn + "\n", 0o644, false},
		"secret, owner only":     {"# registry\nQUILL_PG_DSN=" + dsn + "\n\nQUILL_OPERATOR=carol\n", 0o600, true},
		"no secret, readable":    {"QUILL_OPERATOR=carol\n", 0o644, true},
	} {
		t.Run(name, func(t *testing.T) {
			write(tt.content, tt.mode)
			out, err := quillctl(t, dir, "--config", conf, "merchant", "list")
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v; want ok=%t\n%s", err, tt.ok, out)
			}
		})
	}
	// The environment wins over the file; config shows where each value came from.
	write("QUILL_OPERATOR=carol\nQUILL_URL=https://quill.example:8443\n", 0o600)
	out, err := quillctl(t, dir, "--config", conf, "config")
	if err != nil || !strings.Contains(out, "alice@ops") || strings.Contains(out, "carol") || !strings.Contains(out, "https://quill.example:8443") || strings.Contains(out, dsn) {
		t.Fatalf("config: %v\n%s", err, out)
	}
	t.Setenv("QUILL_REPLAY_WINDOW", "300")
	if _, err := quillctl(t, dir, "keys", "rotate", "platform", "--overlap", "1h"); err == nil || !strings.Contains(err.Error(), "QUILL_REPLAY_WINDOW") {
		t.Fatalf("a bad QUILL_REPLAY_WINDOW: %v", err)
	}
	t.Setenv("QUILL_PG_DSN", "")
	if _, err := quillctl(t, dir, "merchant", "list"); err == nil || !strings.Contains(err.Error(), "QUILL_PG_DSN") {
		t.Fatalf("no DSN: %v", err)
	}
	dsnFile := filepath.Join(t.TempDir(), "dsn")
	os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600)
	t.Setenv("QUILL_PG_DSN_FILE", dsnFile)
	if _, err := quillctl(t, dir, "merchant", "list"); err != nil {
		t.Fatalf("DSN from a file: %v", err)
	}
}

func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Name() != "help" && c.Name() != "completion" && c.Parent() != nil && c.Parent().Name() != "completion" {
			n++
			if c.Example == "" {
				t.Errorf("%s has no example in its help", c.CommandPath())
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(rootCmd())
	if n < 15 {
		t.Fatalf("only %d commands found", n)
	}
}

func TestVersion(t *testing.T) {
	out, err := quillctl(t, t.TempDir(), "--version")
	if err != nil || !strings.HasPrefix(out, "quillctl version ") {
		t.Fatalf("--version: %v %q", err, out)
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

// fakeQuill is a TLS server with the dev server certificate that answers
// like Quill: every response signed with the dev platform key, the platform
// keys at /v1/certificates, a 404 and a 500 elsewhere, and one response whose
// body is altered after signing.
func fakeQuill(t *testing.T, dir string) string {
	t.Helper()
	ks := fileStore(t, dir)
	pk, err := ks.PlatformKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	signer := &signing.ResponseSigner{Keys: platformKey{pk}}
	pubPEM, _ := keys.MarshalPublicKeyPEM(pk.Signer().Public())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body := http.StatusNotFound, []byte(`{"code":"not_found"}`)
		switch r.URL.Path {
		case "/v1/certificates":
			b, _ := json.Marshal(map[string]any{"data": []map[string]string{{"serial_no": pk.ID(), "algorithm": string(pk.Algorithm()), "public_key": string(pubPEM)}}})
			status, body = http.StatusOK, b
		case "/ok":
			status, body = http.StatusOK, []byte(`{"ok":true}`)
		case "/boom":
			status, body = http.StatusInternalServerError, []byte(`{"code":"internal"}`)
		}
		sig, err := signer.Sign(r.Context(), body)
		if err != nil {
			t.Error(err)
		}
		if r.URL.Path == "/tampered" {
			body = []byte(`{"code":"altered"}`)
		}
		w.Header().Set("Wechatpay-Timestamp", sig.Timestamp)
		w.Header().Set("Wechatpay-Nonce", sig.Nonce)
		w.Header().Set("Wechatpay-Serial", sig.Serial)
		w.Header().Set("Wechatpay-Signature", sig.Signature)
		w.WriteHeader(status)
		w.Write(body)
	})
	// The dev server certificate lives in the key store's TLS items.
	item, err := ks.TLSItem(context.Background(), keys.TLSServer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(item.CertificatePEM, item.PrivateKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

type platformKey struct{ k keys.PrivateKey }

func (p platformKey) SigningKey(context.Context) (string, crypto.Signer, error) {
	return p.k.ID(), p.k.Signer(), nil
}

func TestRequestExitStatus(t *testing.T) {
	dir, _ := setup(t)
	if _, err := quillctl(t, dir, "merchant", "add", "M100"); err != nil {
		t.Fatal(err)
	}
	url := fakeQuill(t, dir)
	for _, tt := range []struct {
		path string
		code int // 0: success
		out  string
	}{
		{"/ok", 0, "response signature: verified"},
		{"/v1/certificates", 0, "response signature: verified"},
		{"/missing", exitNon2xx, "< 404"},
		{"/boom", exitNon2xx, "< 500"},
		{"/tampered", exitUnverified, "NOT verified"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			out, err := quillctl(t, dir, "request", "GET", tt.path, "--url", url)
			var ee *exitError
			switch {
			case tt.code == 0 && err != nil:
				t.Fatalf("%v\n%s", err, out)
			case tt.code != 0 && (!errors.As(err, &ee) || ee.code != tt.code):
				t.Fatalf("err %v; want exit %d\n%s", err, tt.code, out)
			case !strings.Contains(out, tt.out):
				t.Fatalf("output lacks %q:\n%s", tt.out, out)
			}
			if tt.code == exitUnverified && strings.Contains(out, "altered") {
				t.Fatalf("an unverified body was printed:\n%s", out)
			}
		})
	}
	help, _ := quillctl(t, dir, "request", "--help")
	if !strings.Contains(help, "Exit status") || !strings.Contains(help, "not 2xx") {
		t.Fatalf("request --help does not document the exit status:\n%s", help)
	}
}

// TestKeysInVault runs onboarding, rotation and revocation against a real
// (in-process, dev) Vault: the CLI writes through the same vault.Store the
// server reads, configured from the same QUILL_VAULT_* names.
func TestKeysInVault(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev Vault")
	}
	dir, reg := setup(t)
	v := vaulttest.Shared(t)
	t.Setenv("QUILL_VAULT_ADDR", v.Addr)
	t.Setenv("QUILL_VAULT_TOKEN", v.RootToken)
	t.Setenv("QUILL_VAULT_MOUNT", v.Mount)
	t.Setenv("QUILL_VAULT_PREFIX", vaulttest.Prefix())
	keyFile := filepath.Join(t.TempDir(), "m50.key.pem")
	if out, err := quillctl(t, dir, "merchant", "add", "M50", "--key-out", keyFile); err != nil || !strings.Contains(out, "vault") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if _, err := quillctl(t, dir, "keys", "rotate", "M51", "--overlap", "1h", "--key-out", "-"); err == nil {
		t.Fatal("rotating a ring that is not in Vault succeeded")
	}
	if _, err := quillctl(t, dir, "keys", "revoke", "M50", "1"); err == nil {
		t.Fatal("revoking the only active key in Vault succeeded")
	}
	out, err := quillctl(t, dir, "keys", "rotate", "M50", "--overlap", "10m", "--key-out", "-")
	if err != nil || !strings.Contains(out, "BEGIN PRIVATE KEY") {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	js, err := quillctl(t, dir, "keys", "list", "--ring", "M50", "--json")
	var rows []struct {
		Version int
		Status  keys.Status
	}
	if err != nil || json.Unmarshal([]byte(js), &rows) != nil || len(rows) != 2 || rows[0].Status != keys.Active || rows[1].Status != keys.Retiring {
		t.Fatalf("keys in vault: %v\n%s", err, js)
	}
	// Nothing went to the dev file store.
	if ks, _ := fileStore(t, dir).PublicKeys(context.Background(), "M50"); len(ks) != 0 {
		t.Fatalf("the dev store got %d keys", len(ks))
	}
	var actions []merchant.Action
	for _, e := range events(t, reg, "M50") {
		actions = append(actions, e.Action)
	}
	if fmt.Sprint(actions) != fmt.Sprint([]merchant.Action{merchant.MerchantAdded, merchant.KeyRotated}) {
		t.Fatalf("events %v", actions)
	}
}

func TestRecordEvent(t *testing.T) {
	dir, reg := setup(t)
	a := &app{dataDir: dir}
	if err := a.load(); err != nil {
		t.Fatal(err)
	}
	if err := a.recordEvent(context.Background(), merchant.Event{Action: merchant.CertRevoked, Subject: "M7", Detail: "serial 1F"}); err != nil {
		t.Fatal(err)
	}
	evs := events(t, reg, "M7")
	if len(evs) != 1 || evs[0].Actor != "alice@ops" || evs[0].Action != merchant.CertRevoked {
		t.Fatalf("events %+v", evs)
	}
	t.Setenv("QUILL_PG_DSN", "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1")
	a = &app{dataDir: dir}
	a.load()
	var ee *exitError
	if err := a.recordEvent(context.Background(), merchant.Event{Action: merchant.CertRevoked, Subject: "M7"}); !errors.As(err, &ee) || ee.code != 3 {
		t.Fatalf("unrecordable event: %v; want exit status 3", err)
	}
}

// TestMerchantAlgorithm: --alg decides the key generated, the algorithm the
// ring version is registered with and the dev layout's algorithm file; a
// rotation keeps the algorithm unless --alg changes it; an unknown one is
// refused before anything is written.
func TestMerchantAlgorithm(t *testing.T) {
	dir, reg := setup(t)
	ctx := context.Background()
	ks := fileStore(t, dir)
	newest := func(id string) keys.PublicKey {
		t.Helper()
		ks.Reload()
		pubs, err := ks.PublicKeys(ctx, id)
		if err != nil || len(pubs) == 0 {
			t.Fatalf("%s: %v %v", id, pubs, err)
		}
		return pubs[0]
	}
	for i, alg := range []keys.Algorithm{keys.RSAPKCS1SHA256, keys.RSAPSSSHA512, keys.ECDSAP256SHA256, keys.Ed25519} {
		id := fmt.Sprintf("MA%d", i)
		if out, err := quillctl(t, dir, "merchant", "add", id, "--alg", string(alg)); err != nil || !strings.Contains(out, string(alg)) {
			t.Fatalf("%s: %v\n%s", alg, err, out)
		}
		m, err := devenv.LoadMerchant(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		k := newest(id)
		if k.Algorithm != alg || k.ID != m.KeyID || m.Algorithm != alg {
			t.Fatalf("%s: ring version %s (%s), dev material %s (%s)", alg, k.ID, k.Algorithm, m.KeyID, m.Algorithm)
		}
		if !k.Public.(interface{ Equal(crypto.PublicKey) bool }).Equal(m.SigningKey.Public()) {
			t.Fatalf("%s: registered key is not the dev signing key", alg)
		}
		if def, _ := keys.AlgorithmOf(m.SigningKey.Public()); def != alg && !(alg == keys.RSAPSSSHA512 && def == keys.RSAPKCS1SHA256) {
			t.Fatalf("%s: generated a %s key", alg, def)
		}
		_, statErr := os.Stat(filepath.Join(devenv.MerchantDir(dir, id), "algorithm"))
		if (alg == keys.RSAPKCS1SHA256) != errors.Is(statErr, os.ErrNotExist) {
			t.Fatalf("%s: algorithm file: %v", alg, statErr)
		}
	}
	// --key-out records the algorithm too.
	path := filepath.Join(t.TempDir(), "ed.key.pem")
	if out, err := quillctl(t, dir, "merchant", "add", "MK1", "--alg", "ed25519", "--key-out", path); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b, _ := os.ReadFile(path)
	if s, err := keys.ParsePrivateKeyPEM(b); err != nil || newest("MK1").Algorithm != keys.Ed25519 {
		t.Fatalf("--key-out: %v, %s", err, newest("MK1").Algorithm)
	} else if _, ok := s.Public().(ed25519.PublicKey); !ok {
		t.Fatalf("--key-out wrote a %T", s.Public())
	}

	// Rotation without --alg keeps the ring's algorithm; with it, changes it,
	// and the dev layout follows (the algorithm file goes for rsa-v1_5).
	if out, err := quillctl(t, dir, "keys", "rotate", "MA3", "--overlap", "1h"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if k := newest("MA3"); k.Version != 2 || k.Algorithm != keys.Ed25519 {
		t.Fatalf("rotate without --alg: v%d %s", k.Version, k.Algorithm)
	}
	for v, alg := range []keys.Algorithm{keys.ECDSAP256SHA256, keys.RSAPKCS1SHA256, keys.RSAPSSSHA512} {
		if out, err := quillctl(t, dir, "keys", "rotate", "MA3", "--overlap", "1h", "--alg", string(alg)); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		k := newest("MA3")
		m, err := devenv.LoadMerchant(dir, "MA3")
		if err != nil {
			t.Fatal(err)
		}
		if k.Version != v+3 || k.Algorithm != alg || m.KeyID != k.ID || m.Algorithm != alg {
			t.Fatalf("rotate --alg %s: ring v%d %s %s, dev %s %s", alg, k.Version, k.ID, k.Algorithm, m.KeyID, m.Algorithm)
		}
	}

	// Unknown algorithms are refused with the list, and nothing is written.
	before := len(events(t, reg, ""))
	ks.Reload()
	ringBefore, _ := ks.PublicKeys(ctx, "MA3")
	for name, args := range map[string][]string{
		"add bad alg":          {"merchant", "add", "MB1", "--alg", "rsa-sha1"},
		"add empty alg":        {"merchant", "add", "MB2", "--alg", ""},
		"add key-out bad alg":  {"merchant", "add", "MB3", "--alg", "hmac-sha256", "--key-out", filepath.Join(dir, "mb3.pem")},
		"rotate bad alg":       {"keys", "rotate", "MA3", "--overlap", "1h", "--alg", "ED25519"},
		"rotate payer --alg":   {"keys", "rotate", "payer", "--overlap", "1h", "--alg", "ed25519"},
		"rotate platform alg":  {"keys", "rotate", "platform", "--overlap", "1h", "--alg", "ed25519"},
		"public key wrong alg": {"keys", "rotate", "MA3", "--overlap", "1h", "--alg", "ed25519", "--public-key", filepath.Join(devenv.MerchantDir(dir, "MA0"), "signing.pub.pem")},
	} {
		out, err := quillctl(t, dir, args...)
		if err == nil {
			t.Errorf("%s: accepted\n%s", name, out)
			continue
		}
		if strings.Contains(name, "bad alg") && !strings.Contains(err.Error(), algorithmList) {
			t.Errorf("%s: error does not list the algorithms: %v", name, err)
		}
	}
	for _, id := range []string{"MB1", "MB2", "MB3"} {
		if _, err := reg.Get(ctx, merchant.ID(id)); !errors.Is(err, merchant.ErrUnknown) {
			t.Errorf("%s registered: %v", id, err)
		}
		if _, err := os.Stat(devenv.MerchantDir(dir, id)); err == nil {
			t.Errorf("%s: dev material written", id)
		}
		if pubs, _ := ks.PublicKeys(ctx, id); len(pubs) != 0 {
			t.Errorf("%s: key ring written", id)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "mb3.pem")); err == nil {
		t.Error("bad --alg wrote the --key-out file")
	}
	ks.Reload()
	if ringAfter, _ := ks.PublicKeys(ctx, "MA3"); len(ringAfter) != len(ringBefore) {
		t.Errorf("refused rotations changed the ring: %d → %d versions", len(ringBefore), len(ringAfter))
	}
	if n := len(events(t, reg, "")); n != before {
		t.Errorf("refused commands wrote %d events", n-before)
	}
}
