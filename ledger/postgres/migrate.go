package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the pg_advisory_xact_lock key that serializes migrators.
const migrationLock = 0x7175696c6c /* "quill" */

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, p := range names {
		name := strings.TrimPrefix(p, "migrations/")
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("ledger/postgres: migration %q: name must be NNNN_description.sql", name)
		}
		b, err := migrationFiles.ReadFile(p)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("ledger/postgres: two migrations numbered %d", ms[i].version)
		}
	}
	return ms, nil
}

// Migrate applies the embedded migrations not yet recorded in
// schema_migrations, in order, each in its own transaction. It is safe to run
// from several processes at once and a no-op when the schema is current.
// When the database's roles exist (SetupRoles), it then reapplies their
// grants; dsn should connect as Roles.Owner so new objects are the owner's.
func Migrate(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return translate(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := migrate(ctx, conn, 0); err != nil {
		return err
	}
	if err := regrant(ctx, conn); err != nil {
		return fmt.Errorf("ledger/postgres: grants: %w", translate(err))
	}
	return nil
}

// migrate applies migrations up to and including version upTo (all if 0).
func migrate(ctx context.Context, conn *pgx.Conn, upTo int) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if upTo > 0 && m.version > upTo {
			break
		}
		if err := applyOne(ctx, conn, m); err != nil {
			return fmt.Errorf("ledger/postgres: migration %s: %w", m.name, translate(err))
		}
	}
	return nil
}

func applyOne(ctx context.Context, conn *pgx.Conn, m migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    int         PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var done bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", m.version).Scan(&done); err != nil {
			return err
		}
		if done {
			return nil
		}
		// No arguments: pgx sends it with the simple protocol, which allows
		// several statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
		return err
	})
}

// Analyze refreshes the planner statistics of the ledger tables. The write
// path does not depend on them (its plans are index lookups by construction),
// but reports and ad-hoc queries do; run it after Migrate on a new database,
// after Seed, and whenever autovacuum is off.
func Analyze(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return translate(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return analyze(ctx, conn)
}

func analyze(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "ANALYZE accounts, balances, entries, postings, ledger_head")
	return translate(err)
}
