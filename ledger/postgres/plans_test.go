package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/ledger"
)

// sortNode matches a plan node that sorts (not a Merge Append's sort key).
var sortNode = regexp.MustCompile(`(?m)^\s*(->\s*)?(Incremental )?Sort\s+\(`)

// seqScan matches a plan line that reads a whole ledger table.
var seqScan = regexp.MustCompile(`Seq Scan on (entries|postings|accounts|balances)\b`)

// TestWritePathPlans proves the hot path's cost does not depend on the size
// of the ledger whatever the planner's statistics: on a ledger of 100,000
// entries that was never analysed (autovacuum is off on these machines), the
// generic plan of every statement a batch or a request's read sends, and of
// every query the database runs for them (the commit-time balance trigger,
// the foreign-key checks), reads the ledger tables by index only.
func TestWritePathPlans(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	if _, err := Seed(ctx, dsn, SeedOptions{Entries: 100_000, Accounts: 10_000, Merchants: 20, SkipAnalyze: true}); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	db := connect(t, dsn)
	var stats int
	var tuples float64
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_stats WHERE schemaname = 'public'
			AND tablename IN ('entries', 'postings', 'accounts', 'balances')),
		(SELECT reltuples FROM pg_class WHERE oid = 'entries'::regclass)`).Scan(&stats, &tuples); err != nil {
		t.Fatal(err)
	}
	if stats != 0 || tuples > 0 {
		t.Fatalf("the ledger has statistics (%d pg_stats rows, entries.reltuples %v): the test would prove nothing", stats, tuples)
	}

	t.Run("prepared statements", func(t *testing.T) {
		// Arguments for EXPLAIN EXECUTE; their values do not shape a generic plan.
		args := map[string]string{
			sqlLockHead:        "",
			sqlExisting:        "('{M1,M2}', '{SEED000000000001,ORD1}')",
			sqlExistingRefunds: "('{M1,M2}', '{R1,R2}')",
			sqlRefundTargets:   "('{M1,M2}', '{SEED000000000001,ORD1}')",
			sqlEnsureAccounts:  "('{user:x}', '{CNY}', '{liability}', '{f}')",
			sqlBalancesByCode:  "('{user:1,merchant:M1}', '{CNY,CNY}')",
			sqlBalancesByID:    "('{1,2,3}')",
			sqlInsertEntries: `('{1}', '{payment}', '{M1}', '{O}', '{1}', '{CNY}', '{10}', '{0}', '{d}',
				'{"\\x00"}', '{"\\x00"}', '{"\\x00"}', '{2025-01-01T00:00:00Z}', '{s}', '{k}', '{a}', '{POST}', '{/}',
				'{"\\x00"}', '{"\\x00"}', '{2}', '{R1}', '{7}', '{1}')`,
			sqlInsertPostings: "('{1,1}', '{0,1}', '{2,2}', '{1,2}', '{10,-10}')",
			sqlUpdateBalances: "('{1,2}', '{10,-10}')",
			sqlUpdateHead:     `(1, '\x00')`,
			sqlEntry:          "('M1', 'SEED000000000001')",
			sqlRefund:         "('M1', 'R1')",
			sqlBalance:        "('merchant:M1', 'CNY')",
			sqlListRecords:    "('M1', 'merchant:', 'payment', 1, 100000, NULL, '2030-01-01T00:00:00Z', 0, 101)",
			sqlEachRecord:     "('M1', 'merchant:', 1, 100000, '2020-01-01T00:00:00Z', NULL, 0, 1000, 'payment', 'refund', 'deposit')",
		}
		if _, err := db.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
			t.Fatal(err)
		}
		for i, q := range append(append(append([]string{}, writePathSQL...), readPathSQL...), listingSQL...) {
			a, ok := args[q]
			if !ok {
				t.Errorf("statement %d has no EXPLAIN arguments in this test:\n%s", i, q)
				continue
			}
			name := fmt.Sprintf("s%d", i)
			if _, err := db.Exec(ctx, "PREPARE "+name+" AS "+q); err != nil {
				t.Fatalf("PREPARE %s: %v\n%s", name, err, q)
			}
			plan := explain(t, db, "EXPLAIN (VERBOSE) EXECUTE "+name+a)
			if a != "" && !strings.Contains(plan, "$1") {
				t.Errorf("statement %d: not a generic plan (no $1 in it):\n%s", i, plan)
			}
			if seqScan.MatchString(plan) {
				t.Errorf("statement %d scans a whole table:\n%s\n%s", i, q, plan)
			}
			// A merchant's listings read its entries of a kind in id order
			// off one index: no sort, however many rows the span holds.
			if slices.Contains(listingSQL, q) && (!strings.Contains(plan, "entries_merchant_kind_id_idx") || sortNode.MatchString(plan)) {
				t.Errorf("listing statement %d is not an ordered scan of entries_merchant_kind_id_idx:\n%s\n%s", i, q, plan)
			}
		}
	})

	t.Run("every query of real batches", func(t *testing.T) {
		// auto_explain reports the plan of every statement the server runs for
		// the Store's connections, nested ones (PL/pgSQL, foreign-key checks)
		// included, as notices; force_generic_plan makes each cached plan
		// generic from its first use.
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu    sync.Mutex
			plans []string
		)
		cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			mu.Lock()
			plans = append(plans, n.Message)
			mu.Unlock()
		}
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, `LOAD 'auto_explain';
				SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
				SET auto_explain.log_level = notice; SET plan_cache_mode = force_generic_plan`)
			return err
		}
		s, err := open(ctx, cfg, Options{Now: fakeClock()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// Batches that take every branch: new accounts, cached accounts,
		// replays and conflicts with seeded entries, insufficient funds.
		var wg sync.WaitGroup
		for round := range 3 {
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var e ledger.Entry
					switch {
					case i == 0:
						e = deposit(fmt.Sprint("NEW", round), fmt.Sprint("new", round), 1_000)
					case i == 1: // seeded payment n=1 (after 10,000 deposits): wallet 1 → M2, 101, fee 1: a replay
						e = ledger.Payment("M2", "SEED000000010001", "1", "CNY", 101, 1, "seed", ev("r"))
					case i == 2:
						e = ledger.Payment("M3", "SEED000000010002", "2", "CNY", 5, 0, "conflict", ev("c"))
					case i == 3:
						e = payment(fmt.Sprint("BROKE", round), fmt.Sprint("new", round), 1<<50, 0)
					case i == 4: // a refund of the seeded payment n=1, one unit a round
						e = ledger.Refund("M2", fmt.Sprint("R", round), "SEED000000010001", "CNY", 1, "", ev("rf"))
					case i == 5:
						e = ledger.Refund("M2", fmt.Sprint("RX", round), "NO-SUCH-ORDER", "CNY", 1, "", ev("rx"))
					default:
						e = ledger.Payment("M1", fmt.Sprintf("P%d-%d", round, i), fmt.Sprint(i*97), "CNY", 500, 5, "", ev("p"))
					}
					var want error
					switch i {
					case 2:
						want = ledger.ErrOrderConflict
					case 3:
						want = ledger.ErrInsufficientFunds
					case 5:
						want = ledger.ErrNotFound
					}
					rec, err := s.Record(ctx, e)
					if !errors.Is(err, want) {
						t.Errorf("Record %s: %v, want %v", e.OrderID, err, want)
					}
					if i == 1 && (!rec.Replayed || rec.ID != 10_001) {
						t.Errorf("replay of a seeded payment: id %d, replayed %v", rec.ID, rec.Replayed)
					}
				}()
			}
			wg.Wait()
		}
		if _, err := s.Entry(ctx, "M1", "P0-10"); err != nil {
			t.Error(err)
		}
		if _, err := s.Refund(ctx, "M2", "R0"); err != nil {
			t.Error(err)
		}
		if _, err := s.Balance(ctx, "merchant:M1", "CNY"); err != nil {
			t.Error(err)
		}
		checkInvariants(t, s)

		mu.Lock()
		defer mu.Unlock()
		seen := map[string]bool{}
		for _, p := range plans {
			if strings.Contains(p, "VerifyChain") || strings.Contains(p, "evidence_body_sha256\n\t\tFROM entries WHERE id BETWEEN") {
				continue
			}
			for _, mark := range planMarks {
				if strings.Contains(p, mark) {
					seen[mark] = true
				}
			}
			if seqScan.MatchString(p) && !auditQuery(p) {
				t.Errorf("a query of the write or read path scans a whole table:\n%s", p)
			}
		}
		for _, mark := range planMarks {
			if !seen[mark] {
				t.Errorf("no plan containing %q was reported: auto_explain did not see every query", mark)
			}
		}
	})
}

// planMarks are texts that the plans of a workload's statements must show,
// so the test knows auto_explain saw them: the entry insert, the commit-time
// balance check, the refund check, the lookups and the balance update.
var planMarks = []string{"INSERT INTO entries", "p.seq < NEW.posting_count", "r.refund_seq <= NEW.refund_seq",
	`"public"."accounts"`, `"public"."entries"`, "FROM unnest($1::text[], $2::text[]) AS u(m, o)",
	"FROM unnest($1::text[], $2::text[]) AS u(m, r)", "UPDATE balances"}

// auditQuery reports whether plan belongs to the integrity checks the test
// runs itself (CheckBalances, VerifyChain), which read whole tables by design.
func auditQuery(plan string) bool {
	for _, s := range []string{"coalesce(sum(p.amount::numeric), 0) * CASE", "FROM entries e\n\t\tWHERE e.posting_count < 2",
		"FROM entries WHERE id BETWEEN", "WHERE p.entry_id BETWEEN", "SELECT max(id) FROM entries"} {
		if strings.Contains(plan, s) {
			return true
		}
	}
	return false
}

func explain(tb testing.TB, db *pgx.Conn, q string) string {
	tb.Helper()
	rows, err := db.Query(context.Background(), q)
	if err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return strings.Join(lines, "\n")
}
