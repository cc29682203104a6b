package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/fakeclock"
	"github.com/quillpay/quill/internal/tlsadmin"
	"github.com/quillpay/quill/keys"
)

// TestSIGHUPReloads: with no refresh due (an hour-long interval, a clock
// that stands still), SIGHUP alone makes the server take the new server
// certificate and the new keys.
func TestSIGHUPReloads(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(time.Now())
	if err := devenv.Init(dir, clk.Now()); err != nil {
		t.Fatal(err)
	}
	fs, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := openTLS(ctx, servingKeys{keyStore: fs, tls: fs, reload: func(context.Context) error { return fs.Reload() }}, time.Hour, zerolog.Nop(), clk.Now)
	served := func() string {
		t.Helper()
		c, err := live.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.String()
	}
	before := served()

	// The operator's changes, from another process's view of the store.
	other, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlsadmin.RotateServer(ctx, other, devenv.ServerHosts, nil, nil, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	if err := other.AddPublicKey(ctx, "M1", keys.PublicKey{ID: "K1", Public: pub}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := fs.PublicKey(ctx, "M1", "K1"); err == nil || served() != before {
		t.Fatal("reloaded without a signal: the test proves nothing")
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for served() == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if served() == before {
		t.Fatal("SIGHUP did not reload the server certificate")
	}
	if _, err := fs.PublicKey(ctx, "M1", "K1"); err != nil {
		t.Fatalf("SIGHUP did not reload the keys: %v", err)
	}
	if err := live.Ready(ctx); err != nil {
		t.Fatal(err)
	}
}
