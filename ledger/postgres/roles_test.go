package postgres

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/ledger"
)

// roleDB is a fresh database with its three roles, migrated as the owner.
type roleDB struct {
	db                  string
	roles               Roles
	owner, svc, auditor string // DSNs of the roles
}

// newRoleDB creates a database and its roles. With superuserFirst the schema
// is migrated by the superuser before SetupRoles, as a dev database created
// before the roles existed was; SetupRoles must hand it over.
func newRoleDB(tb testing.TB, superuserFirst bool) roleDB {
	tb.Helper()
	ctx := context.Background()
	dsn := testenv.Postgres(tb)
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	if superuserFirst {
		if err := Migrate(ctx, dsn); err != nil {
			tb.Fatalf("Migrate as superuser: %v", err)
		}
	}
	r, err := SetupRoles(ctx, testenv.AdminDSN(), db)
	// Roles outlive databases: drop the database first (testenv's own drop,
	// registered earlier, runs after this and finds it gone), then the roles.
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, testenv.AdminDSN())
		if err != nil {
			tb.Logf("drop roles: %v", err)
			return
		}
		defer c.Close(ctx)
		for _, s := range []string{"DROP DATABASE IF EXISTS " + db + " WITH (FORCE)",
			"DROP ROLE IF EXISTS " + r.Service, "DROP ROLE IF EXISTS " + r.Reader, "DROP ROLE IF EXISTS " + r.Owner} {
			if _, err := c.Exec(ctx, s); err != nil {
				tb.Logf("%s: %v", s, err)
			}
		}
	})
	if err != nil {
		tb.Fatalf("SetupRoles: %v", err)
	}
	rd := roleDB{db: db, roles: r}
	for _, p := range []struct {
		dst  *string
		role string
	}{{&rd.owner, r.Owner}, {&rd.svc, r.Service}, {&rd.auditor, r.Reader}} {
		if *p.dst, err = DSN(testenv.AdminDSN(), p.role, db); err != nil {
			tb.Fatal(err)
		}
	}
	if err := Migrate(ctx, rd.owner); err != nil {
		tb.Fatalf("Migrate as %s: %v", r.Owner, err)
	}
	return rd
}

func openAs(tb testing.TB, dsn string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), dsn, Options{Now: fakeClock()})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return "<no server error>"
}

func TestRolesFor(t *testing.T) {
	for _, tc := range []struct {
		db string
		ok bool
	}{
		{"quill", true}, {"quill_test_0a1b2c", true}, {"Quill", false}, {"quill-dev", false},
		{`quill"; DROP ROLE x; --`, false}, {"", false}, {strings.Repeat("q", 55), true}, {strings.Repeat("q", 56), false},
	} {
		r, err := RolesFor(tc.db)
		if (err == nil) != tc.ok {
			t.Errorf("RolesFor(%q) err = %v, want ok %v", tc.db, err, tc.ok)
		}
		if tc.ok && (r.Owner != tc.db+"_owner" || r.Service != tc.db+"_service" || r.Reader != tc.db+"_reader") {
			t.Errorf("RolesFor(%q) = %+v", tc.db, r)
		}
	}
}

// The service role runs the whole write path but cannot change, remove or
// unprotect history; the checks are the privilege system's, before any
// trigger runs.
func TestServiceRoleCannotRewriteHistory(t *testing.T) {
	t.Parallel()
	rd := newRoleDB(t, false)
	ctx := context.Background()
	s := openAs(t, rd.svc)
	mustRecord(t, s, deposit("D1", "42", 10000))
	mustRecord(t, s, payment("P1", "42", 1234, 7))
	mustRecord(t, s, refund("R1", "P1", 234)) // the refund check runs as the service too
	wantBalance(t, s, ledger.UserAccount("42"), 10000-1234+234)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	if _, _, err := s.CreateCheckpoint(ctx, time.Now(), "ED1", key, false); err != nil {
		t.Fatalf("CreateCheckpoint as service: %v", err)
	}
	checkInvariants(t, s)

	c := connect(t, rd.svc)
	// Block totals are written by the service too (before reports and
	// checkpoints): its INSERTs there must pass, in a transaction undone.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO posting_totals (size, block, account_id, debit, credit) SELECT 1, 0, id, 0, 0 FROM accounts LIMIT 1",
		"INSERT INTO posting_totals_built (size, block) VALUES (1, 0)",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	tx.Rollback(ctx)

	for _, q := range []string{
		"UPDATE entries SET description = 'rewritten'",
		"DELETE FROM entries",
		"UPDATE merchants SET fee_bps = 0",
		"INSERT INTO audit_events (actor, action, subject) VALUES ('x', 'merchant.added', 'M1')",
		"DELETE FROM audit_events",
		"TRUNCATE entries",
		"UPDATE postings SET amount = amount * 2",
		"DELETE FROM postings",
		"TRUNCATE postings",
		"TRUNCATE entries, postings CASCADE",
		"UPDATE accounts SET allow_negative = true",
		"DELETE FROM accounts",
		"UPDATE balances SET allow_negative = true",
		"DELETE FROM balances",
		"UPDATE ledger_head SET singleton = false",
		"DELETE FROM ledger_head",
		"DELETE FROM checkpoints",
		"UPDATE checkpoints SET signature = '\\x00'",
		"DELETE FROM posting_totals",
		"ALTER TABLE entries DISABLE TRIGGER entries_append_only",
		"ALTER TABLE postings DISABLE TRIGGER ALL",
		"ALTER TABLE entries DISABLE TRIGGER USER",
		"DROP TRIGGER entries_append_only ON entries",
		"CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
		"DROP INDEX entries_merchant_order_key",
		"DROP INDEX entries_refund_seq_key",
		"ALTER TABLE entries DISABLE TRIGGER entries_refund_check",
		"CREATE OR REPLACE FUNCTION entries_check_refund() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
		"DROP TABLE entries CASCADE",
		"DROP TABLE postings",
		"ALTER TABLE balances DROP CONSTRAINT balances_non_negative",
		"SET session_replication_role = replica", // would skip every trigger
		"CREATE TABLE entries_shadow (id bigint)",
		"CREATE TEMP TABLE scratch (id bigint)",
		"SELECT * FROM schema_migrations",
	} {
		_, err := c.Exec(ctx, q)
		if code := pgCode(err); code != "42501" { // insufficient_privilege
			t.Errorf("as service: %s: code %s (%v), want 42501 insufficient_privilege", q, code, err)
		}
	}
	// GRANT of a privilege one lacks is only a warning: ask the catalog.
	if _, err := c.Exec(ctx, "GRANT UPDATE, DELETE, TRUNCATE ON entries, postings TO PUBLIC"); err != nil {
		t.Logf("GRANT as service: %v", err)
	}
	for _, table := range []string{"entries", "postings", "accounts", "checkpoints", "posting_totals"} {
		for _, priv := range []string{"UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES"} {
			var has bool
			if err := c.QueryRow(ctx, "SELECT has_table_privilege($1, $2, $3)", rd.roles.Service, table, priv).Scan(&has); err != nil || has {
				t.Errorf("service has %s on %s: %v, %v", priv, table, has, err)
			}
		}
	}
	if n := countEntries(t, s); n != 3 {
		t.Errorf("entries = %d after the attempts, want 3", n)
	}
	checkInvariants(t, s)
}

// The auditors' role reads every report and verifies the chain, and writes
// nothing.
func TestReaderRoleOnlyReads(t *testing.T) {
	t.Parallel()
	rd := newRoleDB(t, false)
	ctx := context.Background()
	w := openAs(t, rd.svc)
	mustRecord(t, w, deposit("D1", "42", 10000))
	rec := mustRecord(t, w, payment("P1", "42", 500, 3))

	r := openAs(t, rd.auditor)
	tb, err := r.TrialBalance(ctx, ledger.AsOf{}, nil)
	if err != nil || tb.AsOfEntry != rec.ID {
		t.Fatalf("TrialBalance as reader = entry %d, %v; want %d", tb.AsOfEntry, err, rec.ID)
	}
	if _, err := r.Statement(ctx, ledger.StatementQuery{Account: ledger.UserAccount("42"), Currency: "CNY", Limit: 10}); err != nil {
		t.Errorf("Statement as reader: %v", err)
	}
	if _, err := r.EntryEvidence(ctx, rec.ID, nil); err != nil {
		t.Errorf("EntryEvidence as reader: %v", err)
	}
	if _, err := r.ListCheckpoints(ctx, 0, 10); err != nil {
		t.Errorf("ListCheckpoints as reader: %v", err)
	}
	checkInvariants(t, r)
	if _, err := r.Record(ctx, deposit("D2", "42", 1)); err == nil {
		t.Error("Record as reader succeeded")
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	if _, _, err := r.CreateCheckpoint(ctx, time.Now(), "ED1", key, false); err == nil {
		t.Error("CreateCheckpoint as reader succeeded")
	}

	c := connect(t, rd.auditor)
	for _, q := range []string{
		"INSERT INTO accounts (code, currency, type, allow_negative) VALUES ('x', 'CNY', 'asset', true)",
		"INSERT INTO checkpoints (seq, head_hash, created_at, key_id, algorithm, signature) VALUES (0, sha256(''), now(), 'k', 'a', '')",
		"UPDATE balances SET balance = 0",
		"UPDATE ledger_head SET seq = seq",
		"DELETE FROM entries",
		"INSERT INTO posting_totals_built (size, block) VALUES (1, 0)",
		"SELECT nextval('accounts_id_seq')",
		"SELECT * FROM ledger_head FOR UPDATE",
	} {
		if _, err := c.Exec(ctx, q); pgCode(err) != "42501" {
			t.Errorf("as reader: %s: %v, want 42501 insufficient_privilege", q, err)
		}
	}
	if n := countEntries(t, w); n != 2 {
		t.Errorf("entries = %d, want 2", n)
	}
}

// A database migrated by a superuser before its roles existed (the dev
// database of an earlier checkout) is handed over: the owner owns every
// object, the service writes, and reruns of SetupRoles and Migrate change
// nothing.
func TestSetupRolesHandsOverAndIsIdempotent(t *testing.T) {
	t.Parallel()
	rd := newRoleDB(t, true)
	ctx := context.Background()
	if _, err := SetupRoles(ctx, testenv.AdminDSN(), rd.db); err != nil {
		t.Fatalf("SetupRoles again: %v", err)
	}
	if err := Migrate(ctx, rd.owner); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	c := connect(t, rd.owner)
	rows, err := c.Query(ctx, `SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
		AND c.relkind IN ('r', 'S', 'i') AND pg_get_userbyid(c.relowner) <> current_user
		UNION ALL SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) <> current_user`)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(foreign) != 0 {
		t.Errorf("objects not owned by %s: %v, %v", rd.roles.Owner, foreign, err)
	}
	s := openAs(t, rd.svc)
	mustRecord(t, s, deposit("D1", "42", 100))
	wantBalance(t, s, ledger.UserAccount("42"), 100)
}

// Each database's roles reach that database only: parallel test databases
// (and production beside staging) cannot reach each other's rows.
func TestRolesDoNotCrossDatabases(t *testing.T) {
	t.Parallel()
	a, b := newRoleDB(t, false), newRoleDB(t, false)
	ctx := context.Background()
	for _, role := range []string{a.roles.Owner, a.roles.Service, a.roles.Reader} {
		dsn, err := DSN(testenv.AdminDSN(), role, b.db)
		if err != nil {
			t.Fatal(err)
		}
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			c.Close(ctx)
			t.Errorf("%s connected to %s", role, b.db)
		} else if pgCode(err) != "42501" {
			t.Errorf("%s to %s: %v, want 42501 insufficient_privilege", role, b.db, err)
		}
	}
}

// Every table the migrations create has a grant decision: a new table fails
// here until journalGrants says what the service and the auditors may do.
func TestGrantsCoverEveryTable(t *testing.T) {
	t.Parallel()
	rd := newRoleDB(t, false)
	c := connect(t, rd.owner)
	rows, err := c.Query(context.Background(), `SELECT relname FROM pg_class
		WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') AND relname <> 'schema_migrations' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, g := range journalGrants {
		listed = append(listed, g.table)
	}
	slices.Sort(listed)
	if !slices.Equal(tables, listed) {
		t.Errorf("tables %v, journalGrants covers %v", tables, listed)
	}
}
