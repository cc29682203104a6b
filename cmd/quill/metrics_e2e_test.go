package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/signing"
)

// scrape fetches /metrics from the ops listener and parses the text format.
func (h *harness) scrape() map[string]*dto.MetricFamily {
	h.t.Helper()
	res, err := http.Get(h.ops + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		h.t.Fatalf("/metrics: status %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		h.t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs
}

// sample is the value of the series of family name whose labels include all
// of want (for a histogram, its sample count), summed over the matches, and
// how many series matched.
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, int) {
	mf := mfs[name]
	if mf == nil {
		return 0, 0
	}
	var sum float64
	var n int
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		n++
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum, n
}

// quillSeries counts the series of every quill_* family.
func quillSeries(mfs map[string]*dto.MetricFamily) int {
	n := 0
	for name, mf := range mfs {
		if strings.HasPrefix(name, "quill_") {
			n += len(mf.GetMetric())
		}
	}
	return n
}

// TestMetricsAfterRealRequests drives the real server over mTLS (deposits,
// payments, a query, an unknown route, forged signatures until the failure
// limiter throttles, a handshake that fails) and checks each series /metrics
// then shows, with its labels and count.
func TestMetricsAfterRealRequests(t *testing.T) {
	h := startServerWith(t, serverOptions{config: func(c *config) { c.AuthFailMax = 3 }})
	user := "u-metrics-" + testenv.Random(6)
	h.deposit(user, "50.00")
	order := newOrderID()
	if r := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, "1.00", h.token(user))); r.Status != http.StatusOK {
		t.Fatalf("payment: %d %s", r.Status, r.Body)
	}
	if r := h.do(demoMerchant, "GET", "/v1/payments/"+order, nil); r.Status != http.StatusOK {
		t.Fatalf("query: %d %s", r.Status, r.Body)
	}
	cert := h.certs[demoMerchant]
	if r := h.raw(&cert, "GET", "/no/such/route", nil, ""); r.Status != http.StatusNotFound {
		t.Fatalf("unknown route: %d", r.Status)
	}
	// The 404 was the first refusal; two forged signatures reach the limit
	// of 3, the third is throttled.
	for i, want := range []int{401, 401, 429} {
		if r := h.raw(&cert, "GET", "/v1/certificates", nil, h.forgedAuth(demoMerchant)); r.Status != want {
			t.Fatalf("forged request %d: status %d, want %d", i, r.Status, want)
		}
	}
	// Something that is not TLS at all: a failed handshake.
	c, err := net.Dial("tcp", strings.TrimPrefix(h.base, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET / HTTP/1.0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Read(make([]byte, 64))
	c.Close()

	var mfs map[string]*dto.MetricFamily
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mfs = h.scrape()
		if v, _ := sample(mfs, "quill_tls_handshake_failures_total", nil); v >= 1 || time.Now().After(deadline) {
			break
		}
	}

	requests := []struct {
		route, method, status, code string
		n                           float64
	}{
		{"/v1/deposits", "POST", "200", "none", 1},
		{"/v1/payments", "POST", "200", "none", 1},
		{"/v1/payments/{order_id}", "GET", "200", "none", 1},
		// the TOPUP and M100 clients each fetch the platform keys once
		{"/v1/certificates", "GET", "200", "none", 2},
		{"unmatched", "GET", "404", "not_found", 1},
		{"/v1/certificates", "GET", "401", "signature_invalid", 2},
		{"/v1/certificates", "GET", "429", "too_many_failures", 1},
	}
	var total float64
	for _, r := range requests {
		labels := map[string]string{"route": r.route, "method": r.method, "status": r.status, "code": r.code}
		if v, n := sample(mfs, "quill_http_requests_total", labels); v != r.n || n != 1 {
			t.Errorf("requests %v = %v in %d series, want %v in 1", labels, v, n, r.n)
		}
		total += r.n
	}
	if v, n := sample(mfs, "quill_http_requests_total", nil); v != total || n != len(requests) {
		t.Errorf("%v requests in %d series, want %v in %d", v, n, total, len(requests))
	}
	if v, n := sample(mfs, "quill_http_request_duration_seconds", map[string]string{"route": "/v1/payments", "method": "POST"}); v != 1 || n != 1 {
		t.Errorf("payment latency observations %v in %d series, want 1 in 1", v, n)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), order) || strings.Contains(l.GetValue(), "/no/such") {
					t.Errorf("%s has label %s=%q: a raw path reached a label", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}

	// Verification: deposit, payment, query and the two key fetches ok; three
	// forged (the third verified, then throttled). One backend, the one the
	// server chose.
	backend := ""
	for _, m := range mfs["quill_signature_verifications_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "backend" {
				if backend != "" && l.GetValue() != backend {
					t.Errorf("two backends: %s and %s", backend, l.GetValue())
				}
				backend = l.GetValue()
			}
		}
	}
	if backend != "go" && backend != "openssl" {
		t.Fatalf("backend label %q", backend)
	}
	ver := map[string]string{"scheme": "wechatpay", "algorithm": "rsa-v1_5-sha256", "backend": backend}
	for result, want := range map[string]float64{"ok": 5, "bad_signature": 3} {
		ver["result"] = result
		if v, _ := sample(mfs, "quill_signature_verifications_total", ver); v != want {
			t.Errorf("verifications %v = %v, want %v", ver, v, want)
		}
	}
	// Every answer is signed by the envelope but the throttled 429, which is
	// signed once and reused: 9 signatures for 10 answers.
	sig := map[string]string{"scheme": "wechatpay", "algorithm": "rsa-v1_5-sha256", "backend": backend, "result": "ok"}
	if v, _ := sample(mfs, "quill_response_signatures_total", sig); v != 9 {
		t.Errorf("response signatures %v = %v, want 9", sig, v)
	}
	if v, _ := sample(mfs, "quill_response_signature_duration_seconds", nil); v != 9 {
		t.Errorf("response signature timings: %v, want 9", v)
	}
	// Only verified requests claim a nonce.
	if v, _ := sample(mfs, "quill_nonce_claims_total", map[string]string{"result": "ok"}); v != 5 {
		t.Errorf("nonce claims ok = %v, want 5", v)
	}
	if v, _ := sample(mfs, "quill_nonce_claim_duration_seconds", nil); v != 5 {
		t.Errorf("nonce claim timings = %v, want 5", v)
	}
	// The ledger wrote two entries (deposit, payment), in one commit each.
	batches, _ := sample(mfs, "quill_ledger_batch_entries", nil)
	var entries float64
	for _, m := range mfs["quill_ledger_batch_entries"].GetMetric() {
		entries += m.GetHistogram().GetSampleSum()
	}
	if batches != 2 || entries != 2 {
		t.Errorf("ledger: %v batches of %v entries, want 2 and 2", batches, entries)
	}
	if v, _ := sample(mfs, "quill_ledger_commit_duration_seconds", nil); v != batches {
		t.Errorf("%v commit timings for %v batches", v, batches)
	}
	if v, n := sample(mfs, "quill_ledger_queue_depth", nil); v != 0 || n != 1 {
		t.Errorf("queue depth %v (%d series), want 0", v, n)
	}
	// The probe's limiters.
	if v, _ := sample(mfs, "quill_auth_failures_throttled_total", nil); v != 1 {
		t.Errorf("throttled = %v, want 1", v)
	}
	if v, _ := sample(mfs, "quill_tls_handshake_failures_total", nil); v != 1 {
		t.Errorf("handshake failures = %v, want 1", v)
	}
	for _, limit := range []string{"max_conns", "max_conns_per_merchant"} {
		if v, n := sample(mfs, "quill_conns_refused_total", map[string]string{"limit": limit}); v != 0 || n != 1 {
			t.Errorf("refused %s = %v (%d series), want 0 in 1", limit, v, n)
		}
	}
	if _, n := sample(mfs, "quill_conns_open", nil); n != 1 {
		t.Error("no open-connections gauge")
	}
	// The dev file store has no staleness to report.
	if _, n := sample(mfs, "quill_keys_age_seconds", nil); n != 0 {
		t.Error("key age exported for the file store")
	}
}

// TestMetricsCardinalityBounded sends 1,000 requests to distinct random
// paths — unknown routes with assorted methods, and signed queries of
// random order ids — and checks the series count does not grow with them:
// labels carry route patterns, never paths.
func TestMetricsCardinalityBounded(t *testing.T) {
	h := startServer(t)
	cert := h.certs[demoMerchant]
	hc := h.httpClient(&cert)
	defer hc.CloseIdleConnections()
	methods := []string{"GET", "POST", "DELETE", "BREW", "X-" + testenv.Random(4)}
	send := func(i int) {
		if i%4 == 0 {
			r, err := h.clients[demoMerchant].Do(context.Background(), "GET", "/v1/payments/ORD"+testenv.Random(12), nil)
			if err != nil || r.Status != http.StatusNotFound {
				t.Errorf("random order query: %v %v", r, err)
			}
			return
		}
		req, _ := http.NewRequest(methods[i%len(methods)], h.base+"/"+testenv.Random(10)+"/"+fmt.Sprint(i), nil)
		res, err := hc.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		res.Body.Close()
	}
	for i := range 100 {
		send(i)
	}
	before := quillSeries(h.scrape())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 100 + w; i < 1000; i += 4 {
				send(i)
			}
		}()
	}
	wg.Wait()
	mfs := h.scrape()
	if after := quillSeries(mfs); after != before {
		t.Errorf("%d quill_* series after 1,000 distinct paths, %d after the first 100", after, before)
	}
	// 1,000 and M100's client's one fetch of the platform keys.
	if v, _ := sample(mfs, "quill_http_requests_total", nil); v != 1001 {
		t.Errorf("%v requests counted, want 1001", v)
	}
	if _, n := sample(mfs, "quill_http_requests_total", nil); n > 6 {
		t.Errorf("%d request series for 1,000 paths", n)
	}
	if v, _ := sample(mfs, "quill_http_requests_total", map[string]string{"route": "/v1/payments/{order_id}", "status": "404"}); v != 250 {
		t.Errorf("%v random order queries under the route pattern, want 250", v)
	}
}

// TestRefusalLogLine checks what an operator reads about a refusal: the
// merchant the certificate identified (not the one the header claims), the
// remote address, the reason code and latency in milliseconds, and no
// credentials: not the Authorization header, the signature, the payer token
// or the body.
func TestRefusalLogLine(t *testing.T) {
	logs := &syncBuffer{}
	h := startServerWith(t, serverOptions{logs: logs})
	cert := h.certs[demoMerchant]
	token := h.token("42")
	body := paymentBody(newOrderID(), "1.00", token)
	// Signed with M200's name by a key that is not M200's, over M100's
	// certificate: the header's mchid does not match the certificate.
	wrongMerchant := h.sign(otherMerch, forgeKey(t), h.clients[otherMerch].KeyID, "POST", "/v1/payments", body, h.clock.Now())
	forged := h.sign(demoMerchant, forgeKey(t), h.clients[demoMerchant].KeyID, "POST", "/v1/payments", body, h.clock.Now())
	for _, auth := range []string{wrongMerchant, forged} {
		if r := h.raw(&cert, "POST", "/v1/payments", body, auth); r.Status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", r.Status)
		}
	}
	// A verified request the merchant may not make: 403.
	dep := fmt.Sprintf(`{"order_id":%q,"user_id":"42","amount":"1.00","currency":"CNY"}`, newOrderID())
	if r := h.do(demoMerchant, "POST", "/v1/deposits", []byte(dep)); r.Status != http.StatusForbidden {
		t.Fatalf("deposit by M100: %d, want 403", r.Status)
	}
	h.stop()

	secrets := []string{token, string(body[len(body)/2:])}
	for _, auth := range []string{wrongMerchant, forged} {
		secrets = append(secrets, auth, auth[strings.Index(auth, `signature="`)+11:][:40])
	}
	var refusals int
	for _, line := range strings.Split(logs.String(), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) != nil || ev["message"] != "request" {
			continue
		}
		status, _ := ev["status"].(float64)
		if status != 401 && status != 403 {
			continue
		}
		refusals++
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line contains a credential or the body (%.20q…): %s", s, line)
			}
		}
		want := map[float64]string{401: "signature_invalid", 403: "forbidden"}[status]
		if ev["merchant"] != demoMerchant || ev["code"] != want {
			t.Errorf("merchant %v code %v, want %s and %s: %s", ev["merchant"], ev["code"], demoMerchant, want, line)
		}
		if ra, _ := ev["remote_addr"].(string); !strings.HasPrefix(ra, "127.0.0.1:") {
			t.Errorf("remote_addr %q: %s", ra, line)
		}
		if ms, ok := ev["latency_ms"].(float64); !ok || ms <= 0 {
			t.Errorf("latency_ms %v: %s", ev["latency_ms"], line)
		}
		if _, ok := ev["latency"]; ok {
			t.Errorf("latency without its unit: %s", line)
		}
		if ev["reason"] == nil {
			t.Errorf("no reason: %s", line)
		}
	}
	if refusals != 3 {
		t.Fatalf("%d refusal lines, want 3:\n%s", refusals, logs.String())
	}
}

// TestSchemeBMetrics checks that scheme B is counted apart from scheme A:
// its verifications under rfc9421 and the verified key's algorithm, its
// Ed25519 response signatures on Go's crypto whatever --crypto says.
func TestSchemeBMetrics(t *testing.T) {
	h, _ := schemeBServer(t)
	before := h.scrape()
	if r := h.sendB("BED", "", "GET", "/v1/certificates", nil, nil); r.status != http.StatusOK || h.verifyB(r) != nil {
		t.Fatalf("scheme B request: %d %s %v", r.status, r.body, h.verifyB(r))
	}
	// A key registered for rsa-v1_5-sha256 signing with rsa-pss-sha512.
	if r := h.sendB(demoMerchant, signing.RSAPSSSHA512, "GET", "/v1/certificates", nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("algorithm mismatch: %d %s", r.status, r.body)
	}
	mfs := h.scrape()
	delta := func(name string, labels map[string]string) float64 {
		a, _ := sample(before, name, labels)
		b, _ := sample(mfs, name, labels)
		return b - a
	}
	b := map[string]string{"scheme": "rfc9421"}
	if v := delta("quill_signature_verifications_total", b); v != 2 {
		t.Errorf("scheme B verifications %v, want 2", v)
	}
	ok := map[string]string{"scheme": "rfc9421", "algorithm": "ed25519", "backend": "go", "result": "ok"}
	if v := delta("quill_signature_verifications_total", ok); v != 1 {
		t.Errorf("verifications %v = %v, want 1", ok, v)
	}
	bad := map[string]string{"scheme": "rfc9421", "backend": "go", "result": "algorithm"}
	if v := delta("quill_signature_verifications_total", bad); v != 1 {
		t.Errorf("verifications %v = %v, want 1", bad, v)
	}
	if v := delta("quill_signature_verifications_total", map[string]string{"scheme": "wechatpay"}); v != 0 {
		t.Errorf("scheme B requests counted as scheme A: %v", v)
	}
	// Both answers are signed in scheme B with the Ed25519 platform key on Go.
	sig := map[string]string{"scheme": "rfc9421", "algorithm": "ed25519", "backend": "go", "result": "ok"}
	if v := delta("quill_response_signatures_total", sig); v != 2 {
		t.Errorf("response signatures %v = %v, want 2", sig, v)
	}
	if v := delta("quill_response_signatures_total", map[string]string{"scheme": "wechatpay"}); v != 0 {
		t.Errorf("scheme A response signatures for scheme B requests: %v", v)
	}
}
