package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/ledger"
)

// staticTokens accepts one token; every other is refused like the real
// verifier refuses a bad signature.
type staticTokens struct{ good string }

func (s staticTokens) Verify(_ context.Context, tok string) (audit.Auditor, error) {
	if tok == s.good {
		return audit.Auditor{Subject: "alice", Scope: audit.Merchants("M1")}, nil
	}
	return audit.Auditor{}, audit.ErrToken
}

func TestCursorSealing(t *testing.T) {
	c := cursorSealer{key: bytes.Repeat([]byte{1}, 32)}
	pos := ledger.StatementPosition{AccountID: 7, FromEntry: 1, ToEntry: 9, Opening: 100, Closing: 50, AfterEntry: 3, AfterSeq: 1, Running: 75}
	sealed := c.seal(cursorStatement, pos)
	var got ledger.StatementPosition
	if err := c.open(cursorStatement, sealed, &got); err != nil || got != pos {
		t.Fatalf("open = %+v, %v", got, err)
	}
	other := cursorSealer{key: bytes.Repeat([]byte{2}, 32)}
	payload, mac, _ := strings.Cut(sealed, ".")
	for name, cur := range map[string]string{
		"other kind":     "",
		"other key":      other.seal(cursorStatement, pos),
		"payload edited": payload[:len(payload)-2] + "AA." + mac,
		"mac edited":     payload + "." + strings.Repeat("A", len(mac)),
		"no mac":         payload,
		"empty":          "",
	} {
		kind := cursorStatement
		if name == "other kind" {
			kind, cur = cursorExport, sealed
		}
		if err := c.open(kind, cur, &got); !errors.Is(err, errCursorInvalid) {
			t.Errorf("%s: open = %v", name, err)
		}
	}
	if _, err := NewAuditHandler(AuditDeps{CursorKey: []byte("short")}); err == nil {
		t.Error("a short cursor key was accepted")
	}
}

func FuzzCursorOpen(f *testing.F) {
	c := cursorSealer{key: bytes.Repeat([]byte{1}, 32)}
	f.Add(c.seal(cursorExport, ledger.JournalPosition{FromEntry: 1, ToEntry: 2}))
	f.Add("e30.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		var pos ledger.JournalPosition
		if err := c.open(cursorExport, s, &pos); err == nil && c.seal(cursorExport, pos) == "" {
			t.Fatal("opened cursor does not reseal")
		}
	})
}

func FuzzParseAfter(f *testing.F) {
	f.Add("12:0")
	f.Add("-1:3")
	f.Fuzz(func(t *testing.T, s string) {
		e, q, err := parseAfter(s)
		if err == nil && (e < 0 || q < 0) {
			t.Fatalf("parseAfter(%q) = %d, %d", s, e, q)
		}
	})
}

// TestAuditAccessLogHasNoSecrets: neither the token nor the query string
// (which might carry one) reaches the log.
func TestAuditAccessLogHasNoSecrets(t *testing.T) {
	var logBuf bytes.Buffer
	h, err := NewAuditHandler(AuditDeps{
		Tokens: staticTokens{good: "good.token.value"}, CursorKey: bytes.Repeat([]byte{1}, 32), Log: zerolog.New(&logBuf),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		target, auth string
		status       int
	}{
		{"/v1/audit/nope?secret=s3cr3t", "Bearer good.token.value", http.StatusNotFound},
		{"/v1/audit/trial-balance?access_token=eyJhbGciOi.eyJzdWIi.c2ln", "", http.StatusBadRequest},
		{"/v1/audit/trial-balance", "Bearer wrong.token.value", http.StatusUnauthorized},
		{"/v1/audit/trial-balance", "WECHATPAY2-SHA256-RSA2048 mchid=\"M1\",signature=\"c2ln\"", http.StatusUnauthorized},
		{"/v1/audit/entries/1", "Bearer good.token.value", -1}, // Reports is nil: the panic is recovered as a 500
	} {
		req := httptest.NewRequest("GET", c.target, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if c.status > 0 && rec.Code != c.status {
			t.Errorf("%s: %d %s", c.target, rec.Code, rec.Body)
		}
		if c.status < 0 && rec.Code != http.StatusInternalServerError {
			t.Errorf("%s: %d, want a recovered 500", c.target, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "runtime") {
			t.Errorf("%s: internal detail in the body: %s", c.target, rec.Body)
		}
	}
	log := logBuf.String()
	for _, secret := range []string{"good.token.value", "wrong.token.value", "s3cr3t", "eyJhbGciOi", "c2ln"} {
		if strings.Contains(log, secret) {
			t.Errorf("access log contains %q:\n%s", secret, log)
		}
	}
	if !strings.Contains(log, `"auditor":"alice"`) {
		t.Errorf("access log does not name the auditor:\n%s", log)
	}
}
