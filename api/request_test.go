package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/signing"
)

// readRaw parses a request exactly as net/http's server does, so RequestURI
// and repeated headers are what a client put on the wire.
func readRaw(t *testing.T, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return r
}

// guarded is an envelope and authenticate around ok whose verifier records
// whether it was reached: a refusal before it spends no nonce.
func guarded(reached *bool) http.Handler {
	auth := authenticate(authFunc(func(context.Context, signing.Request) (signing.Verified, error) {
		*reached = true
		return signing.Verified{Merchant: "M1", KeyID: "K1"}, nil
	}), func(*http.Request) (string, error) { return "M1", nil }, 1024)
	return envelope(newRequestIDs(), Signers{A: fakeSigner{}}, nil, zerolog.New(io.Discard), accessHooks{})(auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"ok": "1"})
	})))
}

func problemCode(t *testing.T, rec *httptest.ResponseRecorder) (string, string) {
	t.Helper()
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return p.Code, p.Detail
}

// TestRequestRefusedBeforeVerification covers issue 5 items 1 and 5: repeated
// headers the signature or decoding depend on, and request-targets not in
// origin form, are refused with 400 before the verifier (and so the nonce)
// is reached.
func TestRequestRefusedBeforeVerification(t *testing.T) {
	const body = `{"a":"b"}`
	post := func(target string, headers ...string) string {
		return "POST " + target + " HTTP/1.1\r\nHost: quill.test\r\n" + strings.Join(headers, "") +
			"Content-Length: 9\r\n\r\n" + body
	}
	auth := "Authorization: WECHATPAY2-SHA256-RSA2048 mchid=\"M1\"\r\n"
	ct := "Content-Type: application/json\r\n"
	for _, c := range []struct {
		name, raw string
		status    int
		code      string
		detail    string
	}{
		{"one of each", post("/v1/payments", auth, ct), 200, "", ""},
		{"two Authorization headers", post("/v1/payments", auth, ct, "Authorization: Bearer junk\r\n"), 400, "malformed_request", "Authorization"},
		{"Authorization in other case", post("/v1/payments", auth, ct, "authorization: Bearer junk\r\n"), 400, "malformed_request", "Authorization"},
		{"two Content-Type headers", post("/v1/payments", auth, ct, "Content-Type: text/plain\r\n"), 400, "malformed_request", "Content-Type"},
		{"absolute https target", post("https://evil.example/v1/payments", auth, ct), 400, "malformed_request", "origin form"},
		{"absolute http target", post("http://quill.test/v1/payments", auth, ct), 400, "malformed_request", "origin form"},
		{"absolute target naming this host", post("https://quill.test/v1/payments", auth, ct), 400, "malformed_request", "origin form"},
		{"NUL in target", post("/v1/payments?x=%00", auth, ct), 200, "", ""}, // escaped: text, signed as sent
		{"long target", post("/v1/payments?p="+strings.Repeat("x", maxTarget), auth, ct), 414, "uri_too_long", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			reached := false
			rec := httptest.NewRecorder()
			guarded(&reached).ServeHTTP(rec, readRaw(t, c.raw))
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if c.status == 200 {
				if !reached {
					t.Fatal("verifier not reached")
				}
				return
			}
			if reached {
				t.Fatal("verifier reached: a nonce would have been spent")
			}
			code, detail := problemCode(t, rec)
			if code != c.code || !strings.Contains(detail, c.detail) {
				t.Fatalf("code %q detail %q, want %q mentioning %q", code, detail, c.code, c.detail)
			}
		})
	}
}

// errReader fails the body read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// timeoutError is what a read past the connection's deadline returns.
type timeoutError struct{}

func (timeoutError) Error() string   { return "read tcp: i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// TestBodyReadFailures covers issue 5 item 7: a body the client did not send
// in time is 408, one cut short is 400 — the client's fault, never a 500.
func TestBodyReadFailures(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"read timeout", timeoutError{}, 408, "request_timeout"},
		{"deadline exceeded", os.ErrDeadlineExceeded, 408, "request_timeout"},
		{"cut short", io.ErrUnexpectedEOF, 400, "malformed_request"},
		{"connection reset", errors.New("read: connection reset by peer"), 400, "malformed_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs strings.Builder
			reached := false
			auth := authenticate(authFunc(func(context.Context, signing.Request) (signing.Verified, error) {
				reached = true
				return signing.Verified{}, nil
			}), func(*http.Request) (string, error) { return "M1", nil }, 1024)
			h := envelope(newRequestIDs(), Signers{A: fakeSigner{}}, nil, zerolog.New(&logs), accessHooks{})(auth(http.NotFoundHandler()))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/payments", errReader{c.err}))
			if rec.Code != c.status || reached {
				t.Fatalf("status %d (want %d), verifier reached %v", rec.Code, c.status, reached)
			}
			if code, _ := problemCode(t, rec); code != c.code {
				t.Fatalf("code %q, want %q", code, c.code)
			}
			if !strings.Contains(logs.String(), `"level":"warn"`) || strings.Contains(logs.String(), `"level":"error"`) {
				t.Fatalf("want one warn line: %s", logs.String())
			}
		})
	}
}

// lookups is a ledger.Reader that records the order ids it is asked for.
type lookups struct{ asked []string }

func (l *lookups) Entry(_ context.Context, _, orderID string) (ledger.Recorded, error) {
	l.asked = append(l.asked, orderID)
	return ledger.Recorded{}, ledger.ErrNotFound
}

func (l *lookups) Refund(_ context.Context, _, refundID string) (ledger.Recorded, error) {
	l.asked = append(l.asked, refundID)
	return ledger.Recorded{}, ledger.ErrNotFound
}

func (l *lookups) Balance(context.Context, string, string) (int64, error) {
	return 0, ledger.ErrNotFound
}

// TestGetPaymentPathParameter covers issue 5 item 4: the order id is
// validated after decoding, so a NUL or an invalid UTF-8 byte is a 404 that
// never reaches the ledger (PostgreSQL would refuse it: a 500).
func TestGetPaymentPathParameter(t *testing.T) {
	for _, c := range []struct {
		target string
		asked  string // "" means the ledger must not be asked
	}{
		{"/v1/payments/ORD1", "ORD1"},
		{"/v1/payments/ORD1%00", ""},
		{"/v1/payments/ORD1%FF", ""},
		{"/v1/payments/ORD1%C3%A9", "ORD1é"},
		{"/v1/payments/ORD1%0A", ""},
		{"/v1/payments/ORD1%7F", ""},
		{"/v1/payments/ORD1%C2%85", ""}, // U+0085, a C1 control
		{"/v1/payments/ORD%31", "ORD1"}, // escapes decode once…
		{"/v1/payments/ORD%2531", "ORD%31"},
		{"/v1/payments/ORD%2F1", "ORD/1"}, // …whichever path chi matched on
		{"/v1/payments/ORD%2F1%00", ""},
	} {
		t.Run(c.target, func(t *testing.T) {
			l := &lookups{}
			router := chi.NewRouter()
			router.Method("GET", "/v1/payments/{order_id}", handleGetPayment(l))
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, readRaw(t, "GET "+c.target+" HTTP/1.1\r\nHost: quill.test\r\n\r\n"))
			if rec.Code != http.StatusNotFound {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			switch {
			case c.asked == "" && len(l.asked) != 0:
				t.Fatalf("ledger asked for %q", l.asked)
			case c.asked != "" && (len(l.asked) != 1 || l.asked[0] != c.asked):
				t.Fatalf("ledger asked for %q, want %q", l.asked, c.asked)
			}
		})
	}
}
