package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"
)

// routeTable walks a router's registered routes: pattern → methods.
func routeTable(t *testing.T, h http.Handler) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out[route] = append(out[route], method)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// concrete turns a route pattern into a path it matches.
func concrete(pattern string) string {
	var b strings.Builder
	for _, seg := range strings.Split(pattern, "/") {
		if b.Len() > 0 || seg != "" {
			b.WriteByte('/')
		}
		if strings.HasPrefix(seg, "{") {
			seg = "X1"
		}
		b.WriteString(seg)
	}
	return b.String()
}

// TestMethodNotAllowedCarriesAllow: on both routers, every route answered
// with a method it does not serve is a 405 whose Allow lists exactly the
// methods registered for it (RFC 9110 §15.5.6), the merchant API's signed;
// a method no route serves on a path no route serves is a 404.
func TestMethodNotAllowedCarriesAllow(t *testing.T) {
	merchant := NewHandler(Deps{Signer: fakeSigner{}, Platform: noKeys{}, Log: zerolog.New(io.Discard)})
	auditor, err := NewAuditHandler(AuditDeps{Tokens: staticTokens{good: "good.token.value"}, CursorKey: bytes.Repeat([]byte{1}, 32), Log: zerolog.New(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		h    http.Handler
		auth string
	}{{"merchant", merchant, ""}, {"auditor", auditor, "Bearer good.token.value"}} {
		routes := routeTable(t, c.h)
		if len(routes) < 4 {
			t.Fatalf("%s: only %d routes walked", c.name, len(routes))
		}
		for pattern, methods := range routes {
			slices.Sort(methods)
			for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "FOO"} {
				if slices.Contains(methods, m) {
					continue
				}
				t.Run(c.name+" "+m+" "+pattern, func(t *testing.T) {
					req := httptest.NewRequest(m, concrete(pattern), nil)
					if c.auth != "" {
						req.Header.Set("Authorization", c.auth)
					}
					rec := httptest.NewRecorder()
					c.h.ServeHTTP(rec, req)
					if rec.Code != http.StatusMethodNotAllowed {
						t.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
					if m != "HEAD" { // a HEAD answer has no body
						if code, _ := problemCode(t, rec); code != "method_not_allowed" {
							t.Fatalf("code %q", code)
						}
					}
					got := strings.Split(rec.Header().Get("Allow"), ", ")
					slices.Sort(got)
					if !slices.Equal(got, methods) {
						t.Fatalf("Allow %q, want %v", rec.Header().Get("Allow"), methods)
					}
					if c.name == "merchant" && rec.Header().Get("Wechatpay-Signature") == "" {
						t.Fatal("405 not signed")
					}
				})
			}
		}
		t.Run(c.name+" unknown method on an unknown path", func(t *testing.T) {
			req := httptest.NewRequest("FOO", "/v1/nothing-here", nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			rec := httptest.NewRecorder()
			c.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusNotFound || rec.Header().Get("Allow") != "" {
				t.Fatalf("status %d Allow %q", rec.Code, rec.Header().Get("Allow"))
			}
		})
	}
}
