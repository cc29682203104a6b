package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/ledger"
)

func TestSeed(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	const entries, wallets, merchants = 5_003, 100, 3
	var progress []int
	res, err := Seed(ctx, dsn, SeedOptions{
		Entries: entries, Accounts: wallets, Merchants: merchants, Deposit: 1_000_000, Chunk: 1_000,
		Now: fakeClock(), Progress: func(n int) { progress = append(progress, n) },
	})
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	if res.Entries != entries || res.Accounts != wallets+merchants+2 || res.Postings != 2*wallets+3*(entries-wallets) {
		t.Errorf("Seed = %+v", res)
	}
	if len(progress) != 6 || progress[5] != entries {
		t.Errorf("progress %v, want 6 chunks ending at %d", progress, entries)
	}

	s, err := Open(ctx, dsn, Options{Now: fakeClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkInvariants(t, s)
	var seq, analysed int64
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT seq FROM ledger_head),
		(SELECT count(*) FROM pg_stats WHERE tablename = 'entries')`).Scan(&seq, &analysed); err != nil {
		t.Fatal(err)
	}
	if seq != entries || analysed == 0 {
		t.Errorf("head at %d (want %d), %d columns of entries analysed (want > 0)", seq, entries, analysed)
	}

	// Wallet 7 paid every payment n with n % wallets == 7: amount 100 + n % 9900.
	var paid, fees, toM1 int64
	for n := int64(1); n <= entries-wallets; n++ {
		amount := 100 + n%9_900
		if n%wallets == 7 {
			paid += amount
		}
		if n%merchants == 0 {
			toM1 += amount - amount/100
		}
		fees += amount / 100
	}
	wantBalance(t, s, "user:7", 1_000_000-paid)
	wantBalance(t, s, "merchant:M1", toM1)
	wantBalance(t, s, "platform:fees", fees)
	if r, err := s.Entry(ctx, "M2", "SEED000000000101"); err != nil || r.ID != 101 || r.Payer != "1" {
		t.Errorf("Entry(M2, SEED…101) = %+v, %v", r, err)
	}

	// The writer continues the chain: a new wallet, a payment from a seeded
	// one, and a replay of a seeded entry.
	mustRecord(t, s, deposit("AFTER1", "new", 500))
	p := mustRecord(t, s, ledger.Payment("M1", "AFTER2", "7", "CNY", 1_000, 10, "after seed", ev("after")))
	if p.ID != entries+2 {
		t.Errorf("payment after seed got id %d, want %d", p.ID, entries+2)
	}
	wantBalance(t, s, "user:7", 1_000_000-paid-1_000)
	// Seeded payment 101 is payment n=1: wallet 1 → M2, amount 101, fee 1.
	replay := mustRecord(t, s, ledger.Payment("M2", "SEED000000000101", "1", "CNY", 101, 1, "seed", ev("retry")))
	if !replay.Replayed || replay.ID != 101 {
		t.Errorf("replay of a seeded entry = id %d replayed %v, want 101 replayed", replay.ID, replay.Replayed)
	}
	checkInvariants(t, s)

	if _, err := Seed(ctx, dsn, SeedOptions{Entries: 10, Accounts: 1}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Seed on a non-empty ledger = %v, want a refusal", err)
	}
	checkInvariants(t, s)
}
