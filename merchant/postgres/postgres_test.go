package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/internal/testenv"
	ledgerpg "github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/merchant"
	"github.com/quillpay/quill/merchant/postgres"
)

func open(t *testing.T) (*postgres.Store, string) {
	t.Helper()
	dsn := testenv.Postgres(t)
	ctx := context.Background()
	if err := ledgerpg.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, dsn
}

var op = merchant.Event{Actor: "alice@ops"}

func TestRegistryRoundTrip(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	in := merchant.Profile{ID: "M100", Name: "Cafe", CanDeposit: true, FeeBps: 60,
		Rules: merchant.Rules{Currencies: []string{"CNY", "USD"}, MaxAmount: "500.00", OrderIDPattern: `^ORD[0-9]+$`}}
	got, err := s.Add(ctx, in, op)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != merchant.Active || got.CreatedAt.IsZero() || got.Rules.MaxAmount != "500.00" || len(got.Rules.Currencies) != 2 {
		t.Fatalf("Add returned %+v", got)
	}
	if _, err := s.Add(ctx, merchant.Profile{ID: "M100"}, op); !errors.Is(err, merchant.ErrExists) {
		t.Fatalf("second Add: %v; want ErrExists", err)
	}
	if _, err := s.Add(ctx, merchant.Profile{ID: "M200", FeeBps: 10001}, op); !errors.Is(err, merchant.ErrInvalid) {
		t.Fatalf("bad fee: %v", err)
	}
	if _, err := s.Add(ctx, merchant.Profile{ID: "M300"}, merchant.Event{}); !errors.Is(err, merchant.ErrInvalid) {
		t.Fatalf("no actor: %v; want ErrInvalid", err)
	}
	if _, err := s.Get(ctx, "M300"); !errors.Is(err, merchant.ErrUnknown) {
		t.Fatalf("a refused Add left a merchant behind: %v", err)
	}

	up, err := s.Update(ctx, "M100", func(p *merchant.Profile) (string, error) {
		p.FeeBps = 80
		p.Status = merchant.Disabled
		return "fee_bps 60→80, disabled", nil
	}, merchant.Event{Actor: "bob@ops", Action: merchant.MerchantDisabled})
	if err != nil {
		t.Fatal(err)
	}
	if up.FeeBps != 80 || up.Status != merchant.Disabled || !up.UpdatedAt.After(up.CreatedAt) {
		t.Fatalf("Update returned %+v", up)
	}
	refusal := errors.New("operator changed their mind")
	if _, err := s.Update(ctx, "M100", func(p *merchant.Profile) (string, error) { p.FeeBps = 1; return "", refusal }, op); !errors.Is(err, refusal) {
		t.Fatalf("refused change: %v", err)
	}
	if _, err := s.Update(ctx, "M100", func(p *merchant.Profile) (string, error) { p.ID = "M101"; return "", nil }, op); !errors.Is(err, merchant.ErrInvalid) {
		t.Fatalf("id change: %v", err)
	}
	if _, err := s.Update(ctx, "NOPE", func(*merchant.Profile) (string, error) { return "", nil }, op); !errors.Is(err, merchant.ErrUnknown) {
		t.Fatalf("unknown: %v", err)
	}
	g, err := s.Get(ctx, "M100")
	if err != nil || g.FeeBps != 80 || g.Status != merchant.Disabled {
		t.Fatalf("Get after refused changes = %+v, %v", g, err)
	}
	if _, err := s.Add(ctx, merchant.Profile{ID: "A1"}, op); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "A1" || all[1].ID != "M100" {
		t.Fatalf("List = %+v, %v", all, err)
	}

	// Exactly one event per committed change, none for refused ones.
	evs, err := s.Events(ctx, merchant.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		actor   string
		action  merchant.Action
		subject string
	}{{"alice@ops", merchant.MerchantAdded, "M100"}, {"bob@ops", merchant.MerchantDisabled, "M100"}, {"alice@ops", merchant.MerchantAdded, "A1"}}
	if len(evs) != len(want) {
		t.Fatalf("events = %+v; want %d", evs, len(want))
	}
	for i, w := range want {
		if evs[i].Actor != w.actor || evs[i].Action != w.action || evs[i].Subject != w.subject || evs[i].At.IsZero() || (i > 0 && evs[i].Seq <= evs[i-1].Seq) {
			t.Errorf("event %d = %+v; want %+v", i, evs[i], w)
		}
	}
	if evs[1].Detail != "fee_bps 60→80, disabled" {
		t.Errorf("event detail %q; want what the change returned", evs[1].Detail)
	}
	if evs, _ := s.Events(ctx, merchant.EventFilter{Subject: "A1"}); len(evs) != 1 {
		t.Fatalf("filter by subject: %+v", evs)
	}
	if evs, _ := s.Events(ctx, merchant.EventFilter{After: evs[0].Seq, Limit: 1}); len(evs) != 1 || evs[0].Action != merchant.MerchantDisabled {
		t.Fatalf("paging: %+v", evs)
	}
	kev, err := s.Record(ctx, merchant.Event{Actor: "alice@ops", Action: merchant.KeyRotated, Subject: "_platform", OldKeyID: "OLD1", NewKeyID: "NEW2", Detail: "overlap 10m0s"})
	if err != nil || kev.Seq == 0 {
		t.Fatalf("Record = %+v, %v", kev, err)
	}
	if evs, _ := s.Events(ctx, merchant.EventFilter{Action: merchant.KeyRotated}); len(evs) != 1 || evs[0].OldKeyID != "OLD1" || evs[0].NewKeyID != "NEW2" {
		t.Fatalf("key event: %+v", evs)
	}
}

func TestConcurrentUpdatesSerialize(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	if _, err := s.Add(ctx, merchant.Profile{ID: "M1"}, op); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Update(ctx, "M1", func(p *merchant.Profile) (string, error) { p.FeeBps++; return "", nil }, op); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p, _ := s.Get(ctx, "M1"); p.FeeBps != 20 {
		t.Fatalf("fee_bps = %d after 20 increments: a change was lost", p.FeeBps)
	}
}

// TestAuditAppendOnly shows the database itself, not only this package,
// refuses to change or remove audit events (and to delete merchants).
func TestAuditAppendOnly(t *testing.T) {
	s, dsn := open(t)
	ctx := context.Background()
	if _, err := s.Add(ctx, merchant.Profile{ID: "M1"}, op); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		`UPDATE audit_events SET actor = 'mallory'`,
		`UPDATE audit_events SET at = at - interval '1 day'`,
		`DELETE FROM audit_events`,
		`TRUNCATE audit_events`,
		`DELETE FROM merchants`,
		`TRUNCATE merchants CASCADE`,
	} {
		t.Run(stmt, func(t *testing.T) {
			_, err := conn.Exec(ctx, stmt)
			if err == nil || !strings.Contains(err.Error(), "not allowed") {
				t.Fatalf("%s: %v; want refused by a trigger", stmt, err)
			}
		})
	}
	evs, err := s.Events(ctx, merchant.EventFilter{})
	if err != nil || len(evs) != 1 || evs[0].Actor != op.Actor {
		t.Fatalf("events after the attempts = %+v, %v", evs, err)
	}
}

// TestIDSyntaxAgrees checks the table's CHECK mirrors merchant.ValidID.
func TestIDSyntaxAgrees(t *testing.T) {
	_, dsn := open(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, id := range []string{"M1", "m_1-x", "_platform", "-x", "a.b", "a b", strings.Repeat("z", 32), strings.Repeat("z", 33), "Ünï"} {
		_, err := conn.Exec(ctx, `INSERT INTO merchants (id, fee_bps) VALUES ($1, 0)`, id)
		if (err == nil) != merchant.ValidID(id) {
			t.Errorf("id %q: database accepted=%t, merchant.ValidID=%t (%v)", id, err == nil, merchant.ValidID(id), err)
		}
	}
}

func TestUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, "postgres://postgres:s3cret@127.0.0.1:1/quill?sslmode=disable&connect_timeout=1", 1)
	if err != nil {
		t.Fatal(err) // pgxpool connects lazily
	}
	defer s.Close()
	_, err = s.List(ctx)
	if !errors.Is(err, merchant.ErrUnavailable) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("List on a closed port: %v; want ErrUnavailable without the password", err)
	}
	if _, err := postgres.Open(ctx, "postgres://u:s3cret@[bad", 1); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad DSN: %v", err)
	}
}

// TestEventFilters covers the auditor's filters: a set of subjects (the
// scope), actions and action families, and a time range, with keyset paging.
func TestEventFilters(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	var evs []merchant.Event
	for _, e := range []merchant.Event{
		{Action: merchant.MerchantAdded, Subject: "M1"},
		{Action: merchant.KeyRotated, Subject: "M1", OldKeyID: "K1", NewKeyID: "K2"},
		{Action: merchant.KeyRevoked, Subject: "M2", OldKeyID: "K9"},
		{Action: merchant.KeyRotated, Subject: "_platform", NewKeyID: "P2"},
		{Action: merchant.CertIssued, Subject: "M2", NewKeyID: "0A"},
	} {
		e.Actor = op.Actor
		got, err := s.Record(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, got)
	}
	seqs := func(f merchant.EventFilter) []int64 {
		t.Helper()
		got, err := s.Events(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		out := []int64{}
		for _, e := range got {
			out = append(out, e.Seq)
		}
		return out
	}
	ids := func(is ...int) []int64 {
		out := []int64{}
		for _, i := range is {
			out = append(out, evs[i].Seq)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    merchant.EventFilter
		want []int64
	}{
		{"all", merchant.EventFilter{}, ids(0, 1, 2, 3, 4)},
		{"subjects", merchant.EventFilter{Subjects: []string{"M1", "_platform"}}, ids(0, 1, 3)},
		{"no subjects", merchant.EventFilter{Subjects: []string{}}, ids()},
		{"subject inside subjects", merchant.EventFilter{Subject: "M2", Subjects: []string{"M2"}}, ids(2, 4)},
		{"subject outside subjects", merchant.EventFilter{Subject: "M2", Subjects: []string{"M1"}}, ids()},
		{"one action", merchant.EventFilter{Actions: []merchant.Action{merchant.KeyRotated}}, ids(1, 3)},
		{"a family and an action", merchant.EventFilter{Actions: []merchant.Action{"key", merchant.CertIssued}}, ids(1, 2, 3, 4)},
		{"a family is not a prefix", merchant.EventFilter{Actions: []merchant.Action{"ke"}}, ids()},
		{"since", merchant.EventFilter{Since: evs[2].At}, ids(2, 3, 4)},
		{"until (exclusive)", merchant.EventFilter{Until: evs[2].At}, ids(0, 1)},
		{"since and until", merchant.EventFilter{Since: evs[1].At, Until: evs[4].At}, ids(1, 2, 3)},
		{"page", merchant.EventFilter{After: evs[1].Seq, Limit: 2}, ids(2, 3)},
		{"everything at once", merchant.EventFilter{Subjects: []string{"M1", "M2"}, Actions: []merchant.Action{"key"},
			Since: evs[0].At, After: evs[1].Seq}, ids(2)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := seqs(c.f); !slices.Equal(got, c.want) {
				t.Fatalf("seqs %v, want %v", got, c.want)
			}
		})
	}
}
