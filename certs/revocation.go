package certs

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quillpay/quill/internal/atomicfile"
)

// RevocationList is the set of revoked certificate serial numbers, read
// from a file of hex serials (one per line; '#' starts a comment) and
// re-read, at most once a second, when the file changes. If the file
// becomes unreadable or invalid the last good list stays in force and
// LastError says why.
//
// Serials are matched without regard to issuer: that is sound while one CA
// issues all client certificates, which is the dev setup. CRL/OCSP support
// is future work.
type RevocationList struct {
	path string
	now  func() time.Time

	serials   atomic.Pointer[map[string]struct{}]
	lastCheck atomic.Int64 // UnixNano

	mu      sync.Mutex
	seen    fs.FileInfo
	lastErr error
}

// LoadRevocationList reads the list at path; a missing file is an empty list
// (and is picked up once created).
func LoadRevocationList(path string) (*RevocationList, error) {
	l := &RevocationList{path: path, now: time.Now}
	l.serials.Store(&map[string]struct{}{})
	if err := l.Reload(); err != nil {
		return nil, err
	}
	l.lastCheck.Store(l.now().UnixNano())
	return l, nil
}

// Reload re-reads the file now if it changed; on error the last good list
// stays and LastError returns the error.
func (l *RevocationList) Reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = l.reloadLocked()
	return l.lastErr
}

func (l *RevocationList) reloadLocked() error {
	f, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) && l.seen == nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("certs: revocation list: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("certs: revocation list: %w", err)
	}
	if unchanged(l.seen, fi) {
		return nil
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return fmt.Errorf("certs: revocation list: %w", err)
	}
	serials, err := parseRevocationList(b)
	if err != nil {
		return err
	}
	l.serials.Store(&serials)
	l.seen = fi
	return nil
}

// parseRevocationList parses the file format: one hex serial per line,
// blank lines and '#' comments ignored.
func parseRevocationList(b []byte) (map[string]struct{}, error) {
	serials := map[string]struct{}{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		s, ok := new(big.Int).SetString(line, 16)
		if !ok || s.Sign() < 0 {
			return nil, fmt.Errorf("certs: revocation list line %d: not a hex serial", n)
		}
		serials[serialKey(s)] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("certs: revocation list: %w", err)
	}
	return serials, nil
}

func serialKey(s *big.Int) string { return s.Text(16) }

// IsRevoked reports whether c's serial number is on the list.
func (l *RevocationList) IsRevoked(c *x509.Certificate) bool {
	if due(&l.lastCheck, l.now()) {
		_ = l.Reload() // kept in LastError; the last good list applies
	}
	_, revoked := (*l.serials.Load())[serialKey(c.SerialNumber)]
	return revoked
}

// LastError returns why the latest reload failed, or nil.
func (l *RevocationList) LastError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// RevokeSerial adds serial to the revocation list at path, creating it. The
// file is replaced atomically (temporary file, fsync, rename) under an
// exclusive lock on path+".lock", so a running server never reads half a
// line and concurrent revocations are not lost.
func RevokeSerial(path string, serial *big.Int) error {
	if serial == nil || serial.Sign() < 0 {
		return errors.New("certs: invalid serial")
	}
	unlock, err := atomicfile.Lock(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("certs: revocation list: %w", err)
	}
	if _, err := parseRevocationList(old); err != nil {
		return err // never build on a file the server cannot read
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	return writeFileAtomic(path, fmt.Appendf(old, "%X\n", serial), 0o644)
}

// writeFileAtomic replaces path with data (mode perm); see atomicfile.Write.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := atomicfile.Write(path, data, perm); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
