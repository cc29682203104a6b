package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/ledger"
)

// BenchmarkRecordPayments records payments from many pre-funded wallets, all
// crediting one merchant, from many concurrent callers: group commit
// (MaxBatch 512) against one transaction per payment (MaxBatch 1). Each
// payment is a durable commit (synchronous_commit as the server has it).
//
// It runs on an empty ledger and, opt-in, on big ones, so the cost per
// payment can be compared across ledger sizes in one run:
//
//   - QUILL_BENCH_LEDGER_DSN: comma-separated DSNs of ledgers made by
//     quill-seed with at least 1,000 wallets (they grow by what the benchmark
//     writes);
//
//   - QUILL_BENCH_LEDGER_ENTRIES: comma-separated sizes to seed into fresh
//     databases first (dropped afterwards; seeding 10^7 takes many minutes).
//
//     go test -run '^$' -bench RecordPayments -benchtime=3000x ./ledger/postgres/
func BenchmarkRecordPayments(b *testing.B) {
	type ledgerCase struct {
		name string
		dsn  string // "" = a fresh, empty ledger per run
	}
	cases := []ledgerCase{{name: "entries=0"}}
	for _, dsn := range splitList(os.Getenv("QUILL_BENCH_LEDGER_DSN")) {
		cases = append(cases, ledgerCase{name: "entries=" + size(b, dsn), dsn: dsn})
	}
	for _, v := range splitList(os.Getenv("QUILL_BENCH_LEDGER_ENTRIES")) {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("QUILL_BENCH_LEDGER_ENTRIES: %v", err)
		}
		dsn := testenv.Postgres(b)
		res, err := Seed(context.Background(), dsn, SeedOptions{Entries: n, Accounts: 10_000})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("seeded %d entries in %s (ANALYZE %s)", n, res.Write.Round(time.Second), res.Analyze.Round(time.Second))
		cases = append(cases, ledgerCase{name: "entries=" + size(b, dsn), dsn: dsn})
	}
	for _, l := range cases {
		for _, c := range []struct {
			name     string
			maxBatch int
		}{{"group-commit", 512}, {"tx-per-payment", 1}} {
			b.Run(l.name+"/"+c.name, func(b *testing.B) {
				const wallets = 1000
				opts := Options{MaxBatch: c.maxBatch, Now: time.Now}
				dsn := l.dsn
				if dsn == "" {
					var s *Store
					s, dsn = newStore(b, opts)
					fund(b, s, wallets)
					s.Close() // its sessions' statistics are flushed before the count starts
				}
				before := blocks(b, dsn)
				s, err := Open(context.Background(), dsn, opts)
				if err != nil {
					b.Fatal(err)
				}
				benchPayments(b, s, wallets)
				s.Close()
				after := blocks(b, dsn)
				b.ReportMetric(float64(after.hit+after.read-before.hit-before.read)/float64(b.N), "blocks/payment")
				b.ReportMetric(float64(after.read-before.read)/float64(b.N), "reads/payment")
				if l.dsn == "" {
					if s, err = Open(context.Background(), dsn, opts); err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					if err := s.CheckBalances(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// size names a ledger by its entry count to one significant digit, so that
// what a run appends does not rename it between -count runs.
func size(tb testing.TB, dsn string) string {
	tb.Helper()
	var n int64
	if err := connect(tb, dsn).QueryRow(context.Background(), "SELECT seq FROM ledger_head").Scan(&n); err != nil {
		tb.Fatalf("%s: %v", dsn, err)
	}
	if n >= 1_000_000 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprintf("%dk", n/1000)
}

type blockCount struct{ hit, read int64 }

// blocks returns how many shared-buffer block accesses (hits, and reads from
// outside shared buffers) the server has counted for dsn's database: the
// work behind each payment, which unlike the elapsed time does not depend on
// what else the machine runs. Backends flush their counts when they exit, so
// the Store is closed before counting; the short wait lets the exits finish.
func blocks(tb testing.TB, dsn string) blockCount {
	tb.Helper()
	time.Sleep(300 * time.Millisecond)
	var c blockCount
	if err := connect(tb, dsn).QueryRow(context.Background(), `SELECT blks_hit, blks_read
		FROM pg_stat_database WHERE datname = current_database()`).Scan(&c.hit, &c.read); err != nil {
		tb.Fatal(err)
	}
	return c
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
// from many goroutines and reports payments per second. Order ids are unique
// per call, so a ledger reused across runs never answers with a replay.
func benchPayments(b *testing.B, s *Store, wallets int64) {
	var seq atomic.Int64
	run := testenv.Random(4)
	b.SetParallelism(128) // callers per GOMAXPROCS: a busy API server
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			e := ledger.Payment("M1", fmt.Sprintf("ORD%s%012d", run, n), fmt.Sprint(n%wallets), "CNY", 1234, 7,
				"bench", ev(fmt.Sprint("b", n)))
			rec, err := s.Record(context.Background(), e)
			if err != nil || rec.Replayed {
				b.Errorf("Record: %v (replayed %v)", err, rec.Replayed)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
}
