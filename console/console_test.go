package console

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func do(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "https://127.0.0.1:8444"+target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	h := Handler(Options{Log: zerolog.Nop()})
	for _, c := range []struct {
		target      string
		status      int
		contentType string
	}{
		{"/console/", 200, "text/html; charset=utf-8"},
		{"/console/index.html", 200, "text/html; charset=utf-8"},
		{"/console/js/app.js", 200, "text/javascript; charset=utf-8"},
		{"/console/console.css", 200, "text/css; charset=utf-8"},
		{"/console/favicon.svg", 200, "image/svg+xml"},
		{"/console/config.json", 200, "application/json"},
		{"/console/nope.js", 404, ""},
		{"/console/js/", 404, ""},
		{"/console/js", 404, ""}, // a directory is not an asset
		{"/console/dev-token", 404, "application/problem+json"},
	} {
		t.Run(c.target, func(t *testing.T) {
			w := do(t, h, "GET", c.target)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if c.contentType != "" && w.Header().Get("Content-Type") != c.contentType {
				t.Errorf("Content-Type %q, want %q", w.Header().Get("Content-Type"), c.contentType)
			}
			for k, v := range map[string]string{
				"Content-Security-Policy": ContentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"X-Frame-Options":         "DENY",
			} {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	csp := ContentSecurityPolicy
	for _, must := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(csp, must) {
			t.Errorf("CSP lacks %q", must)
		}
	}
	for _, never := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*", "data:"} {
		if strings.Contains(csp, never) {
			t.Errorf("CSP allows %q", never)
		}
	}
}

// The pages carry no inline script or style and load nothing from elsewhere.
// A Range header is ignored: an asset is always answered whole (the assets
// are small, and Range parsing is what GO-2026-6609 makes costly).
func TestAssetIgnoresRange(t *testing.T) {
	h := Handler(Options{Log: zerolog.Nop()})
	r := httptest.NewRequest("GET", "/console/js/app.js", nil)
	r.Header.Set("Range", "bytes=0-0,1-1,2-2")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	want, err := assets.ReadFile("assets/js/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), want) {
		t.Fatalf("status %d, %d bytes; want 200 and the whole %d-byte file", w.Code, w.Body.Len(), len(want))
	}
}

func TestAssetsAreSelfContained(t *testing.T) {
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|\son[a-z]+\s*=|<style|style\s*=|javascript:`)
	external := regexp.MustCompile(`(?i)(?:src|href)\s*=\s*["']?(?:https?:)?//`)
	n := 0
	fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(assets, path)
		n++
		if strings.HasSuffix(path, ".html") {
			if m := inline.Find(b); m != nil {
				t.Errorf("%s: inline script or style: %q", path, m)
			}
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s: external reference %q", path, m)
		}
		for _, bad := range []string{"eval(", "new Function", "innerHTML", "document.write", "localStorage", "document.cookie"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", path, bad)
			}
		}
		return nil
	})
	if n < 7 {
		t.Fatalf("only %d assets embedded", n)
	}
}

func TestDevTokenOnlyInDevMode(t *testing.T) {
	off := Handler(Options{Log: zerolog.Nop()})
	for _, m := range []string{"GET", "POST"} {
		if w := do(t, off, m, "/console/dev-token"); w.Code != http.StatusNotFound {
			t.Errorf("not dev: %s dev-token = %d, want 404", m, w.Code)
		}
	}
	var conf struct {
		Dev bool `json:"dev_sign_in"`
	}
	if err := json.Unmarshal(do(t, off, "GET", "/console/config.json").Body.Bytes(), &conf); err != nil || conf.Dev {
		t.Errorf("not dev: config %+v, %v", conf, err)
	}

	minted := 0
	on := Handler(Options{Log: zerolog.Nop(), DevToken: func(context.Context) (string, error) { minted++; return "tok", nil }})
	if w := do(t, on, "GET", "/console/dev-token"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("dev: GET dev-token = %d, want 405", w.Code)
	}
	for _, hdr := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Site", "same-site"}, {"Origin", "https://evil.example"}} {
		if w := do(t, on, "POST", "/console/dev-token", hdr...); w.Code != http.StatusForbidden {
			t.Errorf("dev: POST dev-token with %v = %d, want 403", hdr, w.Code)
		}
	}
	if minted != 0 {
		t.Fatalf("refused requests minted %d tokens", minted)
	}
	w := do(t, on, "POST", "/console/dev-token", "Sec-Fetch-Site", "same-origin", "Origin", "https://127.0.0.1:8444")
	var tok struct{ Token string }
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &tok) != nil || tok.Token != "tok" || minted != 1 {
		t.Fatalf("dev: POST dev-token = %d %s (minted %d)", w.Code, w.Body, minted)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("dev token Cache-Control %q", cc)
	}
	if err := json.Unmarshal(do(t, on, "GET", "/console/config.json").Body.Bytes(), &conf); err != nil || !conf.Dev {
		t.Errorf("dev: config %+v, %v", conf, err)
	}
}
