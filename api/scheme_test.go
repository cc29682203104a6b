package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/signing"
)

// fakeMessageSigner "signs" scheme B answers with what it was bound to and
// the body length, so tests see that it ran over the exact body.
type fakeMessageSigner struct{}

func (fakeMessageSigner) Prepare(context.Context) (func(signing.MessageResponse, signing.Verified) (signing.MessageHeaders, error), error) {
	return func(resp signing.MessageResponse, req signing.Verified) (signing.MessageHeaders, error) {
		return signing.MessageHeaders{SignatureInput: "bound=" + req.Label, Signature: fmt.Sprintf("len=%d", len(resp.Body)), ContentDigest: "d"}, nil
	}, nil
}

// TestSchemeDispatch: the headers present choose the verifier, both is a
// 400 before either runs, neither a 401; each answer is signed in the
// request's scheme, refusals included.
func TestSchemeDispatch(t *testing.T) {
	var called []string
	auth := schemeAuth{
		a: func(_ context.Context, r signing.Request) (signing.Verified, error) {
			called = append(called, "A")
			return signing.Verified{Scheme: signing.SchemeWeChatPay, Merchant: r.Merchant, KeyID: "KA"}, nil
		},
		b: func(_ context.Context, r signing.MessageRequest) (signing.Verified, error) {
			called = append(called, "B")
			if r.Scheme != "https" || r.Authority != "quill.test" || r.Target != "/v1/x?q=1" || string(r.Body) != "{}" {
				t.Errorf("message request %+v", r)
			}
			if sig := http.Header(r.Header).Get("Signature"); sig == "" || strings.Contains(sig, "bad") {
				return signing.Verified{}, &signing.Failure{Err: signing.ErrBadSignature, Hint: "no"}
			}
			return signing.Verified{Scheme: signing.SchemeHTTPSig, Merchant: r.Merchant, KeyID: "KB", Label: "mine", Signature: "mine=:AA==:"}, nil
		},
	}
	h := envelope(newRequestIDs(), Signers{A: fakeSigner{}, B: fakeMessageSigner{}}, nil, zerolog.New(io.Discard), accessHooks{})(
		authenticate(auth, func(*http.Request) (string, error) { return "M1", nil }, 1024)(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"ok": "1"}) })))
	for _, c := range []struct {
		name    string
		headers map[string]string
		called  string
		status  int
		reason  string
		signedA bool
		bound   string // scheme B signature's binding; "" none
	}{
		{"scheme A", map[string]string{"Authorization": "WECHATPAY2-SHA256-RSA2048 x"}, "A", 200, "", true, ""},
		{"scheme B", map[string]string{"Signature-Input": `sig1=("@method")`, "Signature": "sig1=:AA==:"}, "B", 200, "", false, "bound=mine"},
		{"scheme B refused", map[string]string{"Signature-Input": `sig1=("@method")`, "Signature": "sig1=:bad/:"}, "B", 401, "signature_mismatch", false, "bound=sig1"},
		{"scheme B, Signature-Input only", map[string]string{"Signature-Input": `sig1=("@method")`}, "B", 401, "signature_mismatch", false, "bound="},
		{"both", map[string]string{"Authorization": "WECHATPAY2-SHA256-RSA2048 x", "Signature-Input": `sig1=("@method")`, "Signature": "sig1=:AA==:"}, "", 400, "signature_scheme_ambiguous", true, "bound=sig1"},
		{"neither", nil, "", 401, "signature_missing", true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			called = nil
			req := httptest.NewRequest("POST", "/v1/x?q=1", strings.NewReader("{}"))
			req.Host = "quill.test"
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.status || strings.Join(called, "") != c.called {
				t.Fatalf("status %d, verifiers %v; want %d, %q: %s", rec.Code, called, c.status, c.called, rec.Body)
			}
			if c.reason != "" {
				var p struct{ Reason string }
				if err := jsonUnmarshal(rec.Body.Bytes(), &p); err != nil || p.Reason != c.reason {
					t.Fatalf("reason %q, want %q", p.Reason, c.reason)
				}
			}
			if got := rec.Header().Get("Wechatpay-Signature") != ""; got != c.signedA {
				t.Fatalf("scheme A signature present %v, want %v", got, c.signedA)
			}
			if got := rec.Header().Get("Signature-Input"); got != c.bound {
				t.Fatalf("scheme B signature %q, want %q", got, c.bound)
			}
			if c.bound != "" && rec.Header().Get("Signature") != fmt.Sprintf("len=%d", rec.Body.Len()) {
				t.Fatal("scheme B signature not over the body sent")
			}
		})
	}
}

// TestErrorLoggedThroughWrappingWriter: a middleware that wraps the
// ResponseWriter no longer drops the error from the access log.
func TestErrorLoggedThroughWrappingWriter(t *testing.T) {
	var logs strings.Builder
	type wrapped struct{ http.ResponseWriter }
	h := envelope(newRequestIDs(), Signers{A: fakeSigner{}}, nil, zerolog.New(&logs), accessHooks{})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handler(func(w http.ResponseWriter, r *http.Request) error { return ledger.ErrOrderConflict }).ServeHTTP(wrapped{w}, r)
		}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if !strings.Contains(logs.String(), `"code":"order_conflict"`) || !strings.Contains(logs.String(), `"reason":"ledger: `) {
		t.Fatalf("log lacks the error: %s", logs.String())
	}
}

type schemeAuth struct {
	a func(context.Context, signing.Request) (signing.Verified, error)
	b func(context.Context, signing.MessageRequest) (signing.Verified, error)
}

func (s schemeAuth) Verify(ctx context.Context, r signing.Request) (signing.Verified, error) {
	return s.a(ctx, r)
}

func (s schemeAuth) VerifyMessage(ctx context.Context, r signing.MessageRequest) (signing.Verified, error) {
	return s.b(ctx, r)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
