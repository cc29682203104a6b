package dist

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/testenv"
)

// BenchmarkHotMerchant sends signed payments that all credit one merchant
// through one quill process and through three processes sharing the database
// and Redis, on the same machine: the ratio is the cost of coordinating
// writers (the chain-head row lock, one commit stream per node), not more
// hardware. Run with a fixed count, e.g. -benchtime 2000x.
func BenchmarkHotMerchant(b *testing.B) {
	dsn := testenv.Postgres(b)
	tp := newTopology(b, 1)
	args := []string{"--pg-dsn", dsn, "--redis-addr", testenv.RedisAddr(b), "--redis-prefix", "quillbench:" + testenv.Random(4) + ":"}
	tp.startNode(append(args, "--migrate=true")...)
	tp.startNode(append(args, "--migrate=false")...)
	tp.startNode(append(args, "--migrate=false")...)
	tp.deposit(tp.nodes[0], "u1", "900000.00")
	tp.deposit(tp.nodes[0], "u1", "900000.00")
	token := tp.token("u1")
	m := tp.merchants[0]
	for _, bc := range []struct {
		name  string
		nodes []*node
	}{{"1-node", tp.nodes[:1]}, {"3-nodes", tp.nodes}} {
		b.Run(bc.name, func(b *testing.B) {
			const conc = 48
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			b.ResetTimer()
			for w := range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n := bc.nodes[w%len(bc.nodes)]
					for next.Add(1) <= int64(b.N) {
						r := n.do(m, "POST", "/v1/payments", paymentBody(orderID(), "0.01", token))
						if r.Status != http.StatusOK {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d of %d payments failed", f, b.N)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "payments/s")
		})
	}
}
