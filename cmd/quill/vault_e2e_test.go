package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/vaulttest"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/keys/vault"
)

// vaultServer starts a server whose keys come from the real dev Vault,
// through proxy: the dev material's rings are copied into Vault under a
// fresh prefix first.
func vaultServer(t *testing.T, v *vaulttest.Vault, proxy *vaulttest.Proxy, notReady bool) (*harness, keys.Manager) {
	t.Helper()
	prefix := vaulttest.Prefix()
	vs, err := vault.Open(vault.Config{Address: v.Addr, Token: v.RootToken, Mount: v.Mount, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vs.Close)
	h := startServer(t, func(h *harness, c *config) {
		fs, err := keys.OpenFileStore(filepath.Join(h.dir, "keys"), keys.FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rings, err := fs.LoadRings(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rings {
			if err := (keys.Manager{Rings: vs}).Import(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := keys.ImportTLS(context.Background(), fs, vs); err != nil {
			t.Fatal(err)
		}
		tokenFile := filepath.Join(h.dir, "vault-token")
		if err := os.WriteFile(tokenFile, []byte(v.RootToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Keys = keysConfig{
			VaultAddr: proxy.URL(), VaultMount: v.Mount, VaultPrefix: prefix, VaultTokenFile: tokenFile,
			VaultTimeout: 2 * time.Second, Refresh: time.Second, MaxStale: time.Minute, MissRefresh: 100 * time.Millisecond,
		}
		h.noWait = notReady
	})
	return h, keys.Manager{Rings: vs}
}

// readyz returns /readyz's status and its "keys" check.
func (h *harness) readyz() (int, string) {
	h.t.Helper()
	res, err := http.Get(h.ops + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var body struct {
		Checks map[string]any `json:"checks"`
	}
	json.Unmarshal(b, &body)
	return res.StatusCode, fmt.Sprint(body.Checks["keys"])
}

// waitReadyz polls /readyz until it answers want (the background refresh
// runs on a real 1s ticker).
func (h *harness) waitReadyz(want int) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := h.readyz(); st == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, keysCheck := h.readyz()
	h.t.Fatalf("/readyz stayed %d (keys: %s), want %d", st, keysCheck, want)
}

// pay sends a signed payment and returns the status, whatever it is.
func (h *harness) pay(user string) int {
	h.t.Helper()
	r, err := h.clients[demoMerchant].Do(context.Background(), "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", h.token(user)))
	if err != nil {
		h.t.Fatal(err)
	}
	return r.Status
}

// The server reads its keys from Vault: a rotation made in Vault alone is
// served at once; with Vault cut it keeps serving the last good keys until
// the staleness limit, then answers 503; it recovers when Vault returns.
func TestVaultKeysEndToEnd(t *testing.T) {
	v := vaulttest.Shared(t)
	proxy := vaulttest.NewProxy(t, v.Addr)
	h, m := vaultServer(t, v, proxy, false)
	user := "u-vault-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "100.00")
	if st := h.pay(user); st != http.StatusOK {
		t.Fatalf("payment with keys from Vault: %d", st)
	}

	// Rotate M100's key in Vault only; the first request with the new key id
	// makes the server look again.
	newKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	newID := keys.NewKeyID("", rand.Reader)
	if err := m.Rotate(context.Background(), demoMerchant, keys.PublicKey{ID: newID, Algorithm: keys.RSAPKCS1SHA256, Public: &newKey.PublicKey}, time.Hour); err != nil {
		t.Fatal(err)
	}
	body := paymentBody(newOrderID(), "1.00", h.token(user))
	auth := h.sign(demoMerchant, newKey, newID, "POST", "/v1/payments", body, h.clock.Now())
	if r := h.raw(new(h.certs[demoMerchant]), "POST", "/v1/payments", body, auth); r.Status != http.StatusOK {
		t.Fatalf("payment signed with the key rotated in Vault: %d %s", r.Status, r.Body)
	}
	if st := h.pay(user); st != http.StatusOK {
		t.Fatalf("payment with the old key during its overlap: %d", st)
	}

	// Vault cut: not ready (with the keys check failing), still serving.
	proxy.Cut()
	h.waitReadyz(http.StatusServiceUnavailable)
	if _, keysCheck := h.readyz(); keysCheck == "ok" {
		t.Fatal("/readyz keys check is ok with Vault cut")
	}
	if st := h.pay(user); st != http.StatusOK {
		t.Fatalf("payment within the staleness limit with Vault cut: %d", st)
	}
	// Past the limit: refused, nothing written.
	h.clock.Advance(2 * time.Minute)
	if st := h.pay(user); st != http.StatusServiceUnavailable {
		t.Fatalf("payment past the staleness limit: %d, want 503", st)
	}
	// The staleness an operator alerts on: the keys' age is past the limit.
	mfs := h.scrape()
	age, _ := sample(mfs, "quill_keys_age_seconds", nil)
	if limit, _ := sample(mfs, "quill_keys_max_stale_seconds", nil); limit != 60 || age < 120 {
		t.Errorf("key age %v s, limit %v s; want at least 120 past a 60 s limit", age, limit)
	}

	proxy.Restore(t)
	h.waitReadyz(http.StatusOK)
	if st := h.pay(user); st != http.StatusOK {
		t.Fatalf("payment after Vault is back: %d", st)
	}
}

// Vault unreachable at start: the server runs but is not ready and serves
// nothing until Vault answers.
func TestVaultDownAtStart(t *testing.T) {
	v := vaulttest.Shared(t)
	proxy := vaulttest.NewProxy(t, v.Addr)
	proxy.Cut()
	h, _ := vaultServer(t, v, proxy, true)
	if st, keysCheck := h.readyz(); st != http.StatusServiceUnavailable || keysCheck == "ok" {
		t.Fatalf("/readyz with Vault down at start = %d (keys: %s), want 503", st, keysCheck)
	}
	// The TLS material lives in Vault too: with none loaded the server has
	// no certificate, so every handshake fails and nothing is served.
	r, err := h.clients[topUp].Do(context.Background(), "POST", "/v1/deposits",
		[]byte(`{"order_id":"`+newOrderID()+`","user_id":"42","amount":"1.00","currency":"CNY"}`))
	if err == nil {
		t.Fatalf("deposit with Vault down at start answered %d %s; want no TLS handshake", r.Status, r.Body)
	}
	if res, err := h.httpClient(new(h.certs[demoMerchant])).Get(h.base + "/v1/certificates"); err == nil {
		res.Body.Close()
		t.Fatalf("GET /v1/certificates with Vault down at start: %d, want no TLS handshake", res.StatusCode)
	}
	if n := h.entries(""); n != 0 {
		t.Fatalf("%d entries written with Vault down at start", n)
	}

	proxy.Restore(t)
	h.waitReadyz(http.StatusOK)
	h.deposit("u-late-"+fmt.Sprint(time.Now().UnixNano()), "1.00")
}
