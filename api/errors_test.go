package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

func TestErrorTable(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{&signing.Failure{Err: signing.ErrBadSignature, Hint: "h"}, 401, "signature_invalid"},
		{&signing.Failure{Err: signing.ErrReplay}, 401, "signature_invalid"},
		{fmt.Errorf("x: %w", signing.ErrUnavailable), 503, "unavailable"},
		{fmt.Errorf("x: %w", ledger.ErrUnavailable), 503, "unavailable"},
		{&policy.ValidationError{Fields: []policy.FieldError{{Field: "amount"}}}, 422, "validation_failed"},
		{ledger.ErrInsufficientFunds, 422, "insufficient_funds"},
		{ledger.ErrOrderConflict, 409, "order_conflict"},
		{policy.ErrForbidden, 403, "forbidden"},
		{errBodyTooLarge, 413, "body_too_large"},
		{errors.New("pq: something internal at 10.0.0.3"), 500, "internal"},
	} {
		t.Run(c.code, func(t *testing.T) {
			p := problemFor(c.err, "rid")
			if p.Status != c.status || p.Code != c.code {
				t.Fatalf("%v → %d %s, want %d %s", c.err, p.Status, p.Code, c.status, c.code)
			}
			b, _ := json.Marshal(p)
			if c.status == 500 && strings.Contains(string(b), "10.0.0.3") {
				t.Fatal("internal detail leaked to the client")
			}
		})
	}
	// Every signature refusal is one code, with a stable reason per check
	// and a fixed detail, never the Go error's text.
	for _, c := range []struct {
		err    error
		reason string
	}{
		{signing.ErrMalformed, "signature_malformed"},
		{signing.ErrWrongMerchant, "merchant_mismatch"},
		{signing.ErrUnknownKey, "key_unknown"},
		{signing.ErrAlgorithm, "algorithm_mismatch"},
		{signing.ErrStale, "timestamp_outside_window"},
		{signing.ErrCoverage, "coverage_insufficient"},
		{signing.ErrBadDigest, "content_digest_mismatch"},
		{signing.ErrBadSignature, "signature_mismatch"},
		{signing.ErrReplay, "nonce_replayed"},
	} {
		p := problemFor(&signing.Failure{Err: c.err, Hint: "h"}, "")
		if p.Code != "signature_invalid" || p.Status != 401 || p.Reason != c.reason {
			t.Errorf("%v → %s/%s, want signature_invalid/%s", c.err, p.Code, p.Reason, c.reason)
		}
		if p.Detail == "" || strings.Contains(p.Detail, c.err.Error()) || strings.Contains(p.Detail, "signing:") {
			t.Errorf("%v: detail %q is empty or the Go error's text", c.err, p.Detail)
		}
	}
	// An error that merely wraps a signing sentinel is no refusal.
	if p := problemFor(fmt.Errorf("x: %w", signing.ErrUnknownKey), ""); p.Status != 500 {
		t.Errorf("bare ErrUnknownKey → %d, want 500", p.Status)
	}
	if p := problemFor(errNoSignature, ""); p.Code != "signature_invalid" || p.Reason != "signature_missing" {
		t.Errorf("no signature → %s/%s", p.Code, p.Reason)
	}
	reasons := map[string]string{}
	for _, r := range errorTable {
		if r.reason == "" {
			t.Errorf("rule %v has no reason", r.err)
		}
		if prev, ok := reasons[r.reason]; ok && prev != r.code {
			t.Errorf("reason %s under two codes", r.reason)
		}
		reasons[r.reason] = r.code
	}
	codes := map[string]int{}
	for _, r := range errorTable {
		if prev, ok := codes[r.code]; ok && prev != r.status {
			t.Fatalf("code %s maps to two statuses", r.code)
		}
		codes[r.code] = r.status
	}
}

// fakeSigner signs with a constant so tests can see that it ran over the body.
type fakeSigner struct{ fail bool }

func (f fakeSigner) Prepare(context.Context) (func([]byte) (signing.ResponseSignature, error), error) {
	if f.fail {
		return nil, errors.New("no platform key")
	}
	return func(body []byte) (signing.ResponseSignature, error) {
		return signing.ResponseSignature{Timestamp: "1", Nonce: "N", Serial: "S", Signature: fmt.Sprintf("len=%d", len(body))}, nil
	}, nil
}

func TestEnvelopeSignsEveryResponse(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"a": "b"}) })
	mux.HandleFunc("/err", func(w http.ResponseWriter, r *http.Request) { writeError(w, r, ledger.ErrOrderConflict) })
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) { panic("boom secret") })
	for _, c := range []struct {
		path   string
		status int
	}{{"/ok", 200}, {"/err", 409}, {"/panic", 500}} {
		t.Run(c.path, func(t *testing.T) {
			h := envelope(newRequestIDs(), Signers{A: fakeSigner{}}, nil, zerolog.New(io.Discard), accessHooks{})(mux)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
			if rec.Code != c.status {
				t.Fatalf("status %d", rec.Code)
			}
			if got, want := rec.Header().Get("Wechatpay-Signature"), fmt.Sprintf("len=%d", rec.Body.Len()); got != want {
				t.Fatalf("signature %q, want %q (signed over the exact body)", got, want)
			}
			if rec.Header().Get("Request-ID") == "" {
				t.Fatal("no request id")
			}
			if strings.Contains(rec.Body.String(), "boom") {
				t.Fatal("panic detail leaked")
			}
		})
	}
	t.Run("signer down refuses before the handler runs", func(t *testing.T) {
		ran := false
		h := envelope(newRequestIDs(), Signers{A: fakeSigner{fail: true}}, nil, zerolog.New(io.Discard), accessHooks{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ran = true
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/payments", nil))
		if rec.Code != 503 || ran {
			t.Fatalf("status %d, handler ran: %v", rec.Code, ran)
		}
	})
	t.Run("HEAD signs the empty body it sends", func(t *testing.T) {
		h := envelope(newRequestIDs(), Signers{A: fakeSigner{}}, nil, zerolog.New(io.Discard), accessHooks{})(mux)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("HEAD", "/ok", nil))
		if got := rec.Header().Get("Wechatpay-Signature"); got != "len=0" || rec.Body.Len() != 0 {
			t.Fatalf("signature %q over a body of %d bytes", got, rec.Body.Len())
		}
	})
}

func TestAccessLogHasNoSecrets(t *testing.T) {
	var logs strings.Builder
	auth := authenticate(authFunc(func(context.Context, signing.Request) (signing.Verified, error) {
		return signing.Verified{Merchant: "M1", KeyID: "K1"}, nil
	}), func(*http.Request) (string, error) { return "M1", nil }, 1024)
	h := envelope(newRequestIDs(), Signers{A: fakeSigner{}}, nil, zerolog.New(&logs), accessHooks{})(auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"ok": "1"})
	})))
	req := httptest.NewRequest("POST", "/v1/payments?x=1", strings.NewReader(`{"payer_token":"SECRET-TOKEN"}`))
	req.Header.Set("Authorization", `WECHATPAY2-SHA256-RSA2048 signature="SECRET-SIG"`)
	h.ServeHTTP(httptest.NewRecorder(), req)
	out := logs.String()
	for _, secret := range []string{"SECRET-TOKEN", "SECRET-SIG", "payer_token"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains %q: %s", secret, out)
		}
	}
	for _, want := range []string{`"merchant":"M1"`, `"key_id":"K1"`, `"request_id"`, `"status":200`} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %s: %s", want, out)
		}
	}
}

type authFunc func(context.Context, signing.Request) (signing.Verified, error)

func (f authFunc) Verify(ctx context.Context, r signing.Request) (signing.Verified, error) {
	return f(ctx, r)
}

// VerifyMessage hands a scheme B request to f as a scheme A one whose
// Authorization is the Signature field.
func (f authFunc) VerifyMessage(ctx context.Context, r signing.MessageRequest) (signing.Verified, error) {
	sig := ""
	if s := r.Header["Signature"]; len(s) > 0 {
		sig = s[0]
	}
	return f(ctx, signing.Request{Method: r.Method, Target: r.Target, Authorization: sig, Body: r.Body, Merchant: r.Merchant})
}

func TestBodyTooLarge(t *testing.T) {
	called := false
	auth := authenticate(authFunc(func(context.Context, signing.Request) (signing.Verified, error) {
		called = true
		return signing.Verified{}, nil
	}), func(*http.Request) (string, error) { return "M1", nil }, 16)
	h := envelope(newRequestIDs(), Signers{A: fakeSigner{}}, nil, zerolog.New(io.Discard), accessHooks{})(auth(http.NotFoundHandler()))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/payments", strings.NewReader(strings.Repeat("x", 17))))
	if rec.Code != 413 || called {
		t.Fatalf("status %d, verifier called %v", rec.Code, called)
	}
}
