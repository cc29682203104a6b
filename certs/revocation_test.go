package certs

import (
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/fakeclock"
)

func serial(n int64) *x509.Certificate { return &x509.Certificate{SerialNumber: big.NewInt(n)} }

func TestParseRevocationList(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		revoked []int64
		clear   []int64
		wantErr bool
	}{
		{"empty", "", nil, []int64{0, 1}, false},
		{"comments and blanks", "# revoked\n\n  1a  \n# 1b\n", []int64{0x1a}, []int64{0x1b}, false},
		{"inline comment", "FF # lost laptop\n", []int64{0xff}, nil, false},
		{"case and leading zeros", "00aB\n0000000000000000000000000000000000000000000000000000000000000000000000000000000000000001\n", []int64{0xab, 1}, nil, false},
		{"crlf", "10\r\n20\r\n", []int64{0x10, 0x20}, nil, false},
		{"no final newline", "10\n20", []int64{0x10, 0x20}, nil, false},
		{"not hex", "xyz\n", nil, nil, true},
		{"negative", "-1\n", nil, nil, true},
		{"two per line", "1 2\n", nil, nil, true},
		{"colons", "01:02\n", nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRevocationList([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			for _, n := range tc.revoked {
				if _, ok := got[serialKey(big.NewInt(n))]; !ok {
					t.Fatalf("%x not revoked", n)
				}
			}
			for _, n := range tc.clear {
				if _, ok := got[serialKey(big.NewInt(n))]; ok {
					t.Fatalf("%x revoked", n)
				}
			}
		})
	}
}

func TestRevocationList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revoked.txt")
	clk := fakeclock.New(time.Now())
	l, err := LoadRevocationList(path) // missing: empty
	if err != nil {
		t.Fatal(err)
	}
	l.now = clk.Now
	l.lastCheck.Store(clk.Now().UnixNano())
	if l.IsRevoked(serial(7)) {
		t.Fatal("empty list revokes")
	}

	if err := RevokeSerial(path, big.NewInt(7)); err != nil {
		t.Fatal(err)
	}
	if l.IsRevoked(serial(7)) {
		t.Fatal("re-read before the check interval")
	}
	clk.Advance(time.Second)
	if !l.IsRevoked(serial(7)) || l.IsRevoked(serial(8)) {
		t.Fatal("revocation not picked up")
	}

	// An invalid file keeps the last good list in force.
	if err := writeFileAtomic(path, []byte("7\nnot hex\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if !l.IsRevoked(serial(7)) || l.LastError() == nil {
		t.Fatalf("invalid file: revoked %v, LastError %v", l.IsRevoked(serial(7)), l.LastError())
	}
	if err := RevokeSerial(path, big.NewInt(9)); err == nil {
		t.Fatal("RevokeSerial built on an invalid file")
	}
	// A deleted file also keeps it: un-revoking takes an edit, not an accident.
	os.Remove(path)
	clk.Advance(time.Second)
	if !l.IsRevoked(serial(7)) || l.LastError() == nil {
		t.Fatal("deleted file cleared the list")
	}
	if _, err := LoadRevocationList(t.TempDir()); err == nil {
		t.Fatal("LoadRevocationList accepted a directory")
	}
}

func TestRevokeSerial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revoked.txt")
	if err := os.WriteFile(path, []byte("# header\nAA"), 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- RevokeSerial(path, big.NewInt(int64(0x100+i))) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "# header\nAA\n") {
		t.Fatalf("existing content not kept: %q", b)
	}
	l, err := LoadRevocationList(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if !l.IsRevoked(serial(int64(0x100 + i))) {
			t.Fatalf("serial %x lost by a concurrent revocation", 0x100+i)
		}
	}
	if err := RevokeSerial(path, big.NewInt(-1)); err == nil {
		t.Fatal("revoked a negative serial")
	}
	if err := RevokeSerial(path, nil); err == nil {
		t.Fatal("revoked a nil serial")
	}
}

func FuzzParseRevocationList(f *testing.F) {
	f.Add([]byte("# comment\n1A\n\n00ff # x\r\n"))
	f.Add([]byte("-1\n"))
	f.Add([]byte("0x10\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseRevocationList(b)
		if err != nil {
			return
		}
		// Everything parsed must survive RevokeSerial's encoding.
		var out strings.Builder
		for k := range got {
			s, _ := new(big.Int).SetString(k, 16)
			fmt.Fprintf(&out, "%X\n", s)
		}
		again, err := parseRevocationList([]byte(out.String()))
		if err != nil || len(again) != len(got) {
			t.Fatalf("re-encoded list: %v, %d of %d serials", err, len(again), len(got))
		}
	})
}
