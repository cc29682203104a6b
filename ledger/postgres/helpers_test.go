package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/ledger"
)

// fakeClock returns a clock that starts at a fixed instant (with nanoseconds,
// so microsecond truncation matters) and advances a millisecond per call.
func fakeClock() func() time.Time {
	var n atomic.Int64
	start := time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.FixedZone("CST", 8*3600))
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

// newStore migrates a fresh database and opens a Store on it.
func newStore(tb testing.TB, opts Options) (*Store, string) {
	tb.Helper()
	dsn := testenv.Postgres(tb)
	ctx := context.Background()
	if err := Migrate(ctx, dsn); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	if opts.Now == nil {
		opts.Now = fakeClock()
	}
	s, err := Open(ctx, dsn, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(s.Close)
	return s, dsn
}

// connect opens a raw connection for SQL the Store would never send.
func connect(tb testing.TB, dsn string) *pgx.Conn {
	tb.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func ev(nonce string) ledger.Evidence {
	body := []byte(`{"amount":"1.00","nonce":"` + nonce + `"}`)
	return ledger.Evidence{
		Scheme: "WECHATPAY2-SHA256-RSA2048", KeyID: "K1",
		Authorization: `WECHATPAY2-SHA256-RSA2048 mchid="M1",nonce_str="` + nonce + `",timestamp="1700000000",serial_no="K1",signature="c2ln"`,
		Method:        "POST", Target: "/v1/payments?x=1", Body: body,
	}
}

func deposit(order, user string, amount int64) ledger.Entry {
	return ledger.Deposit("M1", order, user, "CNY", amount, ev("d-"+order))
}

func payment(order, user string, amount, fee int64) ledger.Entry {
	return ledger.Payment("M1", order, user, "CNY", amount, fee, "order "+order, ev("p-"+order))
}

func mustRecord(tb testing.TB, s *Store, e ledger.Entry) ledger.Recorded {
	tb.Helper()
	r, err := s.Record(context.Background(), e)
	if err != nil {
		tb.Fatalf("Record %s: %v", e.OrderID, err)
	}
	return r
}

func wantBalance(tb testing.TB, s *Store, account string, want int64) {
	tb.Helper()
	got, err := s.Balance(context.Background(), account, "CNY")
	if err != nil {
		tb.Fatalf("Balance %s: %v", account, err)
	}
	if got != want {
		tb.Errorf("Balance %s = %d, want %d", account, got, want)
	}
}

func countEntries(tb testing.TB, s *Store) int64 {
	tb.Helper()
	var n int64
	if err := s.pool.QueryRow(context.Background(), "SELECT count(*) FROM entries").Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// checkInvariants runs both integrity checks and fails tb on either.
func checkInvariants(tb testing.TB, s *Store) {
	tb.Helper()
	ctx := context.Background()
	if err := s.CheckBalances(ctx); err != nil {
		tb.Errorf("CheckBalances: %v", err)
	}
	if err := s.VerifyChain(ctx, 0, 0); err != nil {
		tb.Errorf("VerifyChain: %v", err)
	}
}

// constraintOf returns the constraint name of a PostgreSQL error.
func constraintOf(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.ConstraintName
	}
	return fmt.Sprintf("<not a server error: %v>", err)
}

// newRequest builds a request as Record does, for tests that drive the writer
// directly.
func newRequest(e ledger.Entry) *request {
	r := &request{
		e: e, fp: ledger.Fingerprint(e), evidence: ledger.EvidenceDigest(e.Evidence),
		bodySum: sha256.Sum256(e.Evidence.Body), done: make(chan result, 1),
	}
	r.state.Store(taken)
	return r
}
