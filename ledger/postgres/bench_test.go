package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quillpay/quill/ledger"
)

// BenchmarkRecordPayments records payments from many pre-funded wallets, all
// crediting one merchant, from many concurrent callers: group commit
// (MaxBatch 512) against one transaction per payment (MaxBatch 1). Each
// payment is a durable commit (synchronous_commit as the server has it).
//
//	go test -run '^$' -bench RecordPayments -benchtime=3000x ./ledger/postgres/
func BenchmarkRecordPayments(b *testing.B) {
	for _, c := range []struct {
		name     string
		maxBatch int
	}{{"group-commit", 512}, {"tx-per-payment", 1}} {
		b.Run(c.name, func(b *testing.B) {
			const wallets = 1000
			s, _ := newStore(b, Options{MaxBatch: c.maxBatch, Now: time.Now})
			fund(b, s, wallets)
			benchPayments(b, s, wallets)
			if err := s.CheckBalances(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// fund deposits enough into wallets 0..n-1 for any benchmark run.
func fund(tb testing.TB, s *Store, n int) {
	tb.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Record(context.Background(), deposit(fmt.Sprint("FUND", i), fmt.Sprint(i), 1<<40)); err != nil {
				tb.Error(err)
			}
		}()
	}
	wg.Wait()
}

// benchPayments records b.N payments from wallets 0..wallets-1 to merchant M1
// from many goroutines and reports payments per second.
func benchPayments(b *testing.B, s *Store, wallets int64) {
	var seq atomic.Int64
	b.SetParallelism(128) // callers per GOMAXPROCS: a busy API server
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			e := ledger.Payment("M1", fmt.Sprintf("ORD%012d", n), fmt.Sprint(n%wallets), "CNY", 1234, 7,
				"bench", ev(fmt.Sprint("b", n)))
			if _, err := s.Record(context.Background(), e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
}
