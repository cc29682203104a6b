package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/ledger/postgres"
)

// leastPrivilege gives the fresh database at dsn its three roles and points
// c at them as production does: migrations as the owner, the server as the
// service role, auditor reads as the reader. The roles are dropped when t
// ends, after the server (registered later) has stopped.
func leastPrivilege(t *testing.T, c *config, dsn string) {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	r, err := postgres.SetupRoles(ctx, testenv.AdminDSN(), db)
	t.Cleanup(func() {
		a, err := pgx.Connect(ctx, testenv.AdminDSN())
		if err != nil {
			t.Logf("drop roles: %v", err)
			return
		}
		defer a.Close(ctx)
		for _, s := range []string{"DROP DATABASE IF EXISTS " + db + " WITH (FORCE)",
			"DROP ROLE IF EXISTS " + r.Service, "DROP ROLE IF EXISTS " + r.Reader, "DROP ROLE IF EXISTS " + r.Owner} {
			if _, err := a.Exec(ctx, s); err != nil {
				t.Logf("%s: %v", s, err)
			}
		}
	})
	if err != nil {
		t.Fatalf("SetupRoles: %v", err)
	}
	for _, p := range []struct {
		dst  *string
		role string
	}{{&c.MigrateDSN, r.Owner}, {&c.PostgresDSN, r.Service}, {&c.AuditDSN, r.Reader}} {
		if *p.dst, err = postgres.DSN(testenv.AdminDSN(), p.role, db); err != nil {
			t.Fatal(err)
		}
	}
}
