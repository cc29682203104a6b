package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
)

var ctx = context.Background()

func openStore(tb testing.TB, dir string, clk *fakeclock.Clock) *FileStore {
	tb.Helper()
	s, err := OpenFileStore(dir, FileOptions{Now: clk.Now, ReloadEvery: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func edPublic(tb testing.TB, id string) PublicKey {
	tb.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return PublicKey{ID: id, Public: pub}
}

func edPlatform(tb testing.TB, id string) PrivateKey {
	tb.Helper()
	k, err := Generate(Ed25519, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return NewPrivateKey(id, Ed25519, k)
}

func mustKey(tb testing.TB, s *FileStore, owner, id string) PublicKey {
	tb.Helper()
	k, err := s.PublicKey(ctx, owner, id)
	if err != nil {
		tb.Fatalf("PublicKey(%s, %s): %v", owner, id, err)
	}
	return k
}

func ids(ks []PublicKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.ID)
	}
	return out
}

func TestFileStoreAddLookup(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, dir, clk)
	k := edPublic(t, "K1")
	if err := s.AddPublicKey(ctx, "M100", k); err != nil {
		t.Fatal(err)
	}
	got := mustKey(t, s, "M100", "K1")
	if got.Owner != "M100" || got.Algorithm != Ed25519 || got.Status != Active || !got.CreatedAt.Equal(clk.Now()) {
		t.Fatalf("stored key = %+v", got)
	}
	samePub(t, got.Public, k.Public)

	pub, alg, err := s.VerifyingKey(ctx, "M100", "K1", clk.Now())
	if err != nil || alg != Ed25519 {
		t.Fatalf("VerifyingKey = %v, %v", alg, err)
	}
	samePub(t, pub, k.Public)

	for _, tc := range []struct{ name, owner, id string }{
		{"unknown id", "M100", "K2"},
		{"unknown owner", "M200", "K1"},
		{"other owner's id", PayerOwner, "K1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.PublicKey(ctx, tc.owner, tc.id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("PublicKey = %v, want ErrNotFound", err)
			}
			if _, _, err := s.VerifyingKey(ctx, tc.owner, tc.id, clk.Now()); !errors.Is(err, ErrNotFound) {
				t.Fatalf("VerifyingKey = %v, want ErrNotFound", err)
			}
		})
	}

	if err := s.AddPublicKey(ctx, "M100", edPublic(t, "K1")); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate id: %v, want ErrExists", err)
	}
	for _, tc := range []struct {
		name  string
		owner string
		key   PublicKey
	}{
		{"platform owner", PlatformOwner, edPublic(t, "P1")},
		{"bad owner", "M 1", edPublic(t, "K9")},
		{"bad id", "M100", edPublic(t, "K 9")},
		{"owner mismatch", "M100", PublicKey{ID: "K9", Owner: "M200", Public: k.Public}},
		{"algorithm mismatch", "M100", PublicKey{ID: "K9", Algorithm: RSAPKCS1SHA256, Public: k.Public}},
		{"bad status", "M100", PublicKey{ID: "K9", Status: "paused", Public: k.Public}},
		{"no key", "M100", PublicKey{ID: "K9"}},
	} {
		t.Run("reject/"+tc.name, func(t *testing.T) {
			if err := s.AddPublicKey(ctx, tc.owner, tc.key); err == nil {
				t.Fatal("added, want error")
			}
		})
	}

	fi, err := os.Stat(filepath.Join(dir, KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring mode %v, want 0600", fi.Mode().Perm())
	}
	// A fresh store (a restarted server) sees exactly what was persisted.
	s2 := openStore(t, dir, clk)
	if all, _ := s2.PublicKeys(ctx, "M100"); !slices.Equal(ids(all), []string{"K1"}) {
		t.Fatalf("reopened store has %v", ids(all))
	}
}

func TestVerifyingKeyStatus(t *testing.T) {
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	t0 := clk.Now()
	end := t0.Add(time.Hour)
	for _, tc := range []struct {
		name     string
		status   Status
		notAfter time.Time
		at       time.Time
		wantErr  error
	}{
		{"active", Active, time.Time{}, t0, nil},
		{"active ignores not_after", Active, t0, end, nil},
		{"retiring before not_after", Retiring, end, end.Add(-time.Nanosecond), nil},
		{"retiring at not_after", Retiring, end, end, ErrRevoked},
		{"retiring after not_after", Retiring, end, end.Add(time.Second), ErrRevoked},
		{"retiring without end", Retiring, time.Time{}, end.Add(1000 * time.Hour), nil},
		{"revoked", Revoked, time.Time{}, t0, ErrRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), clk)
			if err := s.AddPublicKey(ctx, "M1", edPublic(t, "K1")); err != nil {
				t.Fatal(err)
			}
			if err := (Manager{s}).SetStatus(ctx, "M1", "K1", tc.status, tc.notAfter); err != nil {
				t.Fatal(err)
			}
			_, _, err := s.VerifyingKey(ctx, "M1", "K1", tc.at)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("VerifyingKey = %v, want %v", err, tc.wantErr)
			}
			k := mustKey(t, s, "M1", "K1")
			if k.Status != tc.status || !k.NotAfter.Equal(tc.notAfter) {
				t.Fatalf("stored %s until %v", k.Status, k.NotAfter)
			}
		})
	}
}

func TestSetStatusErrors(t *testing.T) {
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, t.TempDir(), clk)
	if err := s.AddPublicKey(ctx, "M1", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	if err := (Manager{s}).SetStatus(ctx, "M1", "nope", Revoked, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := (Manager{s}).SetStatus(ctx, "M1", "K1", "paused", time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
	if err := (Manager{s}).SetStatus(ctx, "M1", "K1", Revoked, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []Status{Active, Retiring} {
		if err := (Manager{s}).SetStatus(ctx, "M1", "K1", st, time.Time{}); !errors.Is(err, ErrRevoked) {
			t.Fatalf("reinstating as %s: %v, want ErrRevoked", st, err)
		}
	}
	if k := mustKey(t, s, "M1", "K1"); k.Status != Revoked {
		t.Fatalf("status %s after refused reinstatement", k.Status)
	}
}

func TestRotateOverlap(t *testing.T) {
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, t.TempDir(), clk)
	if err := s.AddPublicKey(ctx, "M1", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	rotatedAt := clk.Now()
	if err := (Manager{s}).Rotate(ctx, "M1", edPublic(t, "K2"), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	all, _ := s.PublicKeys(ctx, "M1")
	if !slices.Equal(ids(all), []string{"K2", "K1"}) {
		t.Fatalf("PublicKeys = %v, want newest first", ids(all))
	}
	old := mustKey(t, s, "M1", "K1")
	if old.Status != Retiring || !old.NotAfter.Equal(rotatedAt.Add(10*time.Minute)) {
		t.Fatalf("old key %s until %v", old.Status, old.NotAfter)
	}
	for _, tc := range []struct {
		name    string
		id      string
		at      time.Duration
		wantErr error
	}{
		{"old key during overlap", "K1", 9*time.Minute + 59*time.Second, nil},
		{"old key at end of overlap", "K1", 10 * time.Minute, ErrRevoked},
		{"new key at once", "K2", 0, nil},
		{"new key later", "K2", 24 * time.Hour, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.VerifyingKey(ctx, "M1", tc.id, rotatedAt.Add(tc.at))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("VerifyingKey = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if err := (Manager{s}).Rotate(ctx, PlatformOwner, edPublic(t, "P"), 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Rotate(platform) = %v, want ErrInvalid", err)
	}
	if err := (Manager{s}).Rotate(ctx, "M1", edPublic(t, "K3"), -time.Second); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative overlap = %v, want ErrInvalid", err)
	}
}

func TestRotateRollsBack(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, dir, clk)
	if err := s.AddPublicKey(ctx, "M1", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPlatformKey(ctx, edPlatform(t, "P1")); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	diskFull := errors.New("disk full")
	s.writeFile = func(string, []byte, os.FileMode) error { return diskFull }

	for _, tc := range []struct {
		name string
		op   func() error
		want error
	}{
		{"persist fails", func() error { return Manager{s}.Rotate(ctx, "M1", edPublic(t, "K2"), time.Hour) }, diskFull},
		{"platform persist fails", func() error { return s.RotatePlatform(ctx, edPlatform(t, "P2"), time.Hour) }, diskFull},
		{"duplicate new id", func() error { return Manager{s}.Rotate(ctx, "M1", edPublic(t, "K1"), time.Hour) }, ErrExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if k := mustKey(t, s, "M1", "K1"); k.Status != Active || !k.NotAfter.IsZero() {
				t.Fatalf("in memory K1 is %s until %v after a failed rotation", k.Status, k.NotAfter)
			}
			if p, err := s.PlatformKey(ctx); err != nil || p.ID() != "P1" {
				t.Fatalf("PlatformKey = %v, %v", p.ID(), err)
			}
			after, _ := os.ReadFile(filepath.Join(dir, KeyringFile))
			if !bytes.Equal(before, after) {
				t.Fatal("keyring file changed by a failed rotation")
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) > 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
}

func TestPlatformKeys(t *testing.T) {
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, t.TempDir(), clk)
	if _, err := s.PlatformKey(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store PlatformKey = %v, want ErrNotFound", err)
	}
	p1, p2, p3 := edPlatform(t, "P1"), edPlatform(t, "P2"), edPlatform(t, "P3")
	if err := s.AddPlatformKey(ctx, p1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := s.AddPlatformKey(ctx, p2); err != nil {
		t.Fatal(err)
	}
	wantSigner := func(want PrivateKey) {
		t.Helper()
		got, err := s.PlatformKey(ctx)
		if err != nil || got.ID() != want.ID() || got.Algorithm() != Ed25519 {
			t.Fatalf("PlatformKey = %v, %v; want %s", got, err, want.ID())
		}
		msg := []byte("TS\nNONCE\nBODY\n")
		sig, err := got.Signer().Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		pub, _, err := s.VerifyingKey(ctx, PlatformOwner, got.ID(), clk.Now())
		if err != nil || !ed25519.Verify(pub.(ed25519.PublicKey), msg, sig) {
			t.Fatalf("published key does not verify the platform signature: %v", err)
		}
	}
	wantPublished := func(want ...string) {
		t.Helper()
		got, err := s.PlatformPublicKeys(ctx)
		if err != nil || !slices.Equal(ids(got), want) {
			t.Fatalf("PlatformPublicKeys = %v, %v; want %v", ids(got), err, want)
		}
	}
	wantSigner(p2)
	wantPublished("P2", "P1")

	clk.Advance(time.Second)
	if err := s.RotatePlatform(ctx, p3, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	wantSigner(p3)
	wantPublished("P3", "P2", "P1")
	clk.Advance(5 * time.Minute)
	wantPublished("P3")

	if err := s.AddPlatformKey(ctx, p3); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate platform key: %v", err)
	}
	if err := s.AddPlatformKey(ctx, NewPrivateKey("P9", Ed25519, nil)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("platform key without signer: %v", err)
	}
	if err := (Manager{s}).SetStatus(ctx, PlatformOwner, "P3", Revoked, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PlatformKey(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("PlatformKey with every key retired or revoked = %v, want ErrNotFound", err)
	}
	wantPublished()
}

func TestSecondInstancePicksUpChanges(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	server := openStore(t, dir, clk) // the running server
	cli := openStore(t, dir, clk)    // quillctl
	if err := cli.AddPublicKey(ctx, "M1", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	if _, err := server.PublicKey(ctx, "M1", "K1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before the reload interval: %v, want ErrNotFound (no disk I/O per read)", err)
	}
	clk.Advance(time.Second)
	mustKey(t, server, "M1", "K1")

	if err := (Manager{cli}).Rotate(ctx, "M1", edPublic(t, "K2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := cli.AddPlatformKey(ctx, edPlatform(t, "P1")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if k := mustKey(t, server, "M1", "K1"); k.Status != Retiring {
		t.Fatalf("server sees K1 as %s after rotation", k.Status)
	}
	mustKey(t, server, "M1", "K2")
	if p, err := server.PlatformKey(ctx); err != nil || p.ID() != "P1" {
		t.Fatalf("server PlatformKey = %v, %v", p, err)
	}
	// The server's own writes build on the file, not on its snapshot.
	if err := server.AddPublicKey(ctx, "M2", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	mustKey(t, cli, "M2", "K1")
	mustKey(t, cli, "M1", "K2")
}

func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	a, b := openStore(t, dir, clk), openStore(t, dir, clk)
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		for name, s := range map[string]*FileStore{"A": a, "B": b} {
			wg.Go(func() {
				errs <- s.AddPublicKey(ctx, "M1", edPublic(t, fmt.Sprintf("%s%d", name, i)))
				_, _ = s.PublicKeys(ctx, "M1") // concurrent reads, for -race
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	for _, s := range []*FileStore{a, b, openStore(t, dir, clk)} {
		if all, _ := s.PublicKeys(ctx, "M1"); len(all) != 2*n {
			t.Fatalf("%v has %d keys, want %d (a write was lost)", s, len(all), 2*n)
		}
	}
}

func TestInvalidFileKeepsLastGood(t *testing.T) {
	p1 := edPlatform(t, "P1")
	goodRecord := func(tb testing.TB) record {
		r, err := newPlatformRecord(PlatformOwner, p1, time.Unix(0, 0))
		if err != nil {
			tb.Fatal(err)
		}
		return r
	}
	noPriv := goodRecord(t)
	noPriv.PrivateKeyPEM = ""
	mismatch := goodRecord(t)
	mismatch.PublicKeyPEM = string(readTestdata(t, "test-key-ed25519.pub.pem"))
	badAlg := goodRecord(t)
	badAlg.Algorithm = ECDSAP256SHA256
	privOnMerchant := goodRecord(t)
	encode := func(owner string, r record) string {
		r.Version = 1
		b, err := encodeDocument(&document{Version: keyringVersion, Rings: map[string]*Ring{owner: {owner: owner, min: 1, recs: []record{r}}}})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	for _, tc := range []struct {
		name    string
		content string // "" deletes the file
	}{
		{"garbage", "{not json"},
		{"unknown field", `{"version":1,"owners":{},"extra":true}`},
		{"wrong version", `{"version":3,"rings":{}}`},
		{"version 2 with version 1 owners", `{"version":2,"owners":{}}`},
		{"min_version above latest", `{"version":2,"rings":{"M1":{"min_version":2,"versions":[]}}}`},
		{"versions out of order", strings.Replace(strings.Replace(encode(PlatformOwner, goodRecord(t)), `"version": 1,`, `"version": 0,`, 1), `"version": 2`, `"version": 2`, 1)},
		{"trailing data", `{"version":1,"owners":{}} {}`},
		{"bad public key", `{"version":1,"owners":{"M1":[{"id":"K1","algorithm":"ed25519","status":"active","public_key_pem":"x"}]}}`},
		{"bad status", strings.Replace(encode(PlatformOwner, goodRecord(t)), `"active"`, `"paused"`, 1)},
		{"platform key without private key", encode(PlatformOwner, noPriv)},
		{"private key not matching", encode(PlatformOwner, mismatch)},
		{"algorithm not matching", encode(PlatformOwner, badAlg)},
		{"private key on a merchant", encode("M1", privOnMerchant)},
		{"file deleted", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			s := openStore(t, dir, clk)
			if err := s.AddPlatformKey(ctx, p1); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, KeyringFile)
			good, _ := os.ReadFile(path)
			if tc.content == "" {
				os.Remove(path)
			} else if err := writeFileAtomic(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Second)
			if p, err := s.PlatformKey(ctx); err != nil || p.ID() != "P1" {
				t.Fatalf("PlatformKey = %v, %v; want the last good P1", p, err)
			}
			lastErr := s.Ready(ctx)
			if lastErr == nil {
				t.Fatal("LastError = nil for an invalid file")
			}
			if strings.Contains(lastErr.Error(), "PRIVATE KEY") {
				t.Fatalf("LastError quotes key material: %v", lastErr)
			}
			if _, err := OpenFileStore(dir, FileOptions{Now: clk.Now}); tc.content != "" && err == nil {
				t.Fatal("OpenFileStore accepted an invalid keyring")
			}
			if tc.content != "" {
				if err := s.AddPublicKey(ctx, "M1", edPublic(t, "K1")); err == nil {
					t.Fatal("a writer overwrote an invalid keyring")
				}
			}
			// Repairing the file clears the error.
			if err := writeFileAtomic(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Second)
			if _, err := s.PlatformKey(ctx); err != nil || s.Ready(ctx) != nil {
				t.Fatalf("after repair: %v, LastError %v", err, s.Ready(ctx))
			}
		})
	}
}

func TestKeysNotPrintable(t *testing.T) {
	dir := t.TempDir()
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, dir, clk)
	k := edPlatform(t, "P1")
	if err := s.AddPlatformKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := s.PlatformKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	priv := []byte(k.Signer().(ed25519.PrivateKey))
	showsKey := func(out string) bool {
		for _, form := range []string{"PRIVATE KEY", fmt.Sprint(priv[:8])[1:20], fmt.Sprintf("%x", priv[:8]), fmt.Sprintf("%#v", priv[:4])[7:20]} {
			if strings.Contains(out, form) {
				return true
			}
		}
		return false
	}
	// The detector itself must catch a bare signer in an unexported field.
	if !showsKey(fmt.Sprintf("%+v", struct{ s crypto.Signer }{k.Signer()})) {
		t.Fatal("leak detector misses a printed ed25519 key")
	}
	type holder struct {
		key PrivateKey // unexported: fmt cannot call Format on it
		Key PrivateKey
	}
	for _, v := range []any{k, got, &got, s, holder{got, got}, []PrivateKey{got}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			if out := fmt.Sprintf(verb, v); showsKey(out) {
				t.Fatalf("%s of %T shows key material: %.200s", verb, v, out)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(got), "P1") {
		t.Fatalf("printed key %q does not name its id", fmt.Sprint(got))
	}
}

func BenchmarkVerifyingKey(b *testing.B) {
	s, err := OpenFileStore(b.TempDir(), FileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		if err := s.AddPublicKey(ctx, fmt.Sprintf("M%d", i), edPublic(b, "K1")); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.VerifyingKey(ctx, "M42", "K1", now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func FuzzDecodeKeyring(f *testing.F) {
	r, err := newPlatformRecord(PlatformOwner, NewPrivateKey("P1", Ed25519, mustParse(f, "test-key-ed25519.key.pem")), time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	r.Version = 1
	good, _ := encodeDocument(&document{Version: keyringVersion, Rings: map[string]*Ring{PlatformOwner: {owner: PlatformOwner, min: 1, recs: []record{r}}}})
	f.Add(good)
	f.Add([]byte(`{"version":2,"rings":{"M1":{"min_version":2,"versions":[{"version":1,"id":"K1","algorithm":"ed25519","status":"active","public_key_pem":""}]}}}`))
	f.Add([]byte(`{"version":1,"owners":{"M1":[{"id":"K1","algorithm":"rsa-v1_5-sha256","status":"retiring","public_key_pem":"","created_at":"2025-01-01T00:00:00Z","not_after":"2025-01-02T00:00:00Z"}]}}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := decodeDocument(b)
		if err != nil {
			return
		}
		snap, err := buildSnapshot(doc)
		if err != nil {
			return
		}
		for owner, ok := range snap.owners {
			if len(ok.byID) != len(ok.newestFirst) {
				t.Fatalf("%s: %d ids for %d keys", owner, len(ok.byID), len(ok.newestFirst))
			}
			if owner == PlatformOwner && ok.platform.Signer() != nil && ok.platform.Algorithm() == "" {
				t.Fatal("platform key without algorithm")
			}
		}
	})
}

func mustParse(tb testing.TB, name string) crypto.Signer {
	tb.Helper()
	k, err := ParsePrivateKeyPEM(readTestdata(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
