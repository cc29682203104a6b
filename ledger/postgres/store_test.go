package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/ledger"
)

func TestDepositThenPayment(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})

	d := mustRecord(t, s, deposit("D1", "42", 10_000))
	p := mustRecord(t, s, payment("ORD1", "42", 2_500, 15))

	if d.ID != 1 || p.ID != 2 || d.Replayed || p.Replayed {
		t.Fatalf("ids %d, %d, replayed %v, %v; want 1, 2, false, false", d.ID, p.ID, d.Replayed, p.Replayed)
	}
	wantBalance(t, s, "user:42", 7_500)
	wantBalance(t, s, "merchant:M1", 2_485)
	wantBalance(t, s, "platform:fees", 15)
	wantBalance(t, s, "bank:settlement", 10_000)
	checkInvariants(t, s)

	got, err := s.Entry(ctx, "M1", "ORD1")
	if err != nil {
		t.Fatal(err)
	}
	if got != p {
		t.Fatalf("Entry = %+v\nRecord returned %+v", got, p)
	}
	if p.CreatedAt.Location() != time.UTC || p.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("CreatedAt %v is not UTC microseconds", p.CreatedAt)
	}
	if p.Fingerprint != ledger.Fingerprint(payment("ORD1", "42", 2_500, 15)) {
		t.Error("stored fingerprint differs from ledger.Fingerprint")
	}
	if _, err := s.Entry(ctx, "M1", "NOPE"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Entry of unknown order = %v, want ErrNotFound", err)
	}
	if _, err := s.Balance(ctx, "user:nobody", "CNY"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Balance of unknown account = %v, want ErrNotFound", err)
	}

	var body []byte
	var auth string
	if err := s.pool.QueryRow(ctx, "SELECT evidence_body, authorization_header FROM entries WHERE id = 2").Scan(&body, &auth); err != nil {
		t.Fatal(err)
	}
	if want := ev("p-ORD1"); string(body) != string(want.Body) || auth != want.Authorization {
		t.Errorf("stored evidence %q, %q; want %q, %q", body, auth, want.Body, want.Authorization)
	}
}

func TestRecordRejects(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 1_000))

	unbalanced := payment("ORD2", "42", 100, 0)
	unbalanced.Postings[0].Amount = 99
	tests := []struct {
		name string
		e    ledger.Entry
		want error
	}{
		{"insufficient funds", payment("ORD1", "42", 1_001, 0), ledger.ErrInsufficientFunds},
		{"empty wallet", payment("ORD1", "7", 1, 0), ledger.ErrInsufficientFunds},
		{"unbalanced", unbalanced, ledger.ErrUnbalanced},
		{"invalid", payment("", "42", 1, 0), ledger.ErrInvalidEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Record(ctx, tt.e); !errors.Is(err, tt.want) {
				t.Fatalf("Record = %v, want %v", err, tt.want)
			}
		})
	}
	if n := countEntries(t, s); n != 1 {
		t.Errorf("%d entries, want 1", n)
	}
	wantBalance(t, s, "user:42", 1_000)
	wantBalance(t, s, "bank:settlement", 1_000)
	if _, err := s.Balance(ctx, "merchant:M1", "CNY"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("merchant balance after rejected payments: %v, want ErrNotFound (no account)", err)
	}
	checkInvariants(t, s)
}

func TestIdempotency(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 1_000))
	first := mustRecord(t, s, payment("ORD1", "42", 100, 1))

	retry := payment("ORD1", "42", 100, 1)
	retry.Evidence = ev("fresh-nonce") // a retry is signed anew
	again, err := s.Record(ctx, retry)
	if err != nil {
		t.Fatal(err)
	}
	want := first
	want.Replayed = true
	if again != want {
		t.Fatalf("replay = %+v\nwant %+v", again, want)
	}
	for _, e := range []ledger.Entry{
		payment("ORD1", "42", 101, 1),
		payment("ORD1", "43", 100, 1),
		ledger.Payment("M1", "ORD1", "42", "CNY", 100, 1, "other description", ev("x")),
	} {
		if _, err := s.Record(ctx, e); !errors.Is(err, ledger.ErrOrderConflict) {
			t.Errorf("Record %+v = %v, want ErrOrderConflict", e, err)
		}
	}
	// The same order id at another merchant is another order.
	other := ledger.Payment("M2", "ORD1", "42", "CNY", 100, 1, "", ev("m2"))
	if r := mustRecord(t, s, other); r.Replayed {
		t.Error("another merchant's order was reported as a replay")
	}
	if n := countEntries(t, s); n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
	wantBalance(t, s, "user:42", 800)
	checkInvariants(t, s)
}

func TestConcurrentIdenticalRecords(t *testing.T) {
	s, _ := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 1_000))
	const n = 50
	results := make([]ledger.Recorded, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := payment("ORD1", "42", 100, 1)
			e.Evidence = ev(fmt.Sprint("nonce-", i))
			results[i], errs[i] = s.Record(context.Background(), e)
		}()
	}
	wg.Wait()
	replayed := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if results[i].ID != results[0].ID || results[i].Hash != results[0].Hash {
			t.Errorf("call %d: id %d, want %d", i, results[i].ID, results[0].ID)
		}
		if results[i].Replayed {
			replayed++
		}
	}
	if replayed != n-1 {
		t.Errorf("%d replayed, want %d", replayed, n-1)
	}
	if c := countEntries(t, s); c != 2 {
		t.Errorf("%d entries, want 2", c)
	}
	wantBalance(t, s, "user:42", 900)
	checkInvariants(t, s)
}

func TestConcurrentDoubleSpend(t *testing.T) {
	for _, maxBatch := range []int{1, 512} {
		t.Run(fmt.Sprint("MaxBatch=", maxBatch), func(t *testing.T) {
			s, _ := newStore(t, Options{MaxBatch: maxBatch})
			const n, k, price = 50, 17, 300
			mustRecord(t, s, deposit("D1", "42", k*price))
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = s.Record(context.Background(), payment(fmt.Sprint("ORD", i), "42", price, 3))
				}()
			}
			wg.Wait()
			ok := 0
			for i, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, ledger.ErrInsufficientFunds):
					t.Errorf("payment %d: %v", i, err)
				}
			}
			if ok != k {
				t.Errorf("%d payments succeeded, want %d", ok, k)
			}
			wantBalance(t, s, "user:42", 0)
			wantBalance(t, s, "merchant:M1", k*(price-3))
			wantBalance(t, s, "platform:fees", k*3)
			if c := countEntries(t, s); c != k+1 {
				t.Errorf("%d entries, want %d", c, k+1)
			}
			checkInvariants(t, s)
		})
	}
}

// TestBatch drives the writer with hand-built batches so that what shares a
// transaction is certain.
func TestBatch(t *testing.T) {
	type want struct {
		err      error
		replayed bool
		sameAs   int // index whose id this result must share, or -1
	}
	tests := []struct {
		name    string
		entries []ledger.Entry
		want    []want
		balance int64 // user:42 afterwards; the wallet starts at 100
	}{
		{
			name: "duplicates within a batch",
			entries: []ledger.Entry{
				payment("A", "42", 10, 0), payment("A", "42", 10, 0), payment("A", "42", 11, 0), payment("B", "42", 20, 0),
			},
			want:    []want{{nil, false, -1}, {nil, true, 0}, {ledger.ErrOrderConflict, false, -1}, {nil, false, -1}},
			balance: 70,
		},
		{
			name: "funds run out in batch order",
			entries: []ledger.Entry{
				payment("A", "42", 60, 0), payment("B", "42", 60, 0), payment("C", "42", 40, 0), payment("B", "42", 60, 0),
			},
			want: []want{{nil, false, -1}, {ledger.ErrInsufficientFunds, false, -1}, {nil, false, -1},
				{ledger.ErrInsufficientFunds, false, -1}},
			balance: 0,
		},
		{
			name:    "deposit earlier in the batch funds a payment",
			entries: []ledger.Entry{payment("A", "42", 150, 0), deposit("D2", "42", 50), payment("B", "42", 150, 0)},
			want:    []want{{ledger.ErrInsufficientFunds, false, -1}, {nil, false, -1}, {nil, false, -1}},
			balance: 0,
		},
		{
			name:    "nothing accepted",
			entries: []ledger.Entry{payment("A", "42", 101, 0), payment("A", "42", 101, 0)},
			want:    []want{{ledger.ErrInsufficientFunds, false, -1}, {ledger.ErrInsufficientFunds, false, -1}},
			balance: 100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t, Options{})
			mustRecord(t, s, deposit("D1", "42", 100))
			batch := make([]*request, len(tt.entries))
			for i, e := range tt.entries {
				batch[i] = newRequest(e)
			}
			s.process(batch)
			res := make([]result, len(batch))
			for i, r := range batch {
				res[i] = <-r.done
			}
			for i, w := range tt.want {
				r := res[i]
				if !errors.Is(r.err, w.err) || (w.err == nil) != (r.err == nil) {
					t.Errorf("item %d: err %v, want %v", i, r.err, w.err)
					continue
				}
				if r.rec.Replayed != w.replayed {
					t.Errorf("item %d: replayed %v, want %v", i, r.rec.Replayed, w.replayed)
				}
				if w.sameAs >= 0 && r.rec.ID != res[w.sameAs].rec.ID {
					t.Errorf("item %d: id %d, want %d", i, r.rec.ID, res[w.sameAs].rec.ID)
				}
			}
			wantBalance(t, s, "user:42", tt.balance)
			checkInvariants(t, s)
		})
	}
}

// TestPoisonItem makes the database reject one entry of a batch with an
// error the Go checks cannot foresee; the batch falls back to one
// transaction per item and only the poison entry fails.
func TestPoisonItem(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 1_000))
	db := connect(t, dsn)
	if _, err := db.Exec(ctx, `
		CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'poison' USING ERRCODE = 'raise_exception'; END $$;
		CREATE TRIGGER poison BEFORE INSERT ON entries FOR EACH ROW
			WHEN (NEW.order_id = 'POISON') EXECUTE FUNCTION poison();`); err != nil {
		t.Fatal(err)
	}
	batch := []*request{
		newRequest(payment("A", "42", 100, 1)),
		newRequest(payment("POISON", "42", 100, 1)),
		newRequest(payment("B", "42", 100, 1)),
		newRequest(payment("A", "42", 100, 1)),
	}
	s.process(batch)
	for i, r := range batch {
		res := <-r.done
		switch {
		case i == 1:
			if res.err == nil || !strings.Contains(res.err.Error(), "poison") {
				t.Errorf("poison item: %v, want the database's error", res.err)
			}
		case res.err != nil:
			t.Errorf("item %d: %v", i, res.err)
		case res.rec.Replayed != (i == 3):
			t.Errorf("item %d: replayed %v", i, res.rec.Replayed)
		}
	}
	if n := countEntries(t, s); n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
	wantBalance(t, s, "user:42", 800)
	checkInvariants(t, s)
}

// TestCancelWhileQueued holds the chain head so the writer blocks, then
// cancels a queued Record: it returns the context's error and is not written.
func TestCancelWhileQueued(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 1_000))
	holder := connect(t, dsn)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT * FROM ledger_head FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	first := make(chan error, 1)
	go func() {
		_, err := s.Record(ctx, payment("FIRST", "42", 10, 0))
		first <- err
	}()
	// Wait until the writer is blocked on the head lock with FIRST taken.
	watcher := connect(t, dsn)
	for {
		var waiting bool
		if err := watcher.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%ledger_head%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() {
		_, err := s.Record(cctx, payment("SECOND", "42", 10, 0))
		second <- err
	}()
	for len(s.queue) == 0 { // SECOND is queued behind the blocked batch
	}
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Record = %v, want context.Canceled", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first Record: %v", err)
	}
	s.Close() // drains: SECOND, abandoned, must be skipped
	s2, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Entry(ctx, "M1", "SECOND"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("cancelled entry: %v, want ErrNotFound", err)
	}
	if _, err := s2.Entry(ctx, "M1", "FIRST"); err != nil {
		t.Errorf("first entry: %v", err)
	}
}

func TestClosedAndUnavailable(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 1_000))

	t.Run("database refuses connections", func(t *testing.T) {
		admin := connect(t, testenv.AdminDSN())
		name := dsn[strings.LastIndex(dsn, "/")+1:]
		if i := strings.IndexByte(name, '?'); i >= 0 {
			name = name[:i]
		}
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false"); err != nil {
			t.Fatal(err)
		}
		defer admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true") //nolint:errcheck
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Record(ctx, payment("ORD1", "42", 10, 0)); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Record = %v, want ErrUnavailable", err)
		}
		if err := s.Ping(ctx); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Ping = %v, want ErrUnavailable", err)
		}
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true"); err != nil {
			t.Fatal(err)
		}
		// Back up: the same payment goes through, proving nothing was written.
		if r, err := s.Record(ctx, payment("ORD1", "42", 10, 0)); err != nil || r.Replayed {
			t.Errorf("Record after recovery = %+v, %v", r, err)
		}
	})
	t.Run("closed store", func(t *testing.T) {
		s.Close()
		if _, err := s.Record(ctx, payment("ORD2", "42", 10, 0)); !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Record after Close = %v, want ErrUnavailable", err)
		}
	})
	t.Run("open unreachable", func(t *testing.T) {
		_, err := Open(ctx, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", Options{})
		if !errors.Is(err, ledger.ErrUnavailable) {
			t.Errorf("Open = %v, want ErrUnavailable", err)
		}
	})
}

// TestCloseDrains queues many entries and closes at once: every Record
// returns a result and every accepted entry is written.
func TestCloseDrains(t *testing.T) {
	s, _ := newStore(t, Options{MaxBatch: 8})
	mustRecord(t, s, deposit("D1", "42", 1_000_000))
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	okCount := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Record(context.Background(), payment(fmt.Sprint("ORD", i), "42", 10, 0))
			if err == nil {
				mu.Lock()
				okCount++
				mu.Unlock()
			} else if !errors.Is(err, ledger.ErrUnavailable) {
				t.Errorf("Record %d: %v", i, err)
			}
		}()
	}
	s.Close()
	wg.Wait()
	s2, err := Open(context.Background(), s.pool.Config().ConnString(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if c := countEntries(t, s2); c != int64(okCount)+1 {
		t.Errorf("%d entries, %d Record calls succeeded", c, okCount)
	}
	checkInvariants(t, s2)
}

// TestRetryPassStopsWhenDatabaseDies: after a failed batch the items are
// retried alone, but once the database is unreachable the rest are answered
// ErrUnavailable at once, not after one timeout each, and are not written.
func TestRetryPassStopsWhenDatabaseDies(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t, Options{})
	mustRecord(t, s, deposit("D1", "42", 1_000))
	db := connect(t, dsn)
	if _, err := db.Exec(ctx, `
		CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.order_id = 'KILL' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
			RAISE EXCEPTION 'poison' USING ERRCODE = 'raise_exception';
		END $$;
		CREATE TRIGGER poison BEFORE INSERT ON entries FOR EACH ROW
			WHEN (NEW.order_id IN ('POISON', 'KILL')) EXECUTE FUNCTION poison();`); err != nil {
		t.Fatal(err)
	}
	batch := []*request{
		newRequest(payment("A", "42", 100, 1)),
		newRequest(payment("POISON", "42", 100, 1)),
		newRequest(payment("KILL", "42", 100, 1)),
		newRequest(payment("B", "42", 100, 1)),
		newRequest(payment("C", "42", 100, 1)),
	}
	s.process(batch)
	want := []error{nil, nil, ledger.ErrUnavailable, ledger.ErrUnavailable, ledger.ErrUnavailable}
	for i, r := range batch {
		res := <-r.done
		switch {
		case i == 1:
			if res.err == nil || !strings.Contains(res.err.Error(), "poison") {
				t.Errorf("poison item: %v", res.err)
			}
		case want[i] == nil && res.err != nil:
			t.Errorf("item %d: %v", i, res.err)
		case want[i] != nil && !errors.Is(res.err, want[i]):
			t.Errorf("item %d: %v, want %v", i, res.err, want[i])
		}
	}
	if _, err := db.Exec(ctx, `DROP TRIGGER poison ON entries`); err != nil {
		t.Fatal(err)
	}
	// B and C were not written: recording them now is fresh, not a replay.
	for _, order := range []string{"B", "C"} {
		if r, err := s.Record(ctx, payment(order, "42", 100, 1)); err != nil || r.Replayed {
			t.Fatalf("%s after recovery: %+v, %v", order, r, err)
		}
	}
	checkInvariants(t, s)
}

// TestDurableSessions: the Store's sessions commit synchronously whatever the
// server default, and a DSN asking for synchronous_commit=off is refused.
func TestDurableSessions(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	if err := Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	db := connect(t, dsn)
	var name string
	if err := db.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "ALTER DATABASE "+name+" SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v string
	if err := s.pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&v); err != nil || v != "on" {
		t.Errorf("synchronous_commit = %q, %v; want on", v, err)
	}
	if _, err := Open(ctx, dsn+"&synchronous_commit=off", Options{}); err == nil || !strings.Contains(err.Error(), "synchronous_commit") {
		t.Errorf("Open with synchronous_commit=off = %v, want a refusal", err)
	}
}
