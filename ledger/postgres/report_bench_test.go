package postgres

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/quillpay/quill/ledger"
)

// The report benchmarks run against an already seeded ledger (the issue's
// target: 1,000,000 entries over 10,000 accounts with a valid chain), named by
// QUILL_BENCH_PG_DSN; without it they skip. They write nothing to it but
// the report blocks that are due (built before any timing starts).
//
//	QUILL_BENCH_PG_DSN=postgres://…/quill_bench go test -run '^$' -bench 'Report|AuditChain' -benchtime=5x ./ledger/postgres/
func benchStore(b *testing.B) *Store {
	b.Helper()
	dsn := os.Getenv("QUILL_BENCH_PG_DSN")
	if dsn == "" {
		b.Skip("QUILL_BENCH_PG_DSN not set: the report benchmarks need a seeded ledger")
	}
	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	if err := s.ensureBlocks(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s
}

func benchHead(b *testing.B, s *Store) int64 {
	var head int64
	if err := s.pool.QueryRow(context.Background(), "SELECT seq FROM ledger_head").Scan(&head); err != nil {
		b.Fatal(err)
	}
	if head == 0 {
		b.Skip("the bench ledger is empty")
	}
	return head
}

// BenchmarkReportTrialBalance: target ≤ 200 ms as of now, ≤ 1 s as of a past time.
func BenchmarkReportTrialBalance(b *testing.B) {
	s := benchStore(b)
	head := benchHead(b, s)
	for _, c := range []struct {
		name string
		asOf ledger.AsOf
	}{{"now", ledger.AsOf{}}, {"past-entry", ledger.AsOf{Entry: head / 2}},
		// The most postings summed above the blocks: one short of a full block.
		{"worst-tail", ledger.AsOf{Entry: max(head/blockSize*blockSize-1, 1)}},
		{"past-time", func() ledger.AsOf {
			var t time.Time
			if err := s.pool.QueryRow(context.Background(), "SELECT created_at FROM entries WHERE id = $1", head/3).Scan(&t); err != nil {
				b.Fatal(err)
			}
			return ledger.AsOf{Time: t}
		}()}} {
		b.Run(c.name, func(b *testing.B) {
			cpu := startCPU(b, s)
			for b.Loop() {
				if _, err := s.TrialBalance(context.Background(), c.asOf, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/report")
			cpu.report(b, 0, "")
		})
	}
	// The same report summing every posting (no blocks of this size exist),
	// to see what the blocks buy in the same run.
	b.Run("now-without-blocks", func(b *testing.B) {
		old := blockSize
		blockSize = 1 << 40
		defer func() { blockSize = old }()
		cpu := startCPU(b, s)
		for b.Loop() {
			if _, err := s.TrialBalance(context.Background(), ledger.AsOf{}, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/report")
		cpu.report(b, 0, "")
	})
}

// BenchmarkReportStatementPage: target ≤ 20 ms a page (100 lines) of the
// busiest account, first page (opening balance computed) and a later one.
func BenchmarkReportStatementPage(b *testing.B) {
	s := benchStore(b)
	head := benchHead(b, s)
	var code, cur string
	if err := s.pool.QueryRow(context.Background(), `SELECT a.code, a.currency FROM accounts a
		JOIN postings p ON p.account_id = a.id WHERE p.entry_id > $1 GROUP BY a.id ORDER BY count(*) DESC LIMIT 1`, head-10000).
		Scan(&code, &cur); err != nil {
		b.Fatal(err)
	}
	q := ledger.StatementQuery{Account: code, Currency: cur, Limit: 100, Period: ledger.Period{FromEntry: head / 2}}
	first, err := s.Statement(context.Background(), q)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("first", func(b *testing.B) {
		cpu := startCPU(b, s)
		for b.Loop() {
			if _, err := s.Statement(context.Background(), q); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b, 0, "")
	})
	if first.Next == nil {
		return
	}
	b.Run("next", func(b *testing.B) {
		q.After = first.Next
		cpu := startCPU(b, s)
		for b.Loop() {
			if _, err := s.Statement(context.Background(), q); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b, 0, "")
	})
}

// BenchmarkReportExport streams the whole journal: target ≥ 100,000 postings/s
// with peak RSS ≤ 64 MB (the Go heap is reported here; RSS is measured with
// /usr/bin/time -v around the benchmark binary).
func BenchmarkReportExport(b *testing.B) {
	s := benchStore(b)
	benchHead(b, s)
	pos, rows, err := s.ExportRange(context.Background(), ledger.JournalQuery{})
	if err != nil {
		b.Fatal(err)
	}
	var peak uint64
	var ms runtime.MemStats
	cpu := startCPU(b, s)
	for b.Loop() {
		var n int64
		err := s.Export(context.Background(), pos, nil, func(ledger.JournalRow) error {
			if n++; n%100_000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
			return nil
		})
		if err != nil || n != rows {
			b.Fatalf("exported %d of %d rows: %v", n, rows, err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "postings/s")
	b.ReportMetric(float64(peak)/(1<<20), "heap-MB")
	cpu.report(b, float64(rows)*float64(b.N), "posting")
}

// BenchmarkAuditChain recomputes the whole chain: target ≥ 200,000 entries/s.
func BenchmarkAuditChain(b *testing.B) {
	s := benchStore(b)
	head := benchHead(b, s)
	b.Run("audit", func(b *testing.B) {
		cpu := startCPU(b, s)
		for b.Loop() {
			rep, err := s.AuditChain(context.Background(), 0, 0, nil)
			if err != nil || !rep.OK() {
				b.Fatalf("%+v %v", rep, err)
			}
		}
		b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		cpu.report(b, float64(head)*float64(b.N), "entry")
	})
	// The older text-only VerifyChain, for comparison in the same run.
	b.Run("verify", func(b *testing.B) {
		if os.Getenv("QUILL_BENCH_VERIFY_CHAIN") == "" {
			b.Skip("QUILL_BENCH_VERIFY_CHAIN not set: the older VerifyChain is slow")
		}
		for b.Loop() {
			if err := s.VerifyChain(context.Background(), 0, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
}
