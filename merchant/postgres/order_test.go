package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/internal/testenv"
	ledgerpg "github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/merchant"
)

// TestEventSeqIsCommitOrder holds a transaction open after it recorded an
// event and checks that a second event waits for it: otherwise the second
// would commit with the higher seq first, and an auditor paging by seq past
// it would never see the first.
func TestEventSeqIsCommitOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := testenv.Postgres(t)
	if err := ledgerpg.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // committed below
	first, err := record(ctx, tx, merchant.Event{Actor: "a", Action: merchant.KeyRotated, Subject: "M1"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan merchant.Event, 1)
	go func() {
		ev, err := s.Record(ctx, merchant.Event{Actor: "b", Action: merchant.KeyRevoked, Subject: "M1"})
		if err != nil {
			t.Error(err)
		}
		done <- ev
	}()
	// Wait until the second writer waits for the first one's lock; if it
	// finishes instead, nothing orders the writers.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for waiting := false; !waiting; {
		select {
		case ev := <-done:
			t.Fatalf("event %d committed while event %d was still open", ev.Seq, first.Seq)
		default:
		}
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if second := <-done; second.Seq <= first.Seq {
		t.Fatalf("second event seq %d, first %d", second.Seq, first.Seq)
	}
}
