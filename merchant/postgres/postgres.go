package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/quillpay/quill/merchant"
)

// Store is the merchant registry and the audit log in PostgreSQL. It is safe
// for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var (
	_ merchant.Registry = (*Store)(nil)
	_ merchant.EventLog = (*Store)(nil)
)

// Open connects to dsn (a pool of at most maxConns connections; 0 means 4).
// The schema must be migrated (ledger/postgres.Migrate).
func Open(ctx context.Context, dsn string, maxConns int32) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("merchant/postgres: malformed DSN") // the parse error can quote the DSN
	}
	if maxConns <= 0 {
		maxConns = 4
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, translate(err)
	}
	return &Store{pool: pool}, nil
}

// Close releases the connections.
func (s *Store) Close() { s.pool.Close() }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return translate(s.pool.Ping(ctx)) }

const profileColumns = `id, name, status, can_deposit, fee_bps, rules, created_at, updated_at`

func scanProfile(row pgx.Row) (merchant.Profile, error) {
	var p merchant.Profile
	var status string
	var rules []byte
	if err := row.Scan(&p.ID, &p.Name, &status, &p.CanDeposit, &p.FeeBps, &rules, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return p, err
	}
	p.Status = merchant.Status(status)
	if err := json.Unmarshal(rules, &p.Rules); err != nil {
		return p, fmt.Errorf("%w: merchant %s: stored rules: %v", merchant.ErrInvalid, p.ID, err)
	}
	return p, p.Check()
}

// List returns every merchant, sorted by id.
func (s *Store) List(ctx context.Context) ([]merchant.Profile, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+profileColumns+` FROM merchants ORDER BY id`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []merchant.Profile
	for rows.Next() {
		p, err := scanProfile(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, p)
	}
	return out, translate(rows.Err())
}

// Get returns id's profile whatever its status, or ErrUnknown.
func (s *Store) Get(ctx context.Context, id merchant.ID) (merchant.Profile, error) {
	p, err := scanProfile(s.pool.QueryRow(ctx, `SELECT `+profileColumns+` FROM merchants WHERE id = $1`, string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return merchant.Profile{}, fmt.Errorf("%w: %s", merchant.ErrUnknown, id)
	}
	return p, translate(err)
}

// Add registers p and records ev (Subject and Action default to p.ID and
// merchant.MerchantAdded) in one transaction.
func (s *Store) Add(ctx context.Context, p merchant.Profile, ev merchant.Event) (merchant.Profile, error) {
	if p.Status == "" {
		p.Status = merchant.Active
	}
	if err := p.Check(); err != nil {
		return merchant.Profile{}, err
	}
	rules, err := json.Marshal(p.Rules)
	if err != nil {
		return merchant.Profile{}, err
	}
	ev = defaults(ev, p.ID, merchant.MerchantAdded)
	var out merchant.Profile
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = scanProfile(tx.QueryRow(ctx, `INSERT INTO merchants (id, name, status, can_deposit, fee_bps, rules)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+profileColumns,
			p.ID, p.Name, string(p.Status), p.CanDeposit, p.FeeBps, rules))
		if err != nil {
			return err
		}
		_, err = record(ctx, tx, ev)
		return err
	})
	return out, translate(err)
}

// Update applies change to id's profile under a row lock and stores it with
// ev (Subject defaults to id, Action to merchant.MerchantUpdated, Detail to
// what change returns) in one transaction. change may not alter the id.
func (s *Store) Update(ctx context.Context, id merchant.ID, change func(*merchant.Profile) (string, error), ev merchant.Event) (merchant.Profile, error) {
	ev = defaults(ev, string(id), merchant.MerchantUpdated)
	var out merchant.Profile
	var refused error // change's own error: returned as is, never "unavailable"
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := scanProfile(tx.QueryRow(ctx, `SELECT `+profileColumns+` FROM merchants WHERE id = $1 FOR UPDATE`, string(id)))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %s", merchant.ErrUnknown, id)
		}
		if err != nil {
			return err
		}
		detail, err := change(&p)
		if err != nil {
			refused = err
			return err
		}
		if detail != "" {
			ev.Detail = detail
		}
		if p.ID != string(id) {
			return fmt.Errorf("%w: a merchant id cannot change", merchant.ErrInvalid)
		}
		if err := p.Check(); err != nil {
			return err
		}
		rules, err := json.Marshal(p.Rules)
		if err != nil {
			return err
		}
		out, err = scanProfile(tx.QueryRow(ctx, `UPDATE merchants SET name = $2, status = $3, can_deposit = $4,
			fee_bps = $5, rules = $6, updated_at = clock_timestamp() WHERE id = $1 RETURNING `+profileColumns,
			p.ID, p.Name, string(p.Status), p.CanDeposit, p.FeeBps, rules))
		if err != nil {
			return err
		}
		_, err = record(ctx, tx, ev)
		return err
	})
	if refused != nil {
		return merchant.Profile{}, refused
	}
	return out, translate(err)
}

func defaults(ev merchant.Event, subject string, action merchant.Action) merchant.Event {
	if ev.Subject == "" {
		ev.Subject = subject
	}
	if ev.Action == "" {
		ev.Action = action
	}
	return ev
}

// Record appends ev to the audit log and returns it with Seq and At.
func (s *Store) Record(ctx context.Context, ev merchant.Event) (merchant.Event, error) {
	out, err := record(ctx, s.pool, ev)
	return out, translate(err)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// eventLock is the advisory lock key that orders audit log writers.
const eventLock = 0x7161756474 /* "qaudt" */

// record inserts ev. The transaction-scoped advisory lock is taken before
// the identity draws seq and held until the transaction ends, so seqs are
// handed out in commit order: without it a transaction could draw seq N,
// stay open while N+1 commits, and a reader paging by seq past N+1 would
// never see N.
func record(ctx context.Context, q querier, ev merchant.Event) (merchant.Event, error) {
	if strings.TrimSpace(ev.Actor) == "" {
		return ev, fmt.Errorf("%w: an audit event needs an actor (the operator)", merchant.ErrInvalid)
	}
	err := q.QueryRow(ctx, `WITH l AS (SELECT pg_advisory_xact_lock($7))
		INSERT INTO audit_events (actor, action, subject, old_key_id, new_key_id, detail)
		SELECT $1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6 FROM l RETURNING seq, at`,
		ev.Actor, string(ev.Action), ev.Subject, ev.OldKeyID, ev.NewKeyID, ev.Detail, int64(eventLock)).Scan(&ev.Seq, &ev.At)
	return ev, err
}

// Events returns the events matching f, oldest first.
func (s *Store) Events(ctx context.Context, f merchant.EventFilter) ([]merchant.Event, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	actions := make([]string, len(f.Actions))
	for i, a := range f.Actions {
		actions[i] = string(a)
	}
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, at, actor, action, subject, coalesce(old_key_id, ''), coalesce(new_key_id, ''), detail
		FROM audit_events
		WHERE ($1 = '' OR subject = $1) AND ($2 = '' OR action = $2) AND seq > $3
			AND ($5::text[] IS NULL OR subject = ANY($5))
			AND (cardinality($6::text[]) = 0 OR action = ANY($6) OR split_part(action, '.', 1) = ANY($6))
			AND ($7::timestamptz IS NULL OR at >= $7) AND ($8::timestamptz IS NULL OR at < $8)
		ORDER BY seq LIMIT $4`, f.Subject, string(f.Action), f.After, f.Limit, f.Subjects, actions, since, until)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []merchant.Event
	for rows.Next() {
		var ev merchant.Event
		var action string
		if err := rows.Scan(&ev.Seq, &ev.At, &ev.Actor, &action, &ev.Subject, &ev.OldKeyID, &ev.NewKeyID, &ev.Detail); err != nil {
			return nil, translate(err)
		}
		ev.Action = merchant.Action(action)
		out = append(out, ev)
	}
	return out, translate(rows.Err())
}

// translate turns driver errors into merchant errors; merchant errors and
// the caller's own errors pass through.
func translate(err error) error {
	if err == nil {
		return nil
	}
	for _, known := range []error{merchant.ErrUnknown, merchant.ErrInvalid, merchant.ErrInvalidID, merchant.ErrExists, merchant.ErrUnavailable} {
		if errors.Is(err, known) {
			return err
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return merchant.ErrUnknown
	}
	var ce *pgconn.ConnectError
	var pg *pgconn.PgError
	if errors.As(err, &ce) || !errors.As(err, &pg) {
		// Not reached, no answer, timeouts, a closed pool.
		return fmt.Errorf("%w: %v", merchant.ErrUnavailable, err)
	}
	switch {
	case pg.Code == "23505" && pg.ConstraintName == "merchants_pkey":
		return fmt.Errorf("%w: %s", merchant.ErrExists, pg.Detail)
	case pg.Code == "23514": // check_violation
		return fmt.Errorf("%w: %s (%s)", merchant.ErrInvalid, pg.Message, pg.ConstraintName)
	case pg.Code[:2] == "08" || pg.Code[:2] == "53" || pg.Code[:2] == "57":
		return fmt.Errorf("%w: %s (%s)", merchant.ErrUnavailable, pg.Message, pg.Code)
	}
	return fmt.Errorf("merchant/postgres: %s (SQLSTATE %s, constraint %q)", pg.Message, pg.Code, pg.ConstraintName)
}
