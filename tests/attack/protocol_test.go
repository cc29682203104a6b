package attack

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/internal/devenv"
)

// TestMethodNotAllowedSaysAllow: a 405 carries Allow (RFC 9110) with the
// methods the path serves, signed on the merchant API, on the auditor API
// too; nothing is verified or claimed for it.
func TestMethodNotAllowedSaysAllow(t *testing.T) {
	s := shared(t)
	for _, c := range []struct{ method, target, allow string }{
		{"DELETE", "/v1/payments", "GET, POST"},
		{"PUT", "/v1/certificates", "GET"},
		{"POST", "/v1/payments/ORD100000000001", "GET"},
		{"PATCH", "/v1/deposits", "POST"},
		{"OPTIONS", "/v1/payments", "GET, POST"},
	} {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			before := s.state(t)
			r := s.sign(t, honest, c.method, c.target, nil)
			res := s.exchange(t, s.cert(honest), r.raw())
			refused(t, res, http.StatusMethodNotAllowed, "method_not_allowed", "")
			if got := res.Header.Get("Allow"); got != c.allow {
				t.Fatalf("Allow %q, want %q", got, c.allow)
			}
			s.unchanged(t, before)
			if s.nonceClaimed(t, honest, r.nonce) {
				t.Fatal("a 405 claimed the nonce")
			}
		})
	}
	tok, err := devenv.AuditorToken(s.dir, "alice", audit.All, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sent.add(tok)
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest("POST", s.audit+"/v1/audit/trial-balance", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET" {
		t.Fatalf("auditor: %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

// TestOversizedHeaders: a header block over 16 KiB is answered by Quill,
// signed (431 headers_too_large), over HTTP/1.1 and HTTP/2, before the
// signature is checked (the merchant API speaks HTTP/1.1 only; the auditor
// API, over HTTP/2 too, answers the same problem); only past net/http's cap of 64 KiB is the 431
// net/http's own, unsigned text/plain — the one documented exception
// (docs/PROTOCOL.md "Responses that cannot be signed"). Nothing changes
// either way.
func TestOversizedHeaders(t *testing.T) {
	s := shared(t)
	_, tok := s.wallet(t, "10.00")
	pad := func(n int) string { return "X-Pad: " + strings.Repeat("p", n) }
	for _, size := range []int{api.MaxHeaderBytes + 1024, 40 << 10, api.ServerMaxHeaderBytes - 2048} {
		t.Run("signed "+itoa(size), func(t *testing.T) {
			before := s.state(t)
			r := s.sign(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok))
			refused(t, s.exchange(t, s.cert(honest), r.raw(pad(size))), http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "")
			s.unchanged(t, before)
			if s.nonceClaimed(t, honest, r.nonce) {
				t.Fatal("the nonce was claimed")
			}
		})
	}
	t.Run("just under the limit is served", func(t *testing.T) {
		r := s.sign(t, honest, "GET", "/v1/certificates", nil)
		raw := r.raw(pad(1))
		res := s.exchange(t, s.cert(honest), r.raw(pad(api.MaxHeaderBytes-len(raw)-64)))
		if res.Status != http.StatusOK || !res.Signed {
			t.Fatalf("%d signed=%v %s", res.Status, res.Signed, res.Body)
		}
	})
	t.Run("past the server's cap: net/http's own, unsigned", func(t *testing.T) {
		before := s.state(t)
		r := s.sign(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", tok))
		res, err := s.tryExchange(s.cert(honest), nil, r.raw(pad(api.ServerMaxHeaderBytes+8<<10)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != http.StatusRequestHeaderFieldsTooLarge || res.Signed || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("%d signed=%v %q: %s", res.Status, res.Signed, res.Header.Get("Content-Type"), res.Body)
		}
		s.unchanged(t, before)
	})
	t.Run("auditor API over HTTP/2", func(t *testing.T) {
		tok, err := devenv.AuditorToken(s.dir, "alice", audit.All, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		sent.add(tok)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", s.audit+"/v1/audit/trial-balance", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Pad", strings.Repeat("p", 20<<10))
		res, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.ProtoMajor != 2 || res.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !bytes.Contains(b, []byte(`"code":"headers_too_large"`)) {
			t.Fatalf("%s %d: %s", res.Proto, res.StatusCode, b)
		}
	})
}
