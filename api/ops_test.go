package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestReadyzSaysWhy: a failing check is reported with its reason (redacted
// and bounded), the status is 503, and both endpoints name the version.
func TestReadyzSaysWhy(t *testing.T) {
	const jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
	h := NewOpsHandler("v9.9.9", time.Second,
		ReadyCheck{Name: "postgres", Check: func(context.Context) error { return nil }},
		ReadyCheck{Name: "keys", Check: func(context.Context) error {
			return errors.New("vault store: unreachable since 2026-12-04T03:00:00Z (dial tcp: connection refused)")
		}},
		ReadyCheck{Name: "noisy", Check: func(context.Context) error {
			return errors.New("token " + jwt + " " + strings.Repeat("x", 1000))
		}},
	)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var got struct {
		Ready   bool
		Version string
		Checks  map[string]string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || got.Ready || got.Version != "v9.9.9" {
		t.Fatalf("readyz %d %+v", rec.Code, got)
	}
	if got.Checks["postgres"] != "ok" {
		t.Errorf("postgres = %q", got.Checks["postgres"])
	}
	if k := got.Checks["keys"]; !strings.HasPrefix(k, "failing: ") || !strings.Contains(k, "unreachable since") {
		t.Errorf("keys = %q; want the reason", k)
	}
	if n := got.Checks["noisy"]; strings.Contains(n, jwt) || len(n) > maxReadyReason+len("failing: …")+8 {
		t.Errorf("noisy reason not redacted or not bounded (%d bytes): %.80q", len(n), n)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"version":"v9.9.9"`) {
		t.Fatalf("healthz %d %s", rec.Code, rec.Body.String())
	}
}
