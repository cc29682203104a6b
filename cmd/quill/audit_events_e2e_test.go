package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/merchant"
)

// TestAuditorEvents lists the operator audit log over the auditor API (read
// as the read-only role): every event, paged by the sealed cursor; filters by
// action and time; and a scoped auditor sees only its merchants' events and
// the platform keys', a hidden subject reading exactly like an unknown one.
func TestAuditorEvents(t *testing.T) {
	a := startAuditServer(t)
	ctx := context.Background()
	for _, ev := range []merchant.Event{
		{Action: merchant.KeyRotated, Subject: demoMerchant, OldKeyID: "K1", NewKeyID: "K2", Detail: "overlap 10m0s"},
		{Action: merchant.KeyRevoked, Subject: otherMerch, OldKeyID: "K7"},
		{Action: merchant.KeyRotated, Subject: keys.PlatformOwner, OldKeyID: "P1", NewKeyID: "P2"},
		{Action: merchant.KeyRotated, Subject: keys.AuditorOwner, NewKeyID: "A2"},
		{Action: merchant.CertRevoked, Subject: "tls/crl", OldKeyID: "0A"},
		{Action: merchant.MerchantDisabled, Subject: otherMerch, Detail: "disabled"},
	} {
		ev.Actor = "alice@ops"
		if _, err := a.reg.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := a.reg.Events(ctx, merchant.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	all := a.auditorToken(audit.All)
	list := func(tok, target string) api.AuditEventsJSON {
		t.Helper()
		var page api.AuditEventsJSON
		a.getJSON(tok, target, &page)
		return page
	}
	// everything pages through target with limit=2 and returns every event.
	everything := func(tok, target string) []api.AuditEventJSON {
		t.Helper()
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		page := list(tok, target+sep+"limit=2")
		out := page.Events
		for page.Next != "" {
			if len(page.Events) != 2 {
				t.Fatalf("a page before the last has %d events", len(page.Events))
			}
			page = list(tok, "/v1/audit/events?limit=2&cursor="+url.QueryEscape(page.Next))
			out = append(out, page.Events...)
		}
		return out
	}
	got := everything(all, "/v1/audit/events")
	if len(got) != len(stored) || len(stored) < 9 { // three merchants added by the harness, six events here
		t.Fatalf("%d events listed, %d stored", len(got), len(stored))
	}
	for i, e := range stored {
		g := got[i]
		if g.Seq != e.Seq || g.Actor != e.Actor || g.Action != string(e.Action) || g.Subject != e.Subject ||
			g.OldKeyID != e.OldKeyID || g.NewKeyID != e.NewKeyID || g.Detail != e.Detail || g.At != e.At.UTC().Format(time.RFC3339Nano) {
			t.Fatalf("event %d: listed %+v, stored %+v", i, g, e)
		}
	}
	// Filters: a family, an action, a time range (to is exclusive).
	if evs := everything(all, "/v1/audit/events?action=key"); len(evs) != 4 {
		t.Errorf("action=key: %+v", evs)
	}
	if evs := list(all, "/v1/audit/events?action=key.revoked,cert.revoked").Events; len(evs) != 2 || evs[0].Subject != otherMerch || evs[1].Subject != "tls/crl" {
		t.Errorf("action=key.revoked,cert.revoked: %+v", evs)
	}
	last := stored[len(stored)-1]
	window := fmt.Sprintf("/v1/audit/events?from=%s&to=%s", url.QueryEscape(stored[len(stored)-3].At.Format(time.RFC3339Nano)),
		url.QueryEscape(last.At.Format(time.RFC3339Nano)))
	if evs := list(all, window).Events; len(evs) != 2 || evs[0].Seq != stored[len(stored)-3].Seq {
		t.Errorf("time window: %+v", evs)
	}

	// A scoped auditor: its merchant's and the platform keys' events only.
	m200 := a.auditorToken(audit.Merchants(otherMerch))
	scoped := everything(m200, "/v1/audit/events")
	want := 0
	for _, e := range stored {
		if e.Subject == otherMerch || e.Subject == keys.PlatformOwner || e.Subject == keys.PlatformEd25519Owner {
			want++
		}
	}
	if len(scoped) != want || want < 3 {
		t.Fatalf("scoped auditor sees %d events, want %d: %+v", len(scoped), want, scoped)
	}
	for _, e := range scoped {
		if e.Subject != otherMerch && e.Subject != keys.PlatformOwner {
			t.Errorf("scoped auditor sees %+v", e)
		}
	}
	hidden, missing := a.get(m200, "/v1/audit/events?subject="+demoMerchant), a.get(m200, "/v1/audit/events?subject=NOPE")
	if hidden.status != http.StatusOK || string(hidden.body) != string(missing.body) || string(hidden.body) != `{"events":[]}` {
		t.Errorf("another merchant's events: %d %s; unknown subject: %s", hidden.status, hidden.body, missing.body)
	}
	if r := a.get(all, "/v1/audit/events?subject="+demoMerchant); !strings.Contains(string(r.body), `"K2"`) {
		t.Errorf("unscoped auditor, subject %s: %s", demoMerchant, r.body)
	}
	// A cursor minted for the unscoped auditor does not widen a scope.
	first := list(all, "/v1/audit/events?limit=1")
	for _, e := range everything(m200, "/v1/audit/events?cursor="+url.QueryEscape(first.Next)) {
		if e.Subject != otherMerch && e.Subject != keys.PlatformOwner {
			t.Errorf("scoped auditor with another's cursor sees %+v", e)
		}
	}

	// Refusals.
	forged := "f" + first.Next[1:] // the payload altered
	if first.Next[0] == 'f' {
		forged = "g" + first.Next[1:]
	}
	for _, c := range []struct{ target, code string }{
		{"/v1/audit/events?cursor=" + url.QueryEscape(forged), "cursor_invalid"},
		{"/v1/audit/events?cursor=" + url.QueryEscape(first.Next) + "&action=key", "invalid_parameter"},
		{"/v1/audit/events?action=KEY", "invalid_parameter"},
		{"/v1/audit/events?from=yesterday", "invalid_parameter"},
		{"/v1/audit/events?limit=0", "invalid_parameter"},
		{"/v1/audit/events?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "invalid_parameter"},
	} {
		if r := a.get(all, c.target); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"code":"`+c.code+`"`) {
			t.Errorf("%s: %d %s", c.target, r.status, r.body)
		}
	}
	if r := a.get("", "/v1/audit/events"); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.status)
	}

	// The route reads as the reader role: without its grant it fails.
	var reader string
	if err := a.db.QueryRow(ctx, `SELECT current_database() || '_reader'`).Scan(&reader); err != nil {
		t.Fatal(err)
	}
	if _, err := a.db.Exec(ctx, "REVOKE SELECT ON audit_events FROM "+reader); err != nil {
		t.Fatal(err)
	}
	if r := a.get(all, "/v1/audit/events"); r.status != http.StatusInternalServerError {
		t.Errorf("without the reader's grant: %d %s", r.status, r.body)
	}
	if _, err := a.db.Exec(ctx, "GRANT SELECT ON audit_events TO "+reader); err != nil {
		t.Fatal(err)
	}
	if r := a.get(all, "/v1/audit/events"); r.status != http.StatusOK {
		t.Errorf("with the grant back: %d %s", r.status, r.body)
	}
}
