package main

// Regression tests for the request-path defects of issue 5, each through the
// real server over mTLS. Requests that net/http's client would normalise
// (repeated headers, absolute-form targets, raw bytes) are written by hand on
// a TLS connection.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, target)
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

// TestRepeatedAuthorizationRefused is issue 5 item 1: a second Authorization
// header, before or after a valid one, is refused before the nonce is spent
// and writes nothing.
func TestRepeatedAuthorizationRefused(t *testing.T) {
	h := server(t)
	user := "u-twoauth-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "10.00")
	cert := h.certs[demoMerchant]
	order := newOrderID()
	body := paymentBody(order, "1.00", h.token(user))
	auth := h.sign(demoMerchant, nil, "", "POST", "/v1/payments", body, h.clock.Now())
	ct := "Content-Type: application/json"
	for _, c := range []struct {
		name    string
		headers []string
	}{
		{"junk after", []string{"Authorization: " + auth, "Authorization: Bearer junk", ct}},
		{"junk before", []string{"Authorization: Bearer junk", "Authorization: " + auth, ct}},
		{"same twice", []string{"Authorization: " + auth, "authorization: " + auth, ct}},
		{"two content types", []string{"Authorization: " + auth, ct, "Content-Type: text/plain"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, signed := h.exchange(&cert, rawRequest("POST", "/v1/payments", c.headers, body))
			mustSigned(t, r, signed, http.StatusBadRequest, "malformed_request")
			if n := h.entries(order); n != 0 {
				t.Fatalf("%d entries written", n)
			}
		})
	}
	// No nonce was spent: the same signed header alone is accepted once.
	r, signed := h.exchange(&cert, rawRequest("POST", "/v1/payments", []string{"Authorization: " + auth, ct}, body))
	if !signed || r.Status != http.StatusOK {
		t.Fatalf("single header: %d %s", r.Status, r.Body)
	}
	if b := h.balance("user:" + user); b != 900 {
		t.Fatalf("balance %d, want 900", b)
	}
}

// TestAbsoluteFormTargetRefused is issue 5 item 5: a request-target naming a
// host (another one, or http:// on the TLS port, or even this server's own)
// is refused even when signed over exactly that target.
func TestAbsoluteFormTargetRefused(t *testing.T) {
	h := server(t)
	user := "u-abs-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "10.00")
	cert := h.certs[demoMerchant]
	for _, target := range []string{
		"https://evil.example/v1/payments",
		"http://" + strings.TrimPrefix(h.base, "https://") + "/v1/payments",
		h.base + "/v1/payments",
	} {
		t.Run(target, func(t *testing.T) {
			order := newOrderID()
			body := paymentBody(order, "1.00", h.token(user))
			auth := h.sign(demoMerchant, nil, "", "POST", target, body, h.clock.Now())
			r, signed := h.exchange(&cert, rawRequest("POST", target, []string{"Authorization: " + auth, "Content-Type: application/json"}, body))
			mustSigned(t, r, signed, http.StatusBadRequest, "malformed_request")
			if !strings.Contains(fmt.Sprint(problem(t, r)["detail"]), "origin form") {
				t.Fatalf("detail does not say why: %s", r.Body)
			}
			if n := h.entries(order); n != 0 {
				t.Fatalf("%d entries written", n)
			}
		})
	}
	var n int
	if err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM entries WHERE evidence_target NOT LIKE '/%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d entries recorded with a target not in origin form", n)
	}
	if b := h.balance("user:" + user); b != 1000 {
		t.Fatalf("balance %d, want 1000", b)
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the log lines that contain every one of words.
func (s *syncBuffer) lines(words ...string) []string {
	var out []string
	for _, l := range strings.Split(s.String(), "\n") {
		ok := l != ""
		for _, w := range words {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// TestSlowBodyIs408 is issue 5 item 7: a body that does not arrive within
// the read timeout is the client's fault — 408, logged as a warning.
func TestSlowBodyIs408(t *testing.T) {
	logs := &syncBuffer{}
	h := startServerWith(t, serverOptions{
		config: func(c *config) { c.ReadTimeout = time.Second },
		logs:   logs,
	})
	cert := h.certs[demoMerchant]
	body := paymentBody(newOrderID(), "1.00", "tok")
	auth := h.sign(demoMerchant, nil, "", "POST", "/v1/payments", body, h.clock.Now())
	conn := h.dialTLS(&cert)
	defer conn.Close()
	head := rawRequest("POST", "/v1/payments", []string{"Authorization: " + auth, "Content-Type: application/json"}, body)
	// Everything but the last 10 body bytes, then nothing: the read timeout
	// (1 s) passes while the handler waits for the body.
	if _, err := io.WriteString(conn, head[:len(head)-10]); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	r := &client.Response{Status: res.StatusCode, Header: res.Header, Body: b}
	mustSigned(t, r, h.verifyResponse(r) == nil, http.StatusRequestTimeout, "request_timeout")
	h.stop()
	lines := logs.lines(`"status":408`)
	if len(lines) != 1 || !strings.Contains(lines[0], `"level":"warn"`) {
		t.Fatalf("want one warn access line for the 408, got %q", lines)
	}
	if errs := logs.lines(`"level":"error"`); len(errs) != 0 {
		t.Fatalf("error lines logged: %q", errs)
	}
}

// prober sends hand-written requests over one keep-alive mTLS connection,
// dialling again whenever the server closes it.
type prober struct {
	h    *harness
	cert *tls.Certificate
	conn *tls.Conn
	br   *bufio.Reader
}

// send writes req and returns the response status (0 if none came back).
// It may be called from several goroutines, each with its own prober.
func (p *prober) send(req string) int {
	for attempt := 0; ; attempt++ {
		fresh := p.conn == nil
		if fresh {
			p.conn = p.h.dialTLS(p.cert)
			p.br = bufio.NewReader(p.conn)
		}
		_, err := io.WriteString(p.conn, req)
		var res *http.Response
		if err == nil {
			res, err = http.ReadResponse(p.br, nil)
		}
		if err != nil {
			p.close()
			if fresh || attempt > 0 {
				p.h.t.Errorf("%q: no response: %v", firstLine(req), err)
				return 0
			}
			continue // the server closed an idle connection: once more on a new one
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.Close {
			p.close()
		}
		return res.StatusCode
	}
}

func (p *prober) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// TestNoClientByteCausesA500 is issue 5 item 4: every byte value, raw and
// percent-encoded, in the path, in the query and in header values, is
// answered without a 5xx and without an error-level log line. The requests
// are correctly signed (but for the Authorization variant) so each byte
// reaches the handler, and with an escaped query the ledger (the target is
// stored as evidence), not only the signature check.
func TestNoClientByteCausesA500(t *testing.T) {
	logs := &syncBuffer{}
	h := startServerWith(t, serverOptions{logs: logs, config: func(c *config) { c.RedisTimeout = 5 * time.Second }})
	user := "u-bytes-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "10.00")
	tok := h.token(user)
	cert := h.certs[demoMerchant]
	now := h.clock.Now()
	get := func(target string, extra ...string) string {
		auth := h.sign(demoMerchant, nil, "", "GET", target, nil, now)
		return rawRequest("GET", target, append([]string{"Authorization: " + auth}, extra...), nil)
	}
	post := func(target, contentType, amount string) string {
		body := paymentBody(newOrderID(), amount, tok)
		auth := h.sign(demoMerchant, nil, "", "POST", target, body, now)
		return rawRequest("POST", target, []string{"Authorization: " + auth, "Content-Type: " + contentType}, body)
	}
	brokenAuth := h.sign(demoMerchant, nil, "", "GET", "/v1/payments/ORD1", nil, now)
	var mu sync.Mutex
	statuses := map[int]int{}
	probe := func(p *prober, b int) {
		raw, pct := string([]byte{byte(b)}), fmt.Sprintf("%%%02X", b)
		for what, req := range map[string]string{
			"raw byte in path":            get("/v1/payments/ORD1" + raw + "2"),
			"escaped byte in path":        get("/v1/payments/ORD1" + pct + "2"),
			"raw byte in GET query":       get("/v1/payments/ORD1?q=" + raw + "2"),
			"escaped byte in GET query":   get("/v1/payments/ORD1?q=" + pct),
			"raw byte in POST query":      post("/v1/payments?q="+raw+"2", "application/json", "0.00"),
			"escaped byte in POST query":  post("/v1/payments?q="+pct, "application/json", "0.01"),
			"byte in a header value":      get("/v1/payments/ORD1", "X-Probe: a"+raw+"b"),
			"byte in Content-Type":        post("/v1/payments", "application/json"+raw, "0.00"),
			"byte in Authorization value": rawRequest("GET", "/v1/payments/ORD1", []string{"Authorization: " + brokenAuth + raw}, nil),
		} {
			status := p.send(req)
			mu.Lock()
			statuses[status]++
			mu.Unlock()
			// A 503 says a dependency was slow (this machine is shared), not
			// that a byte broke anything; every other 5xx is a failure.
			if status >= 500 && status != http.StatusServiceUnavailable {
				t.Errorf("%s 0x%02X: status %d", what, b, status)
			}
		}
	}
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &prober{h: h, cert: &cert}
			defer p.close()
			for b := w; b < 256; b += workers {
				probe(p, b)
			}
		}()
	}
	wg.Wait()
	t.Logf("statuses: %v", statuses)
	if statuses[http.StatusOK] == 0 || statuses[http.StatusNotFound] == 0 {
		t.Fatalf("the probe never reached the handlers: %v", statuses)
	}
	h.stop()
	if errs := logs.lines(`"level":"error"`, `"code":"internal"`); len(errs) != 0 {
		t.Fatalf("%d internal errors logged, first: %s", len(errs), errs[0])
	}
}

// TestEveryLogLineIsJSONWithLevel is issue 5 item 8: with Redis unreachable
// and clients failing their TLS handshakes, every line the server writes is
// one JSON object with a level; go-redis's own messages are among them, and
// the handshake failures are one summary line with their count, not a line
// each.
func TestEveryLogLineIsJSONWithLevel(t *testing.T) {
	logs := &syncBuffer{}
	h := startServerWith(t, serverOptions{logs: logs, config: func(c *config) {
		c.ConnLogInterval = time.Hour // only the summary written at shutdown
	}})
	h.do(demoMerchant, "GET", "/v1/certificates", nil) // the client now knows the platform key
	// Redis goes away for good: pooled connections are cut, new dials refused.
	h.proxy.set(proxyStopped)
	h.proxy.ln.Close()
	user := "u-logs-" + fmt.Sprint(time.Now().UnixNano())
	for i := 0; i < 2; i++ {
		if r := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(newOrderID(), "1.00", h.token(user))); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("with Redis down: %d %s", r.Status, r.Body)
		}
	}
	const failures = 5
	for i := 0; i < failures; i++ {
		if _, err := h.httpClient(nil).Get(h.base + "/v1/certificates"); err == nil {
			t.Fatal("served without a client certificate")
		}
	}
	h.stop()

	var redisLines, summaries int
	for _, line := range strings.Split(strings.TrimRight(logs.String(), "\n"), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not one JSON object: %q", line)
		}
		switch ev["level"] {
		case "debug", "info", "warn", "error":
		default:
			t.Fatalf("no level: %q", line)
		}
		if strings.Contains(line, "TLS handshake error") {
			t.Fatalf("a handshake failure logged on its own: %q", line)
		}
		if ev["component"] == "redis" {
			redisLines++
		}
		if ev["message"] == "connection summary" {
			summaries++
			if ev["tls_handshake_failures"] != float64(failures) || ev["last_failure"] == nil {
				t.Fatalf("summary %q, want %d failures and a sample", line, failures)
			}
		}
	}
	if redisLines == 0 {
		t.Fatalf("no go-redis line captured while Redis was down:\n%s", logs)
	}
	if summaries != 1 {
		t.Fatalf("%d summary lines, want 1", summaries)
	}
}

// forgedAuth is what a client holding only a merchant's certificate can
// send: a well-formed header whose signature does not verify.
func (h *harness) forgedAuth(merchant string) string {
	h.t.Helper()
	return h.sign(merchant, forgeKey(h.t), h.clients[merchant].KeyID, "GET", "/v1/certificates", nil, h.clock.Now())
}

var forged struct {
	once sync.Once
	key  *rsa.PrivateKey
}

func forgeKey(t testing.TB) *rsa.PrivateKey {
	forged.once.Do(func() { forged.key = rsaKey(t) })
	return forged.key
}

// TestRefusalsThrottledPerMerchant is issue 5 item 6 (failures): past the
// limit, a merchant's refused requests get a signed 429 with Retry-After whose
// signature is reused, not computed per request; its correctly signed
// requests and other merchants are unaffected; the window ends.
func TestRefusalsThrottledPerMerchant(t *testing.T) {
	h := startServerWith(t, serverOptions{config: func(c *config) {
		c.AuthFailMax, c.AuthFailWindow = 3, 10*time.Second
	}})
	attacker := h.certs[otherMerch]
	bad := func() *client.Response {
		return h.raw(&attacker, "GET", "/v1/certificates", nil, h.forgedAuth(otherMerch))
	}
	for i := 0; i < 3; i++ {
		if r := bad(); r.Status != http.StatusUnauthorized {
			t.Fatalf("refusal %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	var sig string
	for i := 0; i < 3; i++ {
		r := bad() // raw fails the test unless the response verifies
		if r.Status != http.StatusTooManyRequests || problem(t, r)["code"] != "too_many_failures" || r.Header.Get("Retry-After") != "10" {
			t.Fatalf("throttled: %d Retry-After %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
		}
		if i == 0 {
			sig = r.Header.Get("Wechatpay-Signature")
		} else if r.Header.Get("Wechatpay-Signature") != sig {
			t.Fatal("each 429 signed afresh")
		}
	}
	if r := h.do(otherMerch, "GET", "/v1/certificates", nil); r.Status != http.StatusOK {
		t.Fatalf("correctly signed request while throttled: %d %s", r.Status, r.Body)
	}
	demo := h.certs[demoMerchant]
	if r := h.raw(&demo, "GET", "/v1/certificates", nil, h.forgedAuth(demoMerchant)); r.Status != http.StatusUnauthorized {
		t.Fatalf("another merchant throttled: %d", r.Status)
	}
	h.clock.Advance(10 * time.Second)
	if r := bad(); r.Status != http.StatusUnauthorized {
		t.Fatalf("after the window: %d %s", r.Status, r.Body)
	}
}

// TestConnectionCapPerMerchant is issue 5 item 6 (connections) through the
// real server: a merchant's connections past its cap are closed after the
// handshake, without an answer; other merchants and a freed slot are served.
func TestConnectionCapPerMerchant(t *testing.T) {
	h := startServerWith(t, serverOptions{config: func(c *config) { c.MaxConnsPerMerchant = 2 }})
	demo, other := h.certs[demoMerchant], h.certs[otherMerch]
	// served reports whether a request on conn gets an answer.
	served := func(conn *tls.Conn) bool {
		auth := h.forgedAuth(demoMerchant) // any answer will do: a 401 is one
		if _, err := io.WriteString(conn, rawRequest("GET", "/v1/certificates", []string{"Authorization: " + auth}, nil)); err != nil {
			return false
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	}
	a, b := h.dialTLS(&demo), h.dialTLS(&demo)
	defer a.Close()
	defer b.Close()
	if !served(a) || !served(b) {
		t.Fatal("connections under the cap refused")
	}
	c := h.dialTLS(&demo) // the TLS 1.3 client finishes before the server refuses
	defer c.Close()
	if served(c) {
		t.Fatal("a third connection of the same merchant was served over a cap of 2")
	}
	o := h.dialTLS(&other)
	defer o.Close()
	if !served(o) {
		t.Fatal("another merchant refused")
	}
	a.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := h.dialTLS(&demo)
		ok := served(d)
		d.Close()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection served after one of the merchant's closed")
		}
		time.Sleep(20 * time.Millisecond) // the server sees the close asynchronously
	}
}
