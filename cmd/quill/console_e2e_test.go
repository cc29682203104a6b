package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/internal/devenv"
)

func (a *auditHarness) post(target string) auditResp {
	a.t.Helper()
	req, _ := http.NewRequest("POST", a.auditBase+target, nil)
	res, err := a.auditHTTP.Do(req)
	if err != nil {
		a.t.Fatalf("POST %s: %v", target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return auditResp{res.StatusCode, res.Header, b}
}

// The console's one-click dev sign-in exists on a dev server and nowhere else.
func TestConsoleDevTokenOnlyInDev(t *testing.T) {
	dev := startAuditServer(t)
	r := dev.post("/console/dev-token")
	var tok struct{ Token string }
	if r.status != http.StatusOK || json.Unmarshal(r.body, &tok) != nil || tok.Token == "" {
		t.Fatalf("dev server: POST /console/dev-token = %d %s", r.status, r.body)
	}
	if r := dev.get(tok.Token, "/v1/audit/trial-balance"); r.status != http.StatusOK {
		t.Fatalf("the dev token is refused: %d %s", r.status, r.body)
	}
	if r := dev.get("", "/console/"); r.status != http.StatusOK || r.header.Get("Content-Security-Policy") == "" ||
		!strings.Contains(string(r.body), `src="/console/js/app.js"`) {
		t.Fatalf("console page: %d %v", r.status, r.header)
	}

	// The same server without the dev CA key (as in production) mints nothing.
	prod := startServerWith(t, serverOptions{audit: true, tweaks: []func(*harness, *config){func(h *harness, c *config) {
		c.Audit = auditConfig{Addr: "127.0.0.1:0", Issuer: devenv.AuditorIssuer, Audience: devenv.AuditorAudience}
		if err := os.Remove(filepath.Join(h.dir, "ca.key.pem")); err != nil {
			t.Fatal(err)
		}
	}}})
	p := &auditHarness{harness: prod, auditHTTP: prod.httpClient(nil)}
	if r := p.post("/console/dev-token"); r.status != http.StatusNotFound {
		t.Fatalf("non-dev server: POST /console/dev-token = %d %s", r.status, r.body)
	}
	if r := p.get("", "/console/config.json"); r.status != http.StatusOK || !strings.Contains(string(r.body), `"dev_sign_in":false`) {
		t.Fatalf("non-dev server: config %d %s", r.status, r.body)
	}
}

func TestConsoleDevMode(t *testing.T) {
	dir := t.TempDir()
	if err := devenv.Init(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8444}
	dev := config{DataDir: dir}
	for _, c := range []struct {
		name string
		c    config
		addr net.Addr
		want bool
	}{
		{"dev material, file keys, loopback", dev, loop, true},
		{"IPv6 loopback", dev, &net.TCPAddr{IP: net.IPv6loopback}, true},
		{"all interfaces", dev, &net.TCPAddr{IP: net.IPv4zero, Port: 8444}, false},
		{"keys from Vault", config{DataDir: dir, Keys: keysConfig{VaultAddr: "https://vault:8200"}}, loop, false},
		{"no dev material", config{DataDir: t.TempDir()}, loop, false},
	} {
		if got := consoleDevMode(c.c, c.addr); got != c.want {
			t.Errorf("%s: dev mode %v, want %v", c.name, got, c.want)
		}
	}
}

// GET /v1/audit/entries/{id}/verification re-verifies on the server, keeps
// the entry's scope rules and names what a tampered row breaks.
func TestAuditEntryVerification(t *testing.T) {
	a := startAuditServer(t)
	a.seedPayments()
	// A refund is verified like any entry (its refund id is in its digests);
	// as the last of M100's entries it is also the one tampered with below.
	order := newOrderID()
	if r := a.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "3.00", a.token("a1"))); r.Status != http.StatusOK {
		t.Fatalf("payment: %d %s", r.Status, r.Body)
	}
	if r := a.do(demoMerchant, "POST", "/v1/refunds", refundBody(newOrderID(), order, "1.00")); r.Status != http.StatusOK {
		t.Fatalf("refund: %d %s", r.Status, r.Body)
	}
	all := a.auditorToken(audit.All)
	var tb struct {
		AsOfEntry int64 `json:"as_of_entry"`
	}
	a.getJSON(all, "/v1/audit/trial-balance", &tb)
	var m100, m200 int64
	refunds := 0
	for id := int64(1); id <= tb.AsOfEntry; id++ {
		var v api.EntryVerificationJSON
		a.getJSON(all, "/v1/audit/entries/"+strconv.FormatInt(id, 10)+"/verification", &v)
		if !v.OK || !v.Fingerprint.OK || !v.Hash.OK || !v.Signature.OK || len(v.Failures) != 0 {
			t.Fatalf("entry %d: %+v", id, v)
		}
		if v.Entry.Kind == "refund" {
			refunds++
		}
		switch v.Entry.Merchant {
		case demoMerchant:
			m100 = id
		case otherMerch:
			m200 = id
		}
	}
	if m100 == 0 || m200 == 0 || refunds != 1 {
		t.Fatalf("no payments of both merchants (%d, %d), or not one refund (%d)", m100, m200, refunds)
	}
	scoped := a.auditorToken(audit.Merchants(otherMerch))
	if r := a.get(scoped, "/v1/audit/entries/"+strconv.FormatInt(m200, 10)+"/verification"); r.status != http.StatusOK {
		t.Fatalf("in scope: %d %s", r.status, r.body)
	}
	outside := a.get(scoped, "/v1/audit/entries/"+strconv.FormatInt(m100, 10)+"/verification")
	missing := a.get(scoped, "/v1/audit/entries/999999/verification")
	if outside.status != http.StatusNotFound || withoutRequestID(t, outside.body) != withoutRequestID(t, missing.body) {
		t.Fatalf("out of scope: %d %s; missing: %d %s", outside.status, outside.body, missing.status, missing.body)
	}

	conn, err := pgx.Connect(context.Background(), a.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `UPDATE entries SET evidence_body = convert_to('{}', 'UTF8'), evidence_body_sha256 = sha256(convert_to('{}', 'UTF8')) WHERE id = $1`, m100); err != nil {
		t.Fatal(err)
	}
	var v api.EntryVerificationJSON
	a.getJSON(all, "/v1/audit/entries/"+strconv.FormatInt(m100, 10)+"/verification", &v)
	if v.OK || v.Signature.OK || v.Hash.OK || !v.Fingerprint.OK ||
		!strings.Contains(strings.Join(v.Failures, "; "), "signature does not verify") {
		t.Fatalf("tampered body: %+v", v)
	}
}
