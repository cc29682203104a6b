package vault

import (
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/vaulttest"
	"github.com/quillpay/quill/keys"
)

// TLS items round-trip through the real Vault, and two concurrent edits of
// one item conflict rather than overwrite.
func TestTLSItems(t *testing.T) {
	v := vaulttest.Shared(t)
	s := openStore(t, v.Addr, v.RootToken, vaulttest.Prefix(), nil)
	crl := func(b string) []byte { return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte(b)}) }
	if _, err := s.TLSItem(bg, keys.TLSCRL); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("absent item: %v", err)
	}
	if err := s.EditTLS(bg, keys.TLSCRL, func(it *keys.TLSItem, _ time.Time) error { it.CRLPEM = crl("one"); return nil }); err != nil {
		t.Fatal(err)
	}
	it, err := s.TLSItem(bg, keys.TLSCRL)
	if err != nil || string(it.CRLPEM) != string(crl("one")) {
		t.Fatalf("read back: %v %q", err, it.CRLPEM)
	}
	if err := s.EditTLS(bg, keys.TLSCRL, func(it *keys.TLSItem, _ time.Time) error { it.CRLPEM = []byte("junk"); return nil }); !errors.Is(err, keys.ErrInvalid) {
		t.Fatalf("invalid item written: %v", err)
	}
	errB := errors.New("unset")
	errA := s.EditTLS(bg, keys.TLSCRL, func(it *keys.TLSItem, _ time.Time) error {
		errB = s.EditTLS(bg, keys.TLSCRL, func(it *keys.TLSItem, _ time.Time) error { it.CRLPEM = crl("B"); return nil })
		it.CRLPEM = crl("A")
		return nil
	})
	if errB != nil || !errors.Is(errA, keys.ErrConflict) {
		t.Fatalf("concurrent edits: A %v, B %v; want A to conflict", errA, errB)
	}
	if it, _ := s.TLSItem(bg, keys.TLSCRL); string(it.CRLPEM) != string(crl("B")) {
		t.Fatalf("after the race: %q", it.CRLPEM)
	}
}
