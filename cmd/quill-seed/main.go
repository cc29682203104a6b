// Command quill-seed fills an empty Quill ledger with a synthetic one, fast
// (COPY), for benchmarks and for trying reports on a big ledger:
//
//	quill-seed --dsn postgres://postgres@127.0.0.1:5432/quill_big?sslmode=disable \
//	    --entries 1000000 --accounts 10000 --merchants 1
//
// It migrates the database, refuses a ledger that already has entries, writes
// one deposit per wallet and then payments from the wallets (round robin) to
// merchants M1…M<n> with a 1 % fee, with valid postings, balances, hash chain
// and (synthetic, key id SEED) evidence, and runs ANALYZE at the end. See
// postgres.Seed. With --analyze-only it only runs ANALYZE on an existing
// ledger (scripts/dev.sh does, after migrating).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/pflag"

	"github.com/quillpay/quill/ledger/postgres"
)

func main() {
	var (
		dsn  string
		opts postgres.SeedOptions
	)
	fs := pflag.NewFlagSet("quill-seed", pflag.ExitOnError)
	fs.StringVar(&dsn, "dsn", os.Getenv("QUILL_PG_DSN"), "PostgreSQL DSN of the (empty) ledger database (env QUILL_PG_DSN)")
	fs.IntVarP(&opts.Entries, "entries", "n", 1_000_000, "entries to write, one deposit per wallet included")
	fs.IntVar(&opts.Accounts, "accounts", 10_000, "user wallets user:0 … user:<accounts-1>")
	fs.IntVar(&opts.Merchants, "merchants", 1, "merchants M1 … M<merchants> the payments credit")
	fs.StringVar(&opts.Currency, "currency", "CNY", "currency of every entry")
	fs.IntVar(&opts.Chunk, "chunk", 50_000, "entries per transaction")
	fs.BoolVar(&opts.SkipAnalyze, "skip-analyze", false, "leave the tables without planner statistics")
	analyzeOnly := fs.Bool("analyze-only", false, "only refresh the planner statistics of an existing ledger, write nothing")
	_ = fs.Parse(os.Args[1:])
	if dsn == "" {
		fmt.Fprintln(os.Stderr, "quill-seed: --dsn or QUILL_PG_DSN is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *analyzeOnly {
		if err := postgres.Analyze(ctx, dsn); err != nil {
			fmt.Fprintln(os.Stderr, "quill-seed:", err)
			os.Exit(1)
		}
		return
	}
	start := time.Now()
	opts.Progress = func(n int) {
		el := time.Since(start)
		fmt.Fprintf(os.Stderr, "\r%d/%d entries, %.0f/s", n, opts.Entries, float64(n)/el.Seconds())
	}
	res, err := postgres.Seed(ctx, dsn, opts)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quill-seed:", err)
		os.Exit(1)
	}
	fmt.Printf("seeded %d entries, %d postings, %d accounts in %s (%.0f entries/s); VACUUM FULL balances + ANALYZE %s\n",
		res.Entries, res.Postings, res.Accounts, res.Write.Round(time.Millisecond),
		float64(res.Entries)/res.Write.Seconds(), res.Analyze.Round(time.Millisecond))
}
