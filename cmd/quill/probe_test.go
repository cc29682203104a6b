package main

// Regression tests for the request-path defects of issue 5, each through the
// real server over mTLS. Requests that net/http's client would normalise
// (repeated headers, absolute-form targets, raw bytes) are written by hand on
// a TLS connection.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/client"
)

// exchange writes req verbatim on a new mTLS connection as cert and reads one
// response. signed reports whether the response carried a platform signature
// that verifies (net/http's own 400s for unparseable requests carry none).
func (h *harness) exchange(cert *tls.Certificate, req string) (r *client.Response, signed bool) {
	h.t.Helper()
	conn := h.dialTLS(cert)
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		h.t.Fatalf("write: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		h.t.Fatalf("read response to %q: %v", firstLine(req), err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r = &client.Response{Status: res.StatusCode, Header: res.Header, Body: b}
	return r, res.Header.Get("Wechatpay-Signature") != "" && h.verifyResponse(r) == nil
}

func (h *harness) dialTLS(cert *tls.Certificate) *tls.Conn {
	h.t.Helper()
	conf := &tls.Config{RootCAs: h.roots, MinVersion: tls.VersionTLS12, ServerName: "127.0.0.1"}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", strings.TrimPrefix(h.base, "https://"), conf)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	return conn
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// rawRequest renders an HTTP/1.1 request; headers are written in order, as
// given, so a test can repeat one.
func rawRequest(method, target string, headers []string, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, target)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.String()
}

// mustSigned fails unless r is a verified response with status and code.
func mustSigned(t *testing.T, r *client.Response, signed bool, status int, code string) {
	t.Helper()
	if !signed {
		t.Fatalf("response not signed: %d %s", r.Status, r.Body)
	}
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if got := problem(t, r)["code"]; got != code {
		t.Fatalf("code %v, want %s: %s", got, code, r.Body)
	}
}

// TestTrailingBytesAfterBodyRefused is issue 5 item 2: only whitespace may
// follow the JSON object, even when the whole body is signed as sent.
func TestTrailingBytesAfterBodyRefused(t *testing.T) {
	h := server(t)
	user := "u-trail-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "10.00")
	tok := h.token(user)
	for _, suffix := range []string{"garbage", "}", "]", ",", ":", `"`, "/*c*/", "\x00", "{}"} {
		t.Run(fmt.Sprintf("%q", suffix), func(t *testing.T) {
			order := newOrderID()
			body := append(paymentBody(order, "1.00", tok), suffix...)
			r := h.do(demoMerchant, "POST", "/v1/payments", body)
			if r.Status != http.StatusBadRequest || problem(t, r)["code"] != "malformed_json" {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if n := h.entries(order); n != 0 {
				t.Fatalf("%d entries written", n)
			}
		})
	}
	// Trailing whitespace is fine.
	order := newOrderID()
	if r := h.do(demoMerchant, "POST", "/v1/payments", append(paymentBody(order, "1.00", tok), " \r\n\t"...)); r.Status != http.StatusOK {
		t.Fatalf("trailing whitespace: %d %s", r.Status, r.Body)
	}
	if b := h.balance("user:" + user); b != 900 {
		t.Fatalf("balance %d, want 900", b)
	}
}

// TestStringsMustBeUnicodeText is issue 5 item 3: a lone or reversed
// surrogate escape, or invalid raw UTF-8, is a 422 naming the field, never
// stored as U+FFFD.
func TestStringsMustBeUnicodeText(t *testing.T) {
	h := server(t)
	user := "u-utf-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "10.00")
	tok := h.token(user)
	for _, c := range []struct{ name, description string }{
		{"lone high surrogate", `\ud800`},
		{"lone low surrogate", `\udc00`},
		{"reversed pair", `\udc00\ud800`},
		{"high surrogate then letter", `\ud800A`},
		{"invalid raw UTF-8", "caf\xe9"},
		{"UTF-8 encoded surrogate", "\xed\xa0\x80"},
	} {
		t.Run(c.name, func(t *testing.T) {
			order := newOrderID()
			body := fmt.Sprintf(`{"order_id":%q,"amount":"1.00","currency":"CNY","payer_token":%q,"description":"%s"}`, order, tok, c.description)
			r := h.do(demoMerchant, "POST", "/v1/payments", []byte(body))
			if r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			p := problem(t, r)
			errs, _ := p["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["field"] != "description" || errs[0].(map[string]any)["code"] != "encoding" {
				t.Fatalf("errors %v, want one encoding error on description", p["errors"])
			}
			if n := h.entries(order); n != 0 {
				t.Fatalf("%d entries written", n)
			}
		})
	}
	// A valid surrogate pair is text like any other.
	order := newOrderID()
	body := fmt.Sprintf(`{"order_id":%q,"amount":"1.00","currency":"CNY","payer_token":%q,"description":"\ud83d\ude00"}`, order, tok)
	if r := h.do(demoMerchant, "POST", "/v1/payments", []byte(body)); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "\U0001F600") {
		t.Fatalf("valid pair: %d %s", r.Status, r.Body)
	}
}
