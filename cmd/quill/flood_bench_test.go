package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHonestP99UnderFlood measures an honest merchant's payment latency
// (p99) without and then during a flood of invalid-signature requests from
// another merchant that holds only its client certificate (issue 5 item 6),
// in one run against the real server over mTLS. "limited" is the default
// failure limit (20 refusals per merchant per 10 s, throttled answers held
// 1 s); "unlimited" sets it out
// of reach, which is what the server did before: every refusal RSA-signed.
//
//	go test -run '^$' -bench HonestP99UnderFlood -benchtime 1x ./cmd/quill/
func BenchmarkHonestP99UnderFlood(b *testing.B) {
	for _, v := range []struct {
		name  string
		limit int
	}{{"limited", 20}, {"unlimited", 1_000_000}} {
		b.Run(v.name, func(b *testing.B) {
			h := startServerWith(b, serverOptions{config: func(c *config) {
				c.AuthFailMax, c.AuthFailWindow, c.AuthFailDelay = v.limit, 10*time.Second, time.Second
			}})
			defer followRealTime(h)()
			user := fmt.Sprintf("u-flood-%d", time.Now().UnixNano())
			h.deposit(user, "10000.00")
			tok := h.token(user)
			h.do(demoMerchant, "GET", "/v1/certificates", nil) // the client knows the platform key

			var base, flooded []time.Duration
			var flood int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				base = append(base, honestPayments(b, h, tok, 400, nil)...)
				lat, n := paymentsUnderFlood(b, h, tok, 400, 2000)
				flooded, flood = append(flooded, lat...), flood+n
			}
			b.StopTimer()
			pb, pf := percentile(base, 99), percentile(flooded, 99)
			b.ReportMetric(float64(pb.Microseconds())/1000, "base-p99-ms")
			b.ReportMetric(float64(pf.Microseconds())/1000, "flood-p99-ms")
			b.ReportMetric(float64(pf)/float64(pb), "p99-ratio")
			b.ReportMetric(float64(flood)/float64(b.N), "flood-reqs")
			b.ReportMetric(float64(len(flooded))/float64(b.N), "honest-reqs")
		})
	}
}

// followRealTime advances the harness clock with the wall clock (the failure
// window must pass as it would in production) until the returned func is
// called.
func followRealTime(h *harness) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				h.clock.Advance(now.Sub(last))
				last = now
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// honestPayments sends at least n payments of 0.01 from the demo merchant on
// 4 connections (each request signed before its clock starts) and returns
// their latencies; while more() is true it keeps going past n.
func honestPayments(tb testing.TB, h *harness, tok string, n int, more func() bool) []time.Duration {
	c := h.clients[demoMerchant]
	var mu sync.Mutex
	var out []time.Duration
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= int64(n) || (more != nil && more()) {
				body := paymentBody(newOrderID(), "0.01", tok)
				auth, err := c.Authorization("POST", "/v1/payments", body)
				if err != nil {
					tb.Error(err)
					return
				}
				start := time.Now()
				r, err := c.Send(context.Background(), "POST", "/v1/payments", body, auth)
				took := time.Since(start)
				if err != nil || r.Status != http.StatusOK || r.Verified != nil {
					tb.Errorf("honest payment: %v %v", err, r)
					return
				}
				mu.Lock()
				out = append(out, took)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// paymentsUnderFlood runs honestPayments while floodConns connections of the other
// merchant send invalid-signature payments as fast as they are answered,
// until both n honest payments and minFlood flood requests are done. It
// returns the honest latencies and the number of flood requests answered.
func paymentsUnderFlood(tb testing.TB, h *harness, tok string, n int, minFlood int64) ([]time.Duration, int64) {
	cert := h.certs[otherMerch]
	hc := h.httpClient(&cert)
	hc.Transport.(*http.Transport).MaxConnsPerHost = floodConns
	defer hc.CloseIdleConnections()
	body := paymentBody(newOrderID(), "1.00", tok)
	auth := h.sign(otherMerch, forgeKey(tb), h.clients[otherMerch].KeyID, "POST", "/v1/payments", body, h.clock.Now())

	var answered atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < floodConns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				req, _ := http.NewRequest("POST", h.base+"/v1/payments", bytes.NewReader(body))
				req.Header.Set("Authorization", auth)
				req.Header.Set("Content-Type", "application/json")
				res, err := hc.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusTooManyRequests {
					tb.Errorf("flood request answered %d", res.StatusCode)
				}
				answered.Add(1)
			}
		}()
	}
	// Let the flood reach full speed before measuring.
	for answered.Load() < 100 {
		time.Sleep(10 * time.Millisecond)
	}
	lat := honestPayments(tb, h, tok, n, func() bool { return answered.Load() < minFlood })
	close(done)
	wg.Wait()
	return lat, answered.Load()
}

// percentile returns the p-th percentile (nearest rank) of d.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// floodConns is how many keep-alive connections the flooding merchant uses,
// well under its per-merchant cap (256 by default).
const floodConns = 64
