package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/signing"
)

// BenchmarkSchemesEndToEnd measures signed payments per second end to end
// (mTLS, signature, nonce, durable ledger write, signed response), every
// payment crediting one merchant, in scheme A (RSA-2048 response signature)
// and scheme B (Ed25519 response signature) against the same server in one
// run. "B-rsa" signs requests with the same RSA key as "A", so the two differ
// only in the scheme and the platform signature; "B-ed25519" is a merchant
// whose own key is Ed25519 too. Requests are signed before the timer starts;
// responses are checked for status in the loop and for their signature on a
// sample afterwards, so client CPU stays small. cpu-µs/payment is this
// process's CPU (server and client, user and system) over the timed loop per
// payment: on a shared machine it shows the cost of the platform signature
// where payments/s is bounded by the ledger's commits and the neighbours.
//
//	go test -run '^$' -bench SchemesEndToEnd -benchtime 3000x ./cmd/quill/
func BenchmarkSchemesEndToEnd(b *testing.B) {
	h, _ := schemeBServer(b)
	user := fmt.Sprintf("u-schemes-%d", orderSeq.Add(1))
	h.deposit(user, "900000.00")
	tok := h.token(user)
	const workers = 32
	for _, v := range []struct {
		name, merchant string
		schemeB        bool
	}{{"B-ed25519", "BED", true}, {"A", demoMerchant, false}, {"B-rsa", demoMerchant, true}} {
		b.Run(v.name, func(b *testing.B) {
			mc, err := devenv.LoadMerchant(h.dir, v.merchant)
			if err != nil {
				b.Fatal(err)
			}
			host := strings.TrimPrefix(h.base, "https://")
			type prepared struct {
				hdr  http.Header
				body []byte
			}
			reqs := make([]prepared, b.N)
			for i := range reqs {
				body := paymentBody(newOrderID(), "0.01", tok)
				hdr := http.Header{"Content-Type": {"application/json"}}
				if v.schemeB {
					rs := signing.RequestSigner{Key: mc.SigningKey, KeyID: mc.KeyID, Algorithm: signing.Algorithm(mc.Algorithm), Now: h.clock.Now}
					mh, err := rs.Sign(signing.MessageRequest{Method: "POST", Scheme: "https", Authority: host, Target: "/v1/payments", Header: hdr, Body: body})
					if err != nil {
						b.Fatal(err)
					}
					hdr.Set("Content-Digest", mh.ContentDigest)
					hdr.Set("Signature-Input", mh.SignatureInput)
					hdr.Set("Signature", mh.Signature)
				} else {
					hdr.Set("Authorization", h.sign(v.merchant, nil, "", "POST", "/v1/payments", body, h.clock.Now()))
				}
				reqs[i] = prepared{hdr, body}
			}
			hc := h.httpClient(&mc.TLS)
			defer hc.CloseIdleConnections()
			var next atomic.Int64
			var failed atomic.Int64
			var sampleMu sync.Mutex
			var sample []bResponse
			var wg sync.WaitGroup
			cpu0 := processCPU(b)
			b.ResetTimer()
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= len(reqs) {
							return
						}
						req, _ := http.NewRequest("POST", h.base+"/v1/payments", bytes.NewReader(reqs[i].body))
						req.Header = reqs[i].hdr
						res, err := hc.Do(req)
						if err != nil {
							failed.Add(1)
							continue
						}
						body, _ := io.ReadAll(res.Body)
						res.Body.Close()
						if res.StatusCode != http.StatusOK {
							failed.Add(1)
							continue
						}
						if i%97 == 0 {
							sampleMu.Lock()
							sample = append(sample, bResponse{status: res.StatusCode, header: res.Header, body: body,
								req: signing.MessageRequest{Method: "POST", Scheme: "https", Authority: host, Target: "/v1/payments", Header: reqs[i].hdr}})
							sampleMu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			cpu := processCPU(b) - cpu0
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d payments failed", n, b.N)
			}
			for _, r := range sample {
				var err error
				if v.schemeB {
					err = h.verifyB(r)
				} else {
					err = h.verifyResponse(&client.Response{Status: r.status, Header: r.header, Body: r.body})
				}
				if err != nil {
					b.Fatalf("response signature: %v", err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/payment")
		})
	}
}

// processCPU is the CPU time this process has used so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
