package keys

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
)

func TestRingVersions(t *testing.T) {
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, t.TempDir(), clk)
	m := Manager{s}
	if err := m.AddPublicKey(ctx, "M1", edPublic(t, "K1")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	rotatedAt := clk.Now()
	if err := m.Rotate(ctx, "M1", edPublic(t, "K2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := m.Rotate(ctx, "M1", edPublic(t, "K3"), time.Hour); err != nil {
		t.Fatal(err)
	}
	all, _ := s.PublicKeys(ctx, "M1")
	if got := ids(all); strings.Join(got, ",") != "K3,K2,K1" {
		t.Fatalf("keys newest first = %v", got)
	}
	for i, want := range []int{3, 2, 1} {
		if all[i].Version != want {
			t.Errorf("%s has version %d, want %d", all[i].ID, all[i].Version, want)
		}
	}
	k1 := mustKey(t, s, "M1", "K1")
	if !k1.RotatedAt.Equal(rotatedAt) || k1.Status != Retiring {
		t.Fatalf("K1 after rotation: status %s, rotated at %s; want retiring since %s", k1.Status, k1.RotatedAt, rotatedAt)
	}
	if k3 := mustKey(t, s, "M1", "K3"); !k3.RotatedAt.IsZero() || k3.Status != Active {
		t.Fatalf("K3: %+v, want active and never rotated", k3)
	}

	// min_version: versions below it are refused, and it only moves forward.
	if err := m.SetMinVersion(ctx, "M1", 2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.VerifyingKey(ctx, "M1", "K1", clk.Now()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("K1 below min_version verifies: %v", err)
	}
	if _, _, err := s.VerifyingKey(ctx, "M1", "K2", clk.Now()); err != nil {
		t.Fatalf("K2 at min_version refused: %v", err)
	}
	for _, tc := range []struct {
		v    int
		want error
	}{{1, ErrRevoked}, {4, ErrInvalid}, {0, ErrRevoked}} {
		if err := m.SetMinVersion(ctx, "M1", tc.v); !errors.Is(err, tc.want) {
			t.Errorf("SetMinVersion(%d) = %v, want %v", tc.v, err, tc.want)
		}
	}
	if err := m.SetMinVersion(ctx, "NOBODY", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetMinVersion on an empty ring = %v, want ErrNotFound", err)
	}
	if err := m.SetStatus(ctx, "M1", "K1", Active, time.Time{}); !errors.Is(err, ErrRevoked) {
		t.Errorf("reinstating a version below min_version = %v, want ErrRevoked", err)
	}
	// An id stays taken after it is refused; the version counter never reuses.
	if err := m.AddPublicKey(ctx, "M1", edPublic(t, "K1")); !errors.Is(err, ErrExists) {
		t.Errorf("re-adding K1 = %v, want ErrExists", err)
	}
	if err := m.AddPublicKey(ctx, "M1", edPublic(t, "K4")); err != nil {
		t.Fatal(err)
	}
	if k := mustKey(t, s, "M1", "K4"); k.Version != 4 {
		t.Errorf("K4 has version %d, want 4", k.Version)
	}
}

func TestRingJSONRoundTrip(t *testing.T) {
	clk := fakeclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, t.TempDir(), clk)
	if err := s.AddPlatformKey(ctx, edPlatform(t, "P1")); err != nil {
		t.Fatal(err)
	}
	if err := s.RotatePlatform(ctx, edPlatform(t, "P2"), time.Hour); err != nil {
		t.Fatal(err)
	}
	rings, err := s.LoadRings(ctx)
	if err != nil || len(rings) != 1 {
		t.Fatalf("LoadRings = %v, %v", rings, err)
	}
	b, err := rings[0].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRing(PlatformOwner, b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Latest() != 2 || back.MinVersion() != 1 {
		t.Fatalf("decoded ring: latest %d, min %d", back.Latest(), back.MinVersion())
	}
	ks, _ := back.Keys()
	if ids(ks)[0] != "P2" || ks[0].Status != Active || ks[1].Status != Retiring {
		t.Fatalf("decoded keys %+v", ks)
	}
	if _, err := DecodeRing("bad owner!", b); !errors.Is(err, ErrInvalid) {
		t.Fatalf("DecodeRing with a bad owner = %v", err)
	}
	if _, err := DecodeRing("M1", b); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a platform ring (with private keys) decoded as a merchant's: %v", err)
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", back, back, []*Ring{back}), "PRIVATE") {
		t.Fatal("a printed ring shows private key material")
	}
}

// A keyring written before versions were numbered (format 1) still opens,
// with versions in insertion order, and is rewritten as format 2.
func TestFileFormatOneStillReads(t *testing.T) {
	dir := t.TempDir()
	pub, err := MarshalPublicKeyPEM(edPublic(t, "x").Public)
	if err != nil {
		t.Fatal(err)
	}
	pub2, _ := MarshalPublicKeyPEM(edPublic(t, "x").Public)
	v1 := `{"version":1,"owners":{"M1":[` +
		`{"id":"K1","algorithm":"ed25519","status":"retiring","public_key_pem":` + quote(pub) + `,"created_at":"2025-01-01T00:00:00Z","not_after":"2030-01-01T00:00:00Z"},` +
		`{"id":"K2","algorithm":"ed25519","status":"active","public_key_pem":` + quote(pub2) + `,"created_at":"2025-01-02T00:00:00Z"}]}}`
	if err := os.WriteFile(filepath.Join(dir, KeyringFile), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := fakeclock.New(time.Date(2025, 1, 3, 0, 0, 0, 0, time.UTC))
	s := openStore(t, dir, clk)
	if k := mustKey(t, s, "M1", "K2"); k.Version != 2 || k.Status != Active {
		t.Fatalf("K2 from a format 1 file: %+v", k)
	}
	if err := (Manager{s}).Rotate(ctx, "M1", edPublic(t, "K3"), time.Hour); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, KeyringFile))
	if !strings.Contains(string(b), `"version": 2`) || !strings.Contains(string(b), `"min_version": 1`) {
		t.Fatalf("rewritten file is not format 2:\n%.300s", b)
	}
}

func quote(b []byte) string {
	return `"` + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", `\n`) + `\n"`
}

func FuzzDecodeRing(f *testing.F) {
	r, err := newPlatformRecord(PlatformOwner, NewPrivateKey("P1", Ed25519, mustParse(f, "test-key-ed25519.key.pem")), time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	r.Version = 1
	good, _ := (&Ring{owner: PlatformOwner, min: 1, recs: []record{r}}).MarshalJSON()
	f.Add(PlatformOwner, good)
	f.Add("M1", []byte(`{"min_version":1,"versions":[{"version":1,"id":"K1","algorithm":"ed25519","status":"active","public_key_pem":""}]}`))
	f.Add("M1", []byte(`{"min_version":0,"versions":[]}`))
	f.Fuzz(func(t *testing.T, owner string, b []byte) {
		ring, err := DecodeRing(owner, b)
		if err != nil {
			return
		}
		ks, err := ring.Keys()
		if err != nil {
			t.Fatalf("a decoded ring does not parse: %v", err)
		}
		if ring.MinVersion() < 1 || (len(ks) > 0 && ring.MinVersion() > ring.Latest()) {
			t.Fatalf("min_version %d outside 1..%d", ring.MinVersion(), ring.Latest())
		}
		again, err := ring.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRing(owner, again); err != nil {
			t.Fatalf("re-encoded ring does not decode: %v", err)
		}
	})
}

// TestPlatformEd25519Ring: the scheme B platform ring holds private keys like
// the RSA one, takes only Ed25519 or P-256, and is served apart from it.
func TestPlatformEd25519Ring(t *testing.T) {
	ctx := context.Background()
	s, err := OpenFileStore(t.TempDir(), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := Generate(RSAPKCS1SHA256, rand.Reader)
	edKey, _ := Generate(Ed25519, rand.Reader)
	if err := (Manager{s}).AddPlatformKeyTo(ctx, PlatformEd25519Owner, NewPrivateKey("PB-RSA", RSAPKCS1SHA256, rsaKey)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("RSA key in the Ed25519 ring: %v", err)
	}
	if err := s.AddPublicKey(ctx, PlatformEd25519Owner, PublicKey{ID: "X", Public: edKey.Public()}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("public-only key in a platform ring: %v", err)
	}
	if _, err := s.PlatformKeyOf(ctx, PlatformEd25519Owner); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty ring: %v", err)
	}
	if err := (Manager{s}).AddPlatformKeyTo(ctx, PlatformEd25519Owner, NewPrivateKey("PB-1", Ed25519, edKey)); err != nil {
		t.Fatal(err)
	}
	k, err := s.PlatformKeyOf(ctx, PlatformEd25519Owner)
	if err != nil || k.ID() != "PB-1" || k.Algorithm() != Ed25519 {
		t.Fatalf("got %v, %v", k, err)
	}
	if _, err := s.PlatformKey(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the RSA ring is separate: %v", err)
	}
	if _, err := s.PlatformKeyOf(ctx, "M100"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("merchant ring as platform: %v", err)
	}
}
