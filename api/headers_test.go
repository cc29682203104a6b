package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/signing"
)

// TestHeadersTooLargeIsSigned: a header block over MaxHeaderBytes is a
// signed 431 headers_too_large before the signature check (no nonce spent),
// on the merchant router; the auditor router answers the same problem
// before the token check; a block just under the limit is served.
func TestHeadersTooLargeIsSigned(t *testing.T) {
	reached := false
	merchant := NewHandler(Deps{
		Auth: authFunc(func(context.Context, signing.Request) (signing.Verified, error) {
			reached = true
			return signing.Verified{Merchant: "M1", KeyID: "K1"}, nil
		}),
		Identify: func(*http.Request) (string, error) { return "M1", nil },
		Signer:   fakeSigner{},
		Platform: noKeys{},
		Log:      zerolog.New(io.Discard),
	})
	tokens := &countingTokens{staticTokens: staticTokens{good: "good.token.value"}}
	auditor, err := NewAuditHandler(AuditDeps{Tokens: tokens, CursorKey: bytes.Repeat([]byte{1}, 32), Log: zerolog.New(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	// padded returns a request whose header block is exactly size bytes.
	padded := func(target, auth string, size int) *http.Request {
		r := httptest.NewRequest("GET", target, nil)
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Pad", "")
		r.Header.Set("X-Pad", strings.Repeat("p", size-headerSize(r)))
		if headerSize(r) != size {
			t.Fatalf("padded to %d, want %d", headerSize(r), size)
		}
		return r
	}
	for _, size := range []int{MaxHeaderBytes, MaxHeaderBytes + 1, 40 << 10} {
		reached = false
		rec := httptest.NewRecorder()
		merchant.ServeHTTP(rec, padded("/v1/certificates", "WECHATPAY2-SHA256-RSA2048 mchid=\"M1\"", size))
		if size <= MaxHeaderBytes {
			if rec.Code != http.StatusOK || !reached {
				t.Fatalf("%d bytes: status %d, verifier reached %v", size, rec.Code, reached)
			}
			continue
		}
		if rec.Code != http.StatusRequestHeaderFieldsTooLarge || reached {
			t.Fatalf("%d bytes: status %d, verifier reached %v: %s", size, rec.Code, reached, rec.Body)
		}
		if code, _ := problemCode(t, rec); code != "headers_too_large" {
			t.Fatalf("%d bytes: code %q", size, code)
		}
		if got, want := rec.Header().Get("Wechatpay-Signature"), "len="+strconv.Itoa(rec.Body.Len()); got != want {
			t.Fatalf("%d bytes: signature %q, want %q", size, got, want)
		}

		tokens.n = 0
		rec = httptest.NewRecorder()
		auditor.ServeHTTP(rec, padded("/v1/audit/trial-balance", "Bearer good.token.value", size))
		if rec.Code != http.StatusRequestHeaderFieldsTooLarge || tokens.n != 0 {
			t.Fatalf("auditor, %d bytes: status %d, token checked %d times", size, rec.Code, tokens.n)
		}
		if code, _ := problemCode(t, rec); code != "headers_too_large" {
			t.Fatalf("auditor, %d bytes: code %q", size, code)
		}
	}
	if MaxHeaderBytes+4<<10 > ServerMaxHeaderBytes {
		t.Fatal("the server's cap leaves no room for Quill's own 431")
	}
}

type countingTokens struct {
	staticTokens
	n int
}

func (c *countingTokens) Verify(ctx context.Context, tok string) (audit.Auditor, error) {
	c.n++
	return c.staticTokens.Verify(ctx, tok)
}

// TestOpenAPIListsHeadersTooLarge: every route sits behind limitHeaders, so
// every operation documents its 431.
func TestOpenAPIListsHeadersTooLarge(t *testing.T) {
	d := loadOpenAPI(t)
	for name, op := range d.operations(t) {
		if _, ok := op.Responses["431"]; !ok {
			t.Errorf("%s does not list 431", name)
		}
	}
}
