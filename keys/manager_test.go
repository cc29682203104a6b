package keys

import (
	"errors"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
)

func TestManagerCreateRotateRevoke(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	s := openStore(t, t.TempDir(), clk)
	m := Manager{Rings: s}

	if err := m.Rotate(ctx, "M1", edPublic(t, "k0"), time.Minute); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Rotate of a ring that does not exist: %v; want ErrNotFound", err)
	}
	if ks, _ := s.PublicKeys(ctx, "M1"); len(ks) != 0 {
		t.Fatalf("a refused rotation created a ring: %v", ks)
	}
	if err := m.Create(ctx, "M1", edPublic(t, "k1")); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, "M1", edPublic(t, "k1b")); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v; want ErrExists", err)
	}
	if err := m.Revoke(ctx, "M1", "k1", false); !errors.Is(err, ErrLastActive) {
		t.Fatalf("revoking the only active key: %v; want ErrLastActive", err)
	}
	if k := mustKey(t, s, "M1", "k1"); k.Status != Active {
		t.Fatalf("a refused revocation changed the key: %s", k.Status)
	}
	if err := m.Rotate(ctx, "M1", edPublic(t, "k2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// k1 is retiring now: revoking it leaves k2 active.
	if err := m.Revoke(ctx, "M1", "k1", false); err != nil {
		t.Fatalf("revoking a retiring key: %v", err)
	}
	if err := m.Revoke(ctx, "M1", "k2", false); !errors.Is(err, ErrLastActive) {
		t.Fatalf("revoking k2, the only active one: %v", err)
	}
	if err := m.Revoke(ctx, "M1", "k2", true); err != nil {
		t.Fatalf("forced revocation: %v", err)
	}
	if k := mustKey(t, s, "M1", "k2"); k.Status != Revoked {
		t.Fatalf("k2 = %s after forced revoke", k.Status)
	}
	if err := m.Revoke(ctx, "M1", "nope", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if err := m.Create(ctx, PlatformOwner, edPublic(t, "p")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Create for the platform ring: %v", err)
	}
}
