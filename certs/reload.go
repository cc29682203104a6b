package certs

import (
	"crypto/tls"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// reloadEvery is the least time between two looks at a watched file.
const reloadEvery = time.Second

// Reloader serves a certificate and key pair from files and picks up a
// replaced pair without a restart: at most once a second, a handshake stats
// both files and, if either changed, loads the pair again. A pair that fails
// to load (say, the new certificate is written but not yet its key) leaves
// the last good pair in use, and is retried at the next check.
type Reloader struct {
	certFile, keyFile string
	now               func() time.Time

	cert      atomic.Pointer[tls.Certificate]
	lastCheck atomic.Int64 // UnixNano

	mu       sync.Mutex
	certSeen fs.FileInfo
	keySeen  fs.FileInfo
	lastErr  error
}

// NewReloader loads the pair from certFile and keyFile; it fails if they
// cannot be loaded now.
func NewReloader(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, now: time.Now}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	r.lastCheck.Store(r.now().UnixNano())
	return r, nil
}

// Reload loads the pair again now if either file changed; on error the last
// good pair stays and LastError returns the error.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastErr = r.reloadLocked()
	return r.lastErr
}

func (r *Reloader) reloadLocked() error {
	certFI, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	keyFI, err := os.Stat(r.keyFile)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if unchanged(r.certSeen, certFI) && unchanged(r.keySeen, keyFI) {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("certs: load %s: %w", r.certFile, err)
	}
	r.cert.Store(&pair)
	r.certSeen, r.keySeen = certFI, keyFI
	return nil
}

// unchanged reports whether b is the file a was, unmodified.
func unchanged(a, b fs.FileInfo) bool {
	return a != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// due reports whether a check is due at most once per reloadEvery; only one
// caller wins it.
func due(last *atomic.Int64, now time.Time) bool {
	n, l := now.UnixNano(), last.Load()
	d := n - l
	return (d < 0 || d >= int64(reloadEvery)) && last.CompareAndSwap(l, n)
}

func (r *Reloader) current() *tls.Certificate {
	if due(&r.lastCheck, r.now()) {
		_ = r.Reload() // kept in LastError; the last good pair serves
	}
	return r.cert.Load()
}

// LastError returns why the latest reload failed, or nil.
func (r *Reloader) LastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// GetCertificate is a tls.Config.GetCertificate for a server.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.current(), nil
}

// GetClientCertificate is a tls.Config.GetClientCertificate for a client.
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.current(), nil
}
