package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Roles names the three PostgreSQL roles of one Quill database.
//
// Roles are cluster-wide while a Quill schema lives in one database, so the
// names are derived from the database name: database "quill" has roles
// quill_owner, quill_service and quill_reader. Two databases on one cluster
// (production and staging, or the parallel test databases) never share a
// role, so a grant made for one can never open the other, and setting one up
// never races with another's. Shared role names with per-database grants
// would be the alternative; they would let the service role of one database
// connect to every other one.
type Roles struct {
	// Owner owns the database, its schema and every object in it, and runs
	// the migrations. Only it (or a superuser) can ALTER, DROP or disable a
	// trigger.
	Owner string
	// Service is the role quill serve connects as: SELECT and INSERT on the
	// journal tables, UPDATE only on balances.balance and the chain head's
	// seq and hash, never UPDATE, DELETE or TRUNCATE of history.
	Service string
	// Reader is the auditors' role: SELECT only.
	Reader string
}

// dbName is what SetupRoles accepts as a database name: identifiers that need
// no quoting, so names derived from them need none either.
var dbName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// RolesFor returns the role names of database db. It fails if db is not a
// lower-case unquoted identifier or a derived name would exceed PostgreSQL's
// 63-byte identifier limit.
func RolesFor(db string) (Roles, error) {
	if !dbName.MatchString(db) || len(db)+len("_service") > 63 {
		return Roles{}, fmt.Errorf("ledger/postgres: database name %q: want [a-z_][a-z0-9_]* of at most 55 bytes", db)
	}
	return Roles{Owner: db + "_owner", Service: db + "_service", Reader: db + "_reader"}, nil
}

// DSN returns dsn with its user replaced by role and its database by db: the
// DSN a role connects with when authentication is by host rules, certificate
// or a password file rather than a password in the URL.
func DSN(dsn, role, db string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("ledger/postgres: dsn must be a postgres:// URL")
	}
	u.User = url.User(role)
	u.Path = "/" + db
	return u.String(), nil
}

// journalGrants is every privilege the service and reader roles hold, table
// by table. A table missing here is readable by neither (TestGrantsCoverEveryTable
// fails until it is listed). Column lists keep UPDATE off the columns the
// write path never changes (balances.allow_negative, the head's singleton key).
var journalGrants = []struct {
	table          string
	service        string // privileges of the service role
	serviceColumns string // UPDATE (columns) of the service role, "" for none
}{
	{"accounts", "SELECT, INSERT", ""},
	{"entries", "SELECT, INSERT", ""},
	{"postings", "SELECT, INSERT", ""},
	{"balances", "SELECT, INSERT", "balance"},
	{"ledger_head", "SELECT", "seq, hash"},
	{"checkpoints", "SELECT, INSERT", ""},
	{"posting_totals", "SELECT, INSERT", ""},
	{"posting_totals_built", "SELECT, INSERT", ""},
	// The merchant registry and the operator audit log are written by
	// operators (quillctl, as the owner role); the server only reads
	// profiles, and auditors read both.
	{"merchants", "SELECT", ""},
	{"audit_events", "SELECT", ""},
}

// serviceSequences are the bigserial sequences the service's INSERTs draw from.
var serviceSequences = []string{"accounts_id_seq", "checkpoints_id_seq"}

// SetupRoles creates (or repairs) the roles of database db, which must exist,
// and returns their names. adminDSN connects as a superuser; its database
// part is ignored. It is idempotent and safe to rerun after every migration:
//
//   - the three roles exist, LOGIN, without SUPERUSER, CREATEDB, CREATEROLE,
//     REPLICATION or BYPASSRLS, and without membership in each other;
//   - Owner owns the database, the public schema and every table, sequence
//     and function in it (objects an earlier superuser migration created are
//     handed over);
//   - PUBLIC loses CONNECT and TEMP on the database, CREATE on the schema and
//     every privilege on its tables, sequences and functions;
//   - Service and Reader get exactly the grants of journalGrants (see
//     grantRoles), applied again by every Migrate.
//
// Passwords are not set here: authentication is the cluster's (pg_hba.conf,
// certificates, or ALTER ROLE … PASSWORD by the operator).
func SetupRoles(ctx context.Context, adminDSN, db string) (Roles, error) {
	r, err := RolesFor(db)
	if err != nil {
		return r, err
	}
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return r, translate(err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	for _, role := range []string{r.Owner, r.Service, r.Reader} {
		if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil && !isCode(err, "42710") { // duplicate_object
			return r, fmt.Errorf("ledger/postgres: create role %s: %w", role, err)
		}
		if _, err := admin.Exec(ctx, "ALTER ROLE "+role+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"); err != nil {
			return r, fmt.Errorf("ledger/postgres: alter role %s: %w", role, err)
		}
	}
	// No role may act as another: membership would inherit the owner's rights.
	var members []string
	rows, err := admin.Query(ctx, `SELECT g.rolname, m.rolname FROM pg_auth_members am
		JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
		WHERE g.rolname = ANY($1) OR m.rolname = ANY($1)`, []string{r.Owner, r.Service, r.Reader})
	if err != nil {
		return r, err
	}
	for rows.Next() {
		var g, m string
		if err := rows.Scan(&g, &m); err != nil {
			return r, err
		}
		members = append(members, fmt.Sprintf(`REVOKE "%s" FROM "%s"`, g, m))
	}
	if err := rows.Err(); err != nil {
		return r, err
	}
	stmts := append(members,
		"ALTER DATABASE "+db+" OWNER TO "+r.Owner,
		"REVOKE ALL ON DATABASE "+db+" FROM PUBLIC",
		"GRANT CONNECT ON DATABASE "+db+" TO "+r.Service+", "+r.Reader,
	)
	for _, s := range stmts {
		if _, err := admin.Exec(ctx, s); err != nil {
			return r, fmt.Errorf("ledger/postgres: %s: %w", s, err)
		}
	}

	dsn, err := withDB(adminDSN, db)
	if err != nil {
		return r, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return r, translate(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return err
		}
		for _, s := range []string{
			"ALTER SCHEMA public OWNER TO " + r.Owner,
			"REVOKE ALL ON SCHEMA public FROM PUBLIC",
			"GRANT USAGE ON SCHEMA public TO " + r.Service + ", " + r.Reader,
		} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		if err := handOver(ctx, tx, r.Owner); err != nil {
			return err
		}
		return grantRoles(ctx, tx, r)
	})
	if err != nil {
		return r, fmt.Errorf("ledger/postgres: setup roles of %s: %w", db, err)
	}
	return r, nil
}

// handOver makes owner the owner of every table, sequence and function in the
// public schema: a schema migrated by a superuser before the roles existed
// would otherwise stay out of the owner's reach.
func handOver(ctx context.Context, tx pgx.Tx, owner string) error {
	// Tables first: their identity sequences follow them.
	queries := []string{
		`SELECT format('ALTER TABLE %I OWNER TO %I', c.relname, $1::text) FROM pg_class c
		 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
		   AND pg_get_userbyid(c.relowner) <> $1`,
		`SELECT format('ALTER SEQUENCE %I OWNER TO %I', c.relname, $1::text) FROM pg_class c
		 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
		   AND pg_get_userbyid(c.relowner) <> $1`,
		`SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, $1::text) FROM pg_proc p
		 WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) <> $1`,
	}
	for _, q := range queries {
		rows, err := tx.Query(ctx, q, owner)
		if err != nil {
			return err
		}
		stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
	}
	return nil
}

// grantRoles sets the service's and reader's privileges to exactly
// journalGrants: everything is revoked first, in the same transaction, so a
// privilege dropped from the list is dropped from the database too.
func grantRoles(ctx context.Context, tx pgx.Tx, r Roles) error {
	both := r.Service + ", " + r.Reader
	stmts := []string{
		"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, " + both,
		"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, " + both,
		"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC, " + both,
	}
	// Before the first migration (SetupRoles on a new database) some or all
	// tables are missing: Migrate grants on them once they exist.
	exists := func(name string) (bool, error) {
		var ok bool
		err := tx.QueryRow(ctx, "SELECT to_regclass('public.' || $1) IS NOT NULL", name).Scan(&ok)
		return ok, err
	}
	var seqs []string
	for _, q := range serviceSequences {
		ok, err := exists(q)
		if err != nil {
			return err
		}
		if ok {
			seqs = append(seqs, q)
		}
	}
	for _, g := range journalGrants {
		if ok, err := exists(g.table); err != nil {
			return err
		} else if !ok {
			continue
		}
		stmts = append(stmts,
			"GRANT "+g.service+" ON "+g.table+" TO "+r.Service,
			"GRANT SELECT ON "+g.table+" TO "+r.Reader)
		if g.serviceColumns != "" {
			stmts = append(stmts, "GRANT UPDATE ("+g.serviceColumns+") ON "+g.table+" TO "+r.Service)
		}
	}
	if len(seqs) > 0 {
		stmts = append(stmts, "GRANT USAGE ON SEQUENCE "+strings.Join(seqs, ", ")+" TO "+r.Service)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// regrant reapplies the grants after a migration when the database's roles
// exist (SetupRoles ran), so a new migration cannot leave them stale. Without
// the roles (a database migrated by a superuser alone, as most tests do) it
// does nothing.
func regrant(ctx context.Context, conn *pgx.Conn) error {
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		return err
	}
	r, err := RolesFor(db)
	if err != nil {
		return nil // a name SetupRoles refuses has no roles to maintain
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = ANY($1)",
		[]string{r.Service, r.Reader}).Scan(&n); err != nil || n < 2 {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return err
		}
		return grantRoles(ctx, tx, r)
	})
}

// withDB returns dsn pointed at database db, credentials kept.
func withDB(dsn, db string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("ledger/postgres: dsn must be a postgres:// URL")
	}
	u.Path = "/" + db
	return u.String(), nil
}

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}
