package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/quillpay/quill/ledger"
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// MaxBatch caps how many entries one transaction writes. Default 512;
	// 1 gives one transaction per entry.
	MaxBatch int
	// Linger is how long the writer waits for more entries when a batch is not
	// full. Default 0: entries that arrive during a commit form the next batch,
	// which is enough under load and adds no latency when idle.
	Linger time.Duration
	// QueueSize is how many entries may wait for the writer before Record
	// blocks. Default 8×MaxBatch.
	QueueSize int
	// MaxConns is the pool size. Default: pgxpool's (max(4, GOMAXPROCS)).
	MaxConns int32
	// WriteTimeout bounds one batch transaction. Default 30s.
	WriteTimeout time.Duration
	// Now is the clock that stamps created_at. Default time.Now.
	Now func() time.Time
	// Logger receives batch failures (never evidence). Default: disabled.
	Logger zerolog.Logger
	// Observer, if set, hears of every committed batch (metrics). It is
	// called on the writer goroutine and must not block.
	Observer Observer
}

// Observer is told what the writer commits. It is how metrics see the ledger
// without this package importing a metrics library.
type Observer interface {
	// BatchCommitted reports a committed transaction of size entries whose
	// COMMIT (the durable flush) took commit.
	BatchCommitted(size int, commit time.Duration)
}

// QueueDepth is how many entries wait for the writer now: a gauge for
// metrics. It stays near zero while the writer keeps up.
func (s *Store) QueueDepth() int { return len(s.queue) }

// Store is a PostgreSQL ledger. It implements ledger.Writer and
// ledger.Reader. Create it with Open and release it with Close.
type Store struct {
	pool *pgxpool.Pool
	opts Options

	mu      sync.RWMutex // guards closed and sending on queue
	closed  bool
	queue   chan *request
	stopped chan struct{}
	once    sync.Once

	// accounts caches (code, currency) → id; accounts are immutable. Only the
	// writer goroutine uses it, and only ids from committed transactions enter.
	accounts map[accountKey]account
}

var (
	_ ledger.Writer = (*Store)(nil)
	_ ledger.Reader = (*Store)(nil)
)

type accountKey struct{ code, currency string }

type account struct {
	id            int64
	sign          int64 // ledger.NormalSign of its type
	allowNegative bool
}

// Open connects to the database at dsn (the schema must be migrated, see
// Migrate) and starts the writer. It returns an error wrapping
// ledger.ErrUnavailable if the server cannot be reached.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger/postgres: dsn: %w", err)
	}
	return open(ctx, cfg, opts)
}

// open is Open on a parsed pool configuration (tests add session settings).
func open(ctx context.Context, cfg *pgxpool.Config, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8 * opts.MaxBatch
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// A Record returns only after its commit is durable, whatever the
	// server's default: the sessions run with synchronous_commit on (or the
	// stricter value the DSN names), never off.
	switch v := cfg.ConnConfig.RuntimeParams["synchronous_commit"]; v {
	case "":
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	case "off":
		return nil, fmt.Errorf("ledger/postgres: dsn: synchronous_commit=off would acknowledge entries that a crash can lose")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, translate(err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, translate(err)
	}
	s := &Store{
		pool:     pool,
		opts:     opts,
		queue:    make(chan *request, opts.QueueSize),
		stopped:  make(chan struct{}),
		accounts: make(map[accountKey]account),
	}
	go s.run()
	return s, nil
}

// Close stops accepting entries, writes those already queued, waits for the
// writer and closes the pool. Record calls after Close return
// ledger.ErrUnavailable. Close is idempotent.
func (s *Store) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.queue)
		s.mu.Unlock()
		<-s.stopped
		s.pool.Close()
	})
}

// Ping checks that the database answers; it returns an error wrapping
// ledger.ErrUnavailable if not.
func (s *Store) Ping(ctx context.Context) error { return translate(s.pool.Ping(ctx)) }

// Request states: a queued request is taken by the writer or abandoned by
// its caller, whichever happens first.
const (
	queued int32 = iota
	taken
	abandoned
)

type request struct {
	e        ledger.Entry
	fp       [32]byte
	evidence [32]byte // ledger.EvidenceDigest
	bodySum  [32]byte // SHA-256 of the body
	state    atomic.Int32
	done     chan result // buffered: the writer never blocks on it
}

type result struct {
	rec ledger.Recorded
	err error
}

// Record writes e as described by ledger.Writer, batched with concurrent
// calls into one transaction. If ctx ends while e is still queued, Record
// returns ctx's error and e is not written; once the writer has taken e, Record
// waits for the outcome.
func (s *Store) Record(ctx context.Context, e ledger.Entry) (ledger.Recorded, error) {
	if err := e.Validate(); err != nil {
		return ledger.Recorded{}, err
	}
	if err := ctx.Err(); err != nil {
		return ledger.Recorded{}, err
	}
	// Hash on the caller's goroutine, off the single writer.
	req := &request{
		e:        e,
		fp:       ledger.Fingerprint(e),
		evidence: ledger.EvidenceDigest(e.Evidence),
		bodySum:  sha256.Sum256(e.Evidence.Body),
		done:     make(chan result, 1),
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ledger.Recorded{}, fmt.Errorf("%w: store closed", ledger.ErrUnavailable)
	}
	select {
	case s.queue <- req:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ledger.Recorded{}, ctx.Err()
	}
	select {
	case r := <-req.done:
		return r.rec, r.err
	case <-ctx.Done():
		if req.state.CompareAndSwap(queued, abandoned) {
			return ledger.Recorded{}, ctx.Err()
		}
		r := <-req.done
		return r.rec, r.err
	}
}

// run is the writer goroutine: it takes batches off the queue until Close
// closes it, then exits.
func (s *Store) run() {
	defer close(s.stopped)
	batch := make([]*request, 0, s.opts.MaxBatch)
	for first := range s.queue {
		batch = s.collect(batch[:0], first)
		if len(batch) > 0 {
			s.process(batch)
		}
		clear(batch)
	}
}

// collect takes first and whatever else is queued, up to MaxBatch, skipping
// requests their callers abandoned.
func (s *Store) collect(batch []*request, first *request) []*request {
	take := func(r *request) {
		if r.state.CompareAndSwap(queued, taken) {
			batch = append(batch, r)
		}
	}
	take(first)
	var linger <-chan time.Time
	if s.opts.Linger > 0 {
		t := time.NewTimer(s.opts.Linger)
		defer t.Stop()
		linger = t.C
	}
	for len(batch) < s.opts.MaxBatch {
		select {
		case r, ok := <-s.queue:
			if !ok {
				return batch
			}
			take(r)
			continue
		default:
		}
		if linger == nil {
			return batch
		}
		select {
		case r, ok := <-s.queue:
			if !ok {
				return batch
			}
			take(r)
		case <-linger:
			return batch
		}
	}
	return batch
}

// process writes batch and delivers every request's result.
func (s *Store) process(batch []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
	defer cancel()
	res, stage, err := s.writeBatch(ctx, batch)
	if err == nil {
		for i, r := range batch {
			r.done <- res[i]
		}
		return
	}
	if stage == beforeCommit && unreachable(err) {
		// Rolled back without reaching the server: nothing was written, and
		// retrying each item against a dead server would only add delay.
		s.opts.Logger.Warn().Err(err).Int("batch", len(batch)).Msg("ledger: batch failed, store unavailable")
		err = translate(err)
		for _, r := range batch {
			r.done <- result{err: err}
		}
		return
	}
	if len(batch) == 1 && stage == beforeCommit {
		batch[0].done <- result{err: translate(err)}
		return
	}
	if len(batch) > 1 {
		s.opts.Logger.Warn().Err(err).Int("batch", len(batch)).Msg("ledger: batch failed, retrying items one by one")
	}
	s.retryAlone(batch, stage == committing)
}

// retryAlone writes each request of a failed batch in its own transaction, so
// that a poison entry fails alone and, after an unclear commit (unknown), an
// entry that did commit comes back as Replayed. The whole pass shares one
// WriteTimeout, and once the server is unreachable the rest are not tried: a
// dead database must not hold every caller for one timeout each. A request
// not settled is answered ErrUnavailable, or ErrOutcomeUnknown when its entry
// may have committed.
func (s *Store) retryAlone(batch []*request, unknown bool) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
	defer cancel()
	down := false
	for _, r := range batch {
		if down || ctx.Err() != nil {
			r.done <- result{err: unsettled(unknown)}
			continue
		}
		res, stage, err := s.writeBatch(ctx, []*request{r})
		switch {
		case err == nil:
			r.done <- res[0]
		case unreachable(err) || ctx.Err() != nil:
			down = true
			r.done <- result{err: unsettled(unknown || stage == committing)}
		default:
			r.done <- result{err: translate(err)}
		}
	}
}

// unsettled is the error of a request whose write could not be completed:
// nothing was written, or (unknown) it may have been.
func unsettled(unknown bool) error {
	if unknown {
		return ledger.ErrOutcomeUnknown
	}
	return fmt.Errorf("%w: database unreachable", ledger.ErrUnavailable)
}
