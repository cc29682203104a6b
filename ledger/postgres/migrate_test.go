package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/ledger"
)

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("empty database, then again", func(t *testing.T) {
		dsn := testenv.Postgres(t)
		for i := 0; i < 2; i++ {
			if err := Migrate(ctx, dsn); err != nil {
				t.Fatalf("Migrate #%d: %v", i+1, err)
			}
		}
		var n int
		if err := connect(t, dsn).QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
		}
	})
	t.Run("concurrent migrators", func(t *testing.T) {
		dsn := testenv.Postgres(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = Migrate(ctx, dsn) }()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("migrator %d: %v", i, err)
			}
		}
		var seq int64
		if err := connect(t, dsn).QueryRow(ctx, "SELECT seq FROM ledger_head").Scan(&seq); err != nil || seq != 0 {
			t.Fatalf("ledger_head seq = %d, %v; want one row at 0", seq, err)
		}
	})
	t.Run("unreachable server", func(t *testing.T) {
		err := Migrate(ctx, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
		if !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("Migrate = %v, want ErrUnavailable", err)
		}
	})
}

// TestSchemaRejects proves the database itself enforces the ledger's rules:
// each case attempts a bad write with raw SQL, bypassing the Go checks.
func TestSchemaRejects(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 1000)) // entry 1: bank:settlement id 1, user:42 id 2
	db := connect(t, dsn)

	const newEntry = `INSERT INTO entries (id, kind, merchant_id, order_id, payer, currency, amount, fee,
		description, fingerprint, prev_hash, hash, created_at, evidence_scheme, evidence_key_id,
		authorization_header, evidence_method, evidence_target, evidence_body, evidence_body_sha256, posting_count)
		VALUES (100, 'deposit', 'M1', 'RAW', '42', 'CNY', 10, 0, '', decode(repeat('00', 32), 'hex'),
		decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'), now(), 's', 'k', 'a', 'POST', '/', '', sha256(''), 2)`

	tests := []struct {
		name       string
		stmts      []string
		constraint string
		want       error // translate's result
	}{
		{"unbalanced entry, at commit", []string{newEntry,
			"INSERT INTO postings VALUES (100, 0, 2, 1, 10), (100, 1, 2, 2, -9)"}, "entries_balanced", ledger.ErrUnbalanced},
		{"unbalanced in one currency, balanced overall", []string{newEntry,
			"INSERT INTO accounts (code, currency, type, allow_negative) VALUES ('user:usd', 'USD', 'liability', false)",
			"INSERT INTO postings VALUES (100, 0, 2, 1, 10), (100, 1, 2, currval('accounts_id_seq'), -10)"}, "entries_balanced", ledger.ErrUnbalanced},
		{"entry with one of two postings", []string{newEntry,
			"INSERT INTO postings VALUES (100, 0, 2, 1, 10)"}, "entries_postings_complete", ledger.ErrInvalidEntry},
		{"entry declaring one posting", []string{strings.Replace(newEntry, "sha256(''), 2)", "sha256(''), 1)", 1),
			"INSERT INTO postings VALUES (100, 0, 1, 1, 10)"}, "entries_min_postings", ledger.ErrInvalidEntry},
		{"entry without postings", []string{newEntry}, "entries_postings_complete", ledger.ErrInvalidEntry},
		{"posting appended to a committed entry", []string{
			"INSERT INTO postings VALUES (1, 2, 2, 1, 5)"}, "postings_seq_range", ledger.ErrInvalidEntry},
		{"posting appended with a forged count", []string{
			"INSERT INTO postings VALUES (1, 2, 3, 1, 5)"}, "postings_entry_fkey", nil},
		{"posting replacing a taken slot", []string{
			"INSERT INTO postings VALUES (1, 1, 2, 1, 5)"}, "postings_pkey", nil},
		{"update entry", []string{"UPDATE entries SET amount = 1 WHERE id = 1"}, "ledger_append_only", nil},
		{"delete postings", []string{"DELETE FROM postings WHERE entry_id = 1"}, "ledger_append_only", nil},
		{"delete entry", []string{"DELETE FROM entries WHERE id = 1"}, "ledger_append_only", nil},
		{"truncate entries", []string{"TRUNCATE entries CASCADE"}, "ledger_append_only", nil},
		{"update posting", []string{"UPDATE postings SET amount = 1 WHERE entry_id = 1"}, "ledger_append_only", nil},
		{"truncate postings", []string{"TRUNCATE postings"}, "ledger_append_only", nil},
		{"update account", []string{"UPDATE accounts SET allow_negative = true"}, "ledger_append_only", nil},
		{"delete chain head", []string{"DELETE FROM ledger_head"}, "ledger_head_forward", nil},
		{"truncate chain head", []string{"TRUNCATE ledger_head"}, "ledger_head_forward", nil},
		{"move chain head back", []string{"UPDATE ledger_head SET seq = seq - 1"}, "ledger_head_forward", nil},
		{"rewrite chain head hash", []string{"UPDATE ledger_head SET hash = decode(repeat('11', 32), 'hex')"}, "ledger_head_forward", nil},
		{"wallet below zero", []string{"UPDATE balances SET balance = -1 WHERE account_id = 2"}, "balances_non_negative", ledger.ErrInsufficientFunds},
		{"duplicate order id", []string{strings.Replace(newEntry, "'RAW'", "'D1'", 1)}, "entries_merchant_order_key", ledger.ErrOrderConflict},
		{"zero posting", []string{newEntry, "INSERT INTO postings VALUES (100, 0, 2, 1, 0)"}, "postings_amount_nonzero", ledger.ErrInvalidEntry},
		{"fee not below amount", []string{strings.Replace(newEntry, "10, 0, ''", "10, 10, ''", 1)}, "entries_fee_range", ledger.ErrInvalidEntry},
		{"evidence body digest", []string{strings.Replace(newEntry, "sha256('')", "sha256('x')", 1)}, "entries_body_sha256", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
				for _, q := range tt.stmts {
					if _, err := tx.Exec(ctx, q); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil {
				t.Fatal("the database accepted it")
			}
			if got := constraintOf(err); got != tt.constraint {
				t.Fatalf("error %v: constraint %q, want %q", err, got, tt.constraint)
			}
			if tt.want != nil && !errors.Is(translate(err), tt.want) {
				t.Fatalf("translate = %v, want %v", translate(err), tt.want)
			}
		})
	}
	// Nothing above changed the ledger.
	checkInvariants(t, s)
	wantBalance(t, s, "user:42", 1000)
}
