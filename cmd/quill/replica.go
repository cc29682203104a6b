package main

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/quillpay/quill/ledger/postgres"
)

func bindReplica(fs *pflag.FlagSet, c *config) {
	fs.StringVar(&c.PostgresReadDSN, "pg-read-dsn", envString("QUILL_PG_READ_DSN", ""),
		"PostgreSQL DSN for reads that may lag (reports, statements, exports, chain verification), e.g. a standby; default --pg-dsn. GET /v1/payments/{id} always reads the primary (env QUILL_PG_READ_DSN)")
}

// openReadStore returns the ledger for lag-tolerant reads: a store on
// --pg-read-dsn, or primary itself when the flag is empty. Reads that must see
// the caller's own write (the payment query after its POST) keep using the
// primary store; only report-style readers take this one. The returned store
// must never be given to anything that writes: on a standby every write fails.
//
// The read store is not a readiness check: a lost standby must not take every
// node out of the load balancer while payments still work. List every host
// with target_session_attrs=prefer-standby so reads fall back to the primary.
func openReadStore(ctx context.Context, c config, log zerolog.Logger, now func() time.Time, primary *postgres.Store) (*postgres.Store, func(), error) {
	if c.PostgresReadDSN == "" {
		return primary, func() {}, nil
	}
	s, err := postgres.Open(ctx, c.PostgresReadDSN, postgres.Options{MaxBatch: 1, Logger: log, Now: now})
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}
