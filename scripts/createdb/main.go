// Command createdb creates the database named in a PostgreSQL DSN if it does
// not exist yet, connecting to the server's postgres database to do so. The dev
// script uses it so no psql client is needed.
//
// With -roles it then creates (or repairs) the database's owner, service and
// reader roles and their grants (postgres.SetupRoles); the DSN must then be a
// superuser's. See docs/OPERATIONS.md "Database roles".
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger/postgres"
)

func main() {
	roles := flag.Bool("roles", false, "also set up the database's owner, service and reader roles")
	flag.Usage = func() { fmt.Fprintln(os.Stderr, "usage: createdb [-roles] ADMIN_DSN") }
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	err := run(flag.Arg(0))
	if err == nil && *roles {
		err = setupRoles(flag.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "createdb:", err)
		os.Exit(1)
	}
}

func setupRoles(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := postgres.SetupRoles(ctx, dsn, strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		return err
	}
	fmt.Printf("roles: owner %s, service %s, reader %s\n", r.Owner, r.Service, r.Reader)
	return nil
}

func run(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || strings.ContainsAny(name, `"`) {
		return fmt.Errorf("DSN names no usable database")
	}
	u.Path = "/postgres"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var exists bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = c.Exec(ctx, `CREATE DATABASE "`+name+`"`)
	return err
}
