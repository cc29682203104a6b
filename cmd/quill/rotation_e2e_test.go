package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quillpay/quill/certs"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/tlsadmin"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/quillclient"
)

// fileStore opens the harness's dev key store, as quillctl does.
func (h *harness) fileStore() *keys.FileStore {
	h.t.Helper()
	fs, err := keys.OpenFileStore(filepath.Join(h.dir, "keys"), keys.FileOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return fs
}

// mtlsBase is a keep-alive mTLS transport for merchant that records the
// serial of every server certificate it handshakes with.
func (h *harness) mtlsBase(merchant string, seen *sync.Map) *http.Transport {
	cert := h.certs[merchant]
	return &http.Transport{
		MaxIdleConnsPerHost: 16,
		TLSClientConfig: &tls.Config{
			RootCAs: h.roots, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
			VerifyConnection: func(cs tls.ConnectionState) error {
				seen.Store(fmt.Sprintf("%X", cs.PeerCertificates[0].SerialNumber), true)
				return nil
			},
		},
	}
}

// quillClient is the public client library over base, signing as merchant
// with keyID and key, verifying every response.
func (h *harness) quillClient(base http.RoundTripper, merchant, keyID string, key crypto.Signer) *http.Client {
	h.t.Helper()
	tr, err := quillclient.NewTransport(quillclient.WithBase(base), quillclient.WithMerchant(merchant),
		quillclient.WithKeyID(keyID), quillclient.WithPrivateKey(key), quillclient.WithClock(h.clock.Now))
	if err != nil {
		h.t.Fatal(err)
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// pay sends one payment through c; it returns the status and the platform
// serial that signed the (verified) response.
func (h *harness) payWith(c *http.Client, token string) (int, string, error) {
	req, err := http.NewRequest("POST", h.base+"/v1/payments", bytes.NewReader(paymentBody(newOrderID(), "0.01", token)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	return res.StatusCode, res.Header.Get("Wechatpay-Serial"), nil
}

func serials(m *sync.Map) []string {
	var out []string
	m.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	return out
}

// TestRotationUnderLoad: while a merchant sends signed payments
// continuously, its key, the platform key and the server certificate are
// rotated. No request fails, every response signature verifies (the
// public client refuses any that does not), and once the overlap ends the
// old merchant key is refused.
func TestRotationUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ~16 s")
	}
	h := startServer(t)
	h.deposit("42", "100000.00")
	ctx := context.Background()
	fs := h.fileStore()
	const overlap = 10 * time.Minute

	var serverSerials sync.Map
	base := h.mtlsBase(demoMerchant, &serverSerials)
	old := h.clients[demoMerchant]
	oldClient := h.quillClient(base, demoMerchant, old.KeyID, old.Key)
	newKey := rsaKey(t)
	newID := keys.NewKeyID("", nil)
	newClient := h.quillClient(base, demoMerchant, newID, newKey)
	var current atomic.Pointer[http.Client]
	current.Store(oldClient)

	// The fake clock moves a second every 250 ms, so the server's file
	// store (which looks for changes once a clock second) sees each change.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				h.clock.Advance(time.Second)
			}
		}
	})
	var token atomic.Value
	token.Store(h.token("42"))
	var sent, failed, byNewKey atomic.Int64
	var platformSerials sync.Map
	var firstErr atomic.Value
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := current.Load()
				st, serial, err := h.payWith(c, token.Load().(string))
				sent.Add(1)
				if err != nil || st != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d, %v", st, err))
					continue
				}
				platformSerials.Store(serial, true)
				if c == newClient {
					byNewKey.Add(1)
				}
			}
		})
	}
	step := func(d time.Duration, what string, f func()) {
		time.Sleep(d)
		f()
		t.Logf("%s after %d requests", what, sent.Load())
	}
	var oldServer []string
	var newServerSerial string
	step(3*time.Second, "merchant key rotated", func() {
		if err := (keys.Manager{Rings: fs}).Rotate(ctx, demoMerchant, keys.PublicKey{ID: newID, Algorithm: keys.RSAPKCS1SHA256, Public: newKey.Public()}, overlap); err != nil {
			t.Error(err)
		}
	})
	// The merchant switches once the rotation is out (a few clock seconds).
	step(2*time.Second, "merchant switched to the new key", func() { current.Store(newClient) })
	var newPlatform string
	step(2*time.Second, "platform key rotated", func() {
		var err error
		if newPlatform, err = devenv.RotatePlatformKey(h.dir, overlap, h.clock.Now()); err != nil {
			t.Error(err)
		}
	})
	step(3*time.Second, "server certificate rotated", func() {
		oldServer = serials(&serverSerials)
		leaf, err := tlsadmin.RotateServer(ctx, fs, devenv.ServerHosts, nil, nil, time.Hour, h.clock.Now())
		if err != nil {
			t.Error(err)
			return
		}
		newServerSerial = fmt.Sprintf("%X", leaf.SerialNumber)
	})
	// Past one TLS refresh interval, new connections get the new
	// certificate; the open ones keep working until they are closed.
	step(2*time.Second, "idle connections closed", base.CloseIdleConnections)
	step(3*time.Second, "load stopped", func() { close(stop) })
	wg.Wait()

	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during rotation; first: %v", n, sent.Load(), firstErr.Load())
	}
	if sent.Load() < 30 || byNewKey.Load() == 0 {
		t.Fatalf("%d requests, %d with the new merchant key: the load did not span the rotations", sent.Load(), byNewKey.Load())
	}
	if _, ok := platformSerials.Load(newPlatform); !ok || len(serials(&platformSerials)) != 2 {
		t.Fatalf("response serials %v; want the old and the new platform key %s", serials(&platformSerials), newPlatform)
	}
	if _, ok := serverSerials.Load(newServerSerial); !ok || len(oldServer) != 1 || len(serials(&serverSerials)) != 2 {
		t.Fatalf("server certificates seen %v (before rotation %v); want the old and the new %s", serials(&serverSerials), oldServer, newServerSerial)
	}

	// Once the overlap ends, the old merchant key is refused; the new works.
	h.clock.Advance(overlap + time.Minute)
	tok := h.token("42")
	// (Signed by hand: the old client's own key refetch is refused too.)
	body := paymentBody(newOrderID(), "0.01", tok)
	cert := h.certs[demoMerchant]
	if r := h.raw(&cert, "POST", "/v1/payments", body, h.sign(demoMerchant, old.Key, old.KeyID, "POST", "/v1/payments", body, h.clock.Now())); r.Status != http.StatusUnauthorized {
		t.Fatalf("old merchant key after the overlap: %d %s, want 401", r.Status, r.Body)
	}
	if st, _, err := h.payWith(newClient, tok); err != nil || st != http.StatusOK {
		t.Fatalf("new merchant key after the overlap: %d %v", st, err)
	}
}

// readyCheck returns /readyz's status and the text of one check.
func (h *harness) readyCheck(name string) (int, string) {
	h.t.Helper()
	res, err := http.Get(h.ops + "/readyz")
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Checks map[string]any `json:"checks"`
	}
	b, _ := io.ReadAll(res.Body)
	json.Unmarshal(b, &body)
	return res.StatusCode, fmt.Sprint(body.Checks[name])
}

// TestRevokedClientCertRefused: a client certificate revoked the way
// `quillctl certs revoke` does is refused within one refresh interval, on
// the connection it already has open too; a bad edit of the CRL afterwards
// keeps the revocation in force and shows on /readyz.
func TestRevokedClientCertRefused(t *testing.T) {
	serverLog := &syncBuffer{}
	h := startServer(t, func(h *harness, _ *config) { h.log = serverLog })
	ctx := context.Background()
	var seen sync.Map
	c := h.quillClient(h.mtlsBase(otherMerch, &seen), otherMerch, h.clients[otherMerch].KeyID, h.clients[otherMerch].Key)
	get := func() (int, error) {
		res, err := c.Get(h.base + "/v1/certificates")
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	if st, err := get(); err != nil || st != http.StatusOK {
		t.Fatalf("before revocation: %d %v", st, err)
	}
	serial := h.certs[otherMerch].Leaf.SerialNumber
	fs := h.fileStore()
	if err := tlsadmin.Revoke(ctx, fs, serial, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	// One refresh interval (1 s for the dev store) and a margin for -race.
	deadline := time.Now().Add(keys.DefaultReloadEvery + 2*time.Second)
	refused := false
	for !refused && time.Now().Before(deadline) {
		st, err := get() // the open keep-alive connection first, then new ones
		refused = err != nil || st != http.StatusOK
		time.Sleep(50 * time.Millisecond)
	}
	if !refused {
		t.Fatal("revoked client certificate still served after one refresh interval")
	}
	if r := h.do(topUp, "GET", "/v1/certificates", nil); r.Status != http.StatusOK {
		t.Fatalf("another merchant after the revocation: %d", r.Status)
	}
	if err := tlsadmin.Revoke(ctx, fs, serial, h.clock.Now()); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoking twice: %v", err)
	}

	// A bad edit: a CRL signed by another CA (well-formed PEM, so the store
	// takes it). The old list stays in force and /readyz says why.
	other, err := certs.NewCA("not the client CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := certs.NewCRL(other, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.EditTLS(ctx, keys.TLSCRL, func(it *keys.TLSItem, _ time.Time) error { it.CRLPEM = foreign; return nil }); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(keys.DefaultReloadEvery + 2*time.Second)
	st, check := h.readyCheck("tls")
	for st == http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		st, check = h.readyCheck("tls")
	}
	if st != http.StatusServiceUnavailable || check == "ok" {
		t.Fatalf("/readyz after a bad CRL: %d, tls: %s", st, check)
	}
	time.Sleep(2 * keys.DefaultReloadEvery) // more failing reloads: logged once
	if n := strings.Count(serverLog.String(), `"material":"TLS client CRL","message":"TLS material failed to load; the last good version stays in force"`); n != 1 {
		t.Fatalf("bad CRL logged %d times, want once (on change); log:\n%s", n, serverLog.String())
	}
	if st, err := get(); err == nil && st == http.StatusOK {
		t.Fatal("a bad CRL edit un-revoked a certificate")
	}
	if r := h.do(topUp, "GET", "/v1/certificates", nil); r.Status != http.StatusOK {
		t.Fatalf("a bad CRL stopped serving: %d", r.Status)
	}
}
