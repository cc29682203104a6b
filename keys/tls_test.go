package keys

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pemBlock(typ string) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: []byte("not really DER")})
}

func TestTLSItemValidate(t *testing.T) {
	cert, key, crl := pemBlock("CERTIFICATE"), pemBlock("PRIVATE KEY"), pemBlock("X509 CRL")
	for _, tc := range []struct {
		name string
		it   TLSItem
		ok   bool
	}{
		{"server", TLSItem{Name: TLSServer, CertificatePEM: append(cert, cert...), PrivateKeyPEM: key}, true},
		{"issuer", TLSItem{Name: TLSIssuer, CertificatePEM: cert, PrivateKeyPEM: key}, true},
		{"bundle", TLSItem{Name: TLSClientCA, BundlePEM: append(cert, cert...)}, true},
		{"crl", TLSItem{Name: TLSCRL, CRLPEM: crl}, true},
		{"server without key", TLSItem{Name: TLSServer, CertificatePEM: cert}, false},
		{"two keys", TLSItem{Name: TLSServer, CertificatePEM: cert, PrivateKeyPEM: append(key, key...)}, false},
		{"key in the bundle item", TLSItem{Name: TLSClientCA, BundlePEM: cert, PrivateKeyPEM: key}, false},
		{"key as bundle", TLSItem{Name: TLSClientCA, BundlePEM: key}, false},
		{"crl not PEM", TLSItem{Name: TLSCRL, CRLPEM: []byte("junk")}, false},
		{"trailing junk", TLSItem{Name: TLSCRL, CRLPEM: append(crl, "junk"...)}, false},
		{"unknown item", TLSItem{Name: "other", CRLPEM: crl}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.it.Validate()
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestFileStoreTLS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenFileStore(dir, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TLSItem(ctx, TLSServer); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty store: %v", err)
	}
	cert, key := pemBlock("CERTIFICATE"), pemBlock("PRIVATE KEY")
	if err := s.EditTLS(ctx, TLSServer, func(it *TLSItem, _ time.Time) error {
		it.CertificatePEM, it.PrivateKeyPEM = cert, key
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	it, err := s.TLSItem(ctx, TLSServer)
	if err != nil || string(it.CertificatePEM) != string(cert) || string(it.PrivateKeyPEM) != string(key) || it.UpdatedAt.IsZero() {
		t.Fatalf("read back: %v %+v", err, it)
	}
	fi, err := os.Stat(filepath.Join(dir, "tls", "server.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("item file: %v mode %v", err, fi.Mode())
	}
	// The key never prints, in fmt or JSON.
	js, _ := json.Marshal(it)
	for _, out := range []string{fmt.Sprint(it), fmt.Sprintf("%+v", it), fmt.Sprintf("%#v", it), string(js)} {
		if strings.Contains(out, "PRIVATE KEY") || !strings.Contains(out, "REDACTED") {
			t.Fatalf("printed item shows the key: %.300s", out)
		}
	}
	// Invalid changes write nothing; change errors pass through.
	boom := errors.New("boom")
	for name, change := range map[string]func(*TLSItem, time.Time) error{
		"invalid": func(it *TLSItem, _ time.Time) error { it.PrivateKeyPEM = nil; return nil },
		"failing": func(*TLSItem, time.Time) error { return boom },
	} {
		if err := s.EditTLS(ctx, TLSServer, change); err == nil {
			t.Fatalf("%s change accepted", name)
		}
	}
	if got, _ := s.TLSItem(ctx, TLSServer); string(got.PrivateKeyPEM) != string(key) {
		t.Fatal("a refused change altered the item")
	}
	if err := s.EditTLS(ctx, "nope", func(*TLSItem, time.Time) error { return nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown item: %v", err)
	}
	// A hand-broken file is refused on read (the server keeps the last good).
	os.WriteFile(filepath.Join(dir, "tls", "server.json"), []byte(`{"format":1,"name":"server","certificate_pem":"x"}`), 0o600)
	if _, err := s.TLSItem(ctx, TLSServer); !errors.Is(err, ErrInvalid) {
		t.Fatalf("broken file: %v", err)
	}
	// ImportTLS copies what the target lacks and leaves the rest alone.
	to, err := OpenFileStore(t.TempDir(), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.EditTLS(ctx, TLSCRL, func(it *TLSItem, _ time.Time) error { it.CRLPEM = pemBlock("X509 CRL"); return nil })
	if _, err := ImportTLS(ctx, s, to); !errors.Is(err, ErrInvalid) {
		t.Fatalf("import of a broken item: %v", err)
	}
	os.Remove(filepath.Join(dir, "tls", "server.json"))
	copied, err := ImportTLS(ctx, s, to)
	if err != nil || len(copied) != 1 || copied[0] != TLSCRL {
		t.Fatalf("import: %v %v", copied, err)
	}
	if copied, err := ImportTLS(ctx, s, to); err != nil || len(copied) != 0 {
		t.Fatalf("second import: %v %v", copied, err)
	}
}
