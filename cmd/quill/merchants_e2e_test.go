package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/merchant"
)

// TestDisabledMerchantRefusedOnEveryNode: two servers share one registry and
// ledger; an operator disables a merchant in the registry; within one
// refresh interval both refuse it with a signed 403 and write nothing, and
// both serve it again once it is enabled. No restart.
func TestDisabledMerchantRefusedOnEveryNode(t *testing.T) {
	h := startServer(t)
	h2 := startServer(t, func(_ *harness, c *config) { c.DataDir, c.PostgresDSN = h.dir, h.dsn })
	user := "u-disabled-" + newOrderID()
	h.deposit(user, "100.00")

	nodes := map[string]*client.Client{"node1": h.clients[demoMerchant]}
	c1 := h.clients[demoMerchant]
	nodes["node2"] = &client.Client{BaseURL: h2.base, Merchant: c1.Merchant, KeyID: c1.KeyID, Key: c1.Key, HTTP: c1.HTTP, Now: c1.Now}
	pay := func(c *client.Client) *client.Response {
		t.Helper()
		r, err := c.Do(context.Background(), "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", h.token(user)))
		if err != nil {
			t.Fatal(err)
		}
		if r.Verified != nil {
			t.Fatalf("response signature: %v (status %d)", r.Verified, r.Status)
		}
		return r
	}
	// until polls each node until its payments get want, within a bound far
	// above the 200 ms refresh interval (a slow machine is not a failure).
	until := func(want int) {
		t.Helper()
		for name, c := range nodes {
			deadline := time.Now().Add(10 * time.Second)
			for {
				r := pay(c)
				if r.Status == want {
					if want == http.StatusForbidden {
						if code := problem(t, r)["code"]; code != "merchant_unknown" && code != "merchant_disabled" {
							t.Fatalf("%s: 403 with code %v", name, code)
						}
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: still %d %s, want %d", name, r.Status, r.Body, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	until(http.StatusOK)

	ctx := context.Background()
	if _, err := h.reg.Update(ctx, demoMerchant, func(p *merchant.Profile) (string, error) {
		p.Status = merchant.Disabled
		return "", nil
	}, merchant.Event{Actor: "e2e", Action: merchant.MerchantDisabled}); err != nil {
		t.Fatal(err)
	}
	until(http.StatusForbidden)
	// Refused requests write nothing: no entry, no account movement.
	entries, bal := h.entries(""), h.balance("user:"+user)
	for name, c := range nodes {
		if r := pay(c); r.Status != http.StatusForbidden {
			t.Fatalf("%s served a disabled merchant: %d", name, r.Status)
		}
	}
	if e, b := h.entries(""), h.balance("user:"+user); e != entries || b != bal {
		t.Fatalf("refused payments wrote: entries %d→%d, balance %d→%d", entries, e, bal, b)
	}
	// Other merchants are unaffected.
	if r := h.do(otherMerch, "GET", "/v1/payments/ORD000000000000000", nil); r.Status != http.StatusNotFound {
		t.Fatalf("other merchant: %d %s", r.Status, r.Body)
	}

	if _, err := h.reg.Update(ctx, demoMerchant, func(p *merchant.Profile) (string, error) {
		p.Status = merchant.Active
		return "", nil
	}, merchant.Event{Actor: "e2e", Action: merchant.MerchantEnabled}); err != nil {
		t.Fatal(err)
	}
	until(http.StatusOK)
}

// TestRegistryUnreadableAtStart: a server whose registry cannot be read
// serves no merchant (503, nothing written) and says why in /readyz.
func TestRegistryUnreadableAtStart(t *testing.T) {
	h := startServer(t, func(h *harness, c *config) {
		h.noWait = true
		// The ledger is reachable, but the merchants table cannot be read:
		// move it away before the server starts.
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, c.PostgresDSN)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `ALTER TABLE merchants RENAME TO merchants_away`); err != nil {
			t.Fatal(err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(h.ops + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "merchants") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never reported the merchants check failing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := h.entries("")
	r := h.do(topUp, "POST", "/v1/deposits", []byte(`{"order_id":"ORD300000000001","user_id":"42","amount":"1.00","currency":"CNY"}`))
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("deposit with no profiles loaded: %d %s", r.Status, r.Body)
	}
	if h.entries("") != before {
		t.Fatal("a refused request wrote")
	}
	// The table comes back: served again after the next reload.
	if _, err := h.db.Exec(context.Background(), `ALTER TABLE merchants_away RENAME TO merchants`); err != nil {
		t.Fatal(err)
	}
	h.waitReady()
	h.deposit("u-back", "1.00")
}
