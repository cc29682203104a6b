package attack

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestRunningServerCannotRewriteHistory is issue 11 "Least privilege",
// end to end: the attacked server's database sessions are the service role
// and the auditors' read-only role, never the owner or a superuser, and the
// service role — what an attacker who took the process would hold — cannot
// UPDATE, DELETE or TRUNCATE entries or postings, nor disable, drop or
// replace the triggers that make them append-only. The full list, and the
// reader role's, is TestServiceRoleCannotRewriteHistory and
// TestReaderRoleOnlyReads (ledger/postgres).
func TestRunningServerCannotRewriteHistory(t *testing.T) {
	s := shared(t)
	s.wallet(t, "1.00") // the ledger has an entry to rewrite
	ctx := context.Background()
	rows, err := s.db.Query(ctx, `SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatal(err)
	}
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(users)
	if want := []string{s.roles.Reader, s.roles.Service}; !slices.Equal(users, want) && !slices.Equal(users, want[1:]) {
		t.Fatalf("the server's sessions are %v, want the service (and reader) roles only", users)
	}
	before := s.state(t)
	svc, err := pgx.Connect(ctx, s.roleDSN[1])
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	for _, q := range []string{
		"UPDATE entries SET amount = amount + 1",
		"DELETE FROM entries",
		"TRUNCATE entries CASCADE",
		"UPDATE postings SET amount = amount * 2",
		"DELETE FROM postings",
		"TRUNCATE postings",
		"ALTER TABLE entries DISABLE TRIGGER ALL",
		"ALTER TABLE postings DISABLE TRIGGER USER",
		"DROP TRIGGER entries_append_only ON entries",
		"SET session_replication_role = replica",
	} {
		_, err := svc.Exec(ctx, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("as the service role: %s: %v, want 42501 insufficient_privilege", q, err)
		}
	}
	s.unchanged(t, before)
}
