package postgres

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger"
)

var _ ledger.Checkpoints = (*Store)(nil)

// auditChunk is how many entries AuditChain reads per round trip (a variable
// so tests can make every range span many chunks and both readers).
var auditChunk int64 = 5000

// CreateCheckpoint implements ledger.Checkpoints. Before signing it recomputes
// the chain from the newest checkpoint to the head (and checks that
// checkpoint's head), so Quill never signs a head it has not verified; a
// failure returns an error wrapping ledger.ErrIntegrity and stores nothing.
func (s *Store) CreateCheckpoint(ctx context.Context, now time.Time, keyID string, key crypto.Signer, skipUnchanged bool) (ledger.Checkpoint, bool, error) {
	var (
		c    ledger.Checkpoint
		last *ledger.Checkpoint
		head []byte
	)
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT seq, hash FROM ledger_head`).Scan(&c.Seq, &head); err != nil {
			return translate(err)
		}
		cps, err := listCheckpoints(ctx, tx, `ORDER BY id DESC LIMIT 1`)
		if err != nil {
			return err
		}
		if len(cps) == 1 {
			last = &cps[0]
		}
		return nil
	})
	if err != nil {
		return c, false, err
	}
	copy(c.Head[:], head)
	if skipUnchanged && last != nil && last.Seq == c.Seq && last.Head == c.Head {
		return *last, false, nil
	}
	from := int64(1)
	if last != nil && last.Seq <= c.Seq {
		from = last.Seq + 1
	}
	rep, err := s.AuditChain(ctx, from, c.Seq, nil)
	if err != nil {
		return c, false, err
	}
	if err := rep.Err(); err != nil {
		return c, false, fmt.Errorf("ledger/postgres: refusing to sign the head: %w", err)
	}
	if rep.Head < c.Seq {
		return c, false, fmt.Errorf("%w: head moved back", ledger.ErrIntegrity)
	}
	c.CreatedAt = now
	if c, err = ledger.SignCheckpoint(c, keyID, key); err != nil {
		return c, false, err
	}
	err = s.pool.QueryRow(ctx, `INSERT INTO checkpoints (seq, head_hash, created_at, key_id, algorithm, signature)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, c.Seq, c.Head[:], c.CreatedAt, c.KeyID, c.Algorithm, c.Signature).Scan(&c.ID)
	if err != nil {
		return c, false, translate(err)
	}
	// Keep the report blocks current off the request path; a failure here
	// only means the next report builds them.
	_ = s.ensureBlocks(ctx)
	return c, true, nil
}

// ListCheckpoints implements ledger.Checkpoints.
func (s *Store) ListCheckpoints(ctx context.Context, afterID int64, limit int) ([]ledger.Checkpoint, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var out []ledger.Checkpoint
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = listCheckpoints(ctx, tx, `WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
		return err
	})
	return out, err
}

func listCheckpoints(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]ledger.Checkpoint, error) {
	rows, err := tx.Query(ctx, `SELECT id, seq, head_hash, created_at, key_id, algorithm, signature FROM checkpoints `+where, args...)
	if err != nil {
		return nil, translate(err)
	}
	cps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Checkpoint, error) {
		var c ledger.Checkpoint
		var head []byte
		err := r.Scan(&c.ID, &c.Seq, &head, &c.CreatedAt, &c.KeyID, &c.Algorithm, &c.Signature)
		copy(c.Head[:], head)
		c.CreatedAt = c.CreatedAt.UTC()
		return c, err
	})
	return cps, translate(err)
}

// AuditChain implements ledger.Checkpoints. It reads one snapshot in chunks
// (constant memory) and stops recomputing at the first bad entry; every
// checkpoint signature in the range is still checked. keys nil skips the
// signature checks (the writer's own pre-signing check).
func (s *Store) AuditChain(ctx context.Context, from, to int64, keys ledger.CheckpointKeys) (ledger.ChainReport, error) {
	var rep ledger.ChainReport
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		var headHash []byte
		if err := tx.QueryRow(ctx, `SELECT seq, hash FROM ledger_head`).Scan(&rep.Head, &headHash); err != nil {
			return translate(err)
		}
		from = max(from, 1)
		if to <= 0 || to > rep.Head {
			to = rep.Head
		}
		rep.From, rep.To = from, to
		// Checkpoints from the one just before the range (it vouches for the
		// stored hash the range starts from) to its end, and beyond the head
		// too when the range reaches it (a truncated chain).
		upper := to
		if to == rep.Head {
			upper = 1<<63 - 1
		}
		cps, err := listCheckpoints(ctx, tx, `WHERE seq BETWEEN $1 AND $2 ORDER BY seq, id`, from-1, upper)
		if err != nil {
			return err
		}
		rep.Checkpoints = len(cps)
		if keys != nil {
			// A checkpoint whose signature fails proves nothing about the
			// chain: it is reported and left out of the walk.
			good := cps[:0:0]
			for _, c := range cps {
				if reason := checkSignature(ctx, keys, c); reason != "" {
					if rep.BadCheckpoint == 0 {
						rep.BadCheckpoint, rep.CheckpointReason = c.ID, reason
					}
					continue
				}
				good = append(good, c)
			}
			cps = good
		}
		prev := ledger.GenesisHash
		if from > 1 {
			var h []byte
			err := tx.QueryRow(ctx, `SELECT hash FROM entries WHERE id = $1`, from-1).Scan(&h)
			if errors.Is(err, pgx.ErrNoRows) {
				rep.FirstBad, rep.Reason = from-1, "entry is missing"
				return nil
			} else if err != nil {
				return translate(err)
			}
			copy(prev[:], h)
		}
		a := chainAuditor{rep: &rep, cps: cps, lastGood: from - 1}
		a.passed(from-1, prev)
		// Readers fetch chunks (alternately, each on its own connection in
		// the same snapshot) and compute each entry's own digests, while this
		// goroutine walks the chain in order.
		readers := []pgx.Tx{tx}
		if to-from+1 > auditChunk {
			if tx2, err := s.sharedSnapshot(ctx, tx); err == nil {
				defer tx2.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
				readers = append(readers, tx2)
			}
		}
		fctx, cancel := context.WithCancel(ctx)
		n := int64(len(readers))
		chans := make([]chan auditChunkData, n)
		for i, rtx := range readers {
			chans[i] = make(chan auditChunkData, 1)
			go fetchChunks(fctx, rtx, from+int64(i)*auditChunk, to, n*auditChunk, chans[i])
		}
		// Every reader has stopped before the snapshot's transactions end.
		stop := func() {
			cancel()
			for _, ch := range chans {
				for range ch {
				}
			}
		}
		for i := int64(0); ; i++ {
			c, ok := <-chans[i%n]
			if !ok {
				break
			}
			if c.err != nil && rep.FirstBad == 0 {
				stop()
				return c.err
			}
			if rep.FirstBad == 0 {
				prev = a.walk(c, prev)
			}
			if rep.FirstBad != 0 {
				break
			}
		}
		stop()
		if rep.FirstBad != 0 {
			return nil
		}
		if to == rep.Head {
			if string(headHash) != string(prev[:]) {
				rep.FirstBad, rep.Reason = to, "the chain head's hash does not match this entry"
				return nil
			}
			var extra int64
			if err := tx.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM entries`).Scan(&extra); err != nil {
				return translate(err)
			}
			if extra > rep.Head {
				rep.FirstBad, rep.Reason = rep.Head+1, "entry exists beyond the chain head"
				return nil
			}
			for _, c := range a.cps {
				if c.Seq > rep.Head {
					rep.FirstBad = rep.Head + 1
					rep.Reason = fmt.Sprintf("entry is missing: checkpoint %d covers entries up to %d", c.ID, c.Seq)
					a.badCheckpoint(c, "signed a head beyond the current chain")
					break
				}
			}
		}
		return nil
	})
	return rep, err
}

// sharedSnapshot opens a second read-only transaction on tx's snapshot
// (pg_export_snapshot), so two connections read one consistent state.
func (s *Store) sharedSnapshot(ctx context.Context, tx pgx.Tx) (pgx.Tx, error) {
	var id string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&id); err != nil {
		return nil, err
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'A' && r <= 'F' || r == '-') {
			return nil, fmt.Errorf("unexpected snapshot id %q", id)
		}
	}
	tx2, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	if _, err := tx2.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+id+`'`); err != nil {
		tx2.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
		return nil, err
	}
	return tx2, nil
}

func checkSignature(ctx context.Context, keys ledger.CheckpointKeys, c ledger.Checkpoint) string {
	pub, err := keys.CheckpointKey(ctx, c.KeyID)
	if err != nil {
		return fmt.Sprintf("signing key %q: %v", c.KeyID, err)
	}
	if err := ledger.VerifyCheckpoint(c, pub); err != nil {
		return "signature does not verify"
	}
	return ""
}

// chainAuditor walks the chain, compares each checkpoint as its entry passes,
// and records the first failure.
type chainAuditor struct {
	rep      *ledger.ChainReport
	cps      []ledger.Checkpoint // sorted by seq; consumed as the walk passes them
	lastGood int64               // seq of the last checkpoint that matched (or the start)
}

func (a *chainAuditor) badCheckpoint(c ledger.Checkpoint, reason string) {
	if a.rep.BadCheckpoint == 0 {
		a.rep.BadCheckpoint, a.rep.CheckpointReason = c.ID, reason
	}
}

// passed compares the checkpoints at seq with hash, the recomputed chain value.
func (a *chainAuditor) passed(seq int64, hash [32]byte) {
	for len(a.cps) > 0 && a.cps[0].Seq <= seq {
		c := a.cps[0]
		a.cps = a.cps[1:]
		if c.Seq < seq {
			continue
		}
		if c.Head != hash {
			a.badCheckpoint(c, fmt.Sprintf("signed another head for entry %d", seq))
			if a.rep.FirstBad == 0 {
				// The chain recomputes, so it was rewritten consistently after
				// the last checkpoint that still matches.
				a.rep.FirstBad = a.lastGood + 1
				a.rep.Reason = fmt.Sprintf("the chain was rewritten: entries %d..%d recompute, but checkpoint %d signed another head for entry %d",
					a.lastGood+1, seq, c.ID, seq)
			}
			return
		}
		a.lastGood = seq
	}
}

func (a *chainAuditor) fail(id int64, reason string) { a.rep.FirstBad, a.rep.Reason = id, reason }

// auditEntry is a stored entry with the digests that depend on it alone.
type auditEntry struct {
	storedEntry
	bodyOK      bool
	fingerprint [32]byte
	evidence    [32]byte
}

type auditChunkData struct {
	lo, hi  int64
	entries []auditEntry
	orphan  int64 // first posting entry id without its entry (0: none)
	err     error
}

// fetchChunks reads the chunks starting at from, from+step, … up to to, one
// round trip each, and sends them with their own digests computed; it closes
// out when done.
// Accounts are resolved from a cache filled as new ids appear.
func fetchChunks(ctx context.Context, tx pgx.Tx, from, to, step int64, out chan<- auditChunkData) {
	defer close(out)
	accounts := map[int64]ledger.Posting{}
	for lo := from; lo <= to; lo += step {
		hi := min(lo+auditChunk-1, to)
		c := readChunk(ctx, tx, lo, hi, accounts)
		select {
		case out <- c:
		case <-ctx.Done():
			return
		}
		if c.err != nil {
			return
		}
	}
}

func readChunk(ctx context.Context, tx pgx.Tx, lo, hi int64, accounts map[int64]ledger.Posting) auditChunkData {
	c := auditChunkData{lo: lo, hi: hi}
	b := &pgx.Batch{}
	b.Queue(`SELECT id, kind, merchant_id, order_id, coalesce(refund_id, ''), payer, currency, amount, fee,
		description, fingerprint, hash, created_at, prev_hash, evidence_scheme, evidence_key_id,
		authorization_header, evidence_method, evidence_target, evidence_body, evidence_body_sha256
		FROM entries WHERE id BETWEEN $1 AND $2 ORDER BY id`, lo, hi)
	b.Queue(`SELECT entry_id, account_id, amount FROM postings WHERE entry_id BETWEEN $1 AND $2 ORDER BY entry_id, seq`, lo, hi)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		c.err = translate(err)
		return c
	}
	c.entries = make([]auditEntry, 0, hi-lo+1)
	for rows.Next() {
		var (
			e        auditEntry
			kind     string
			fp, hash []byte
		)
		if err := rows.Scan(&e.rec.ID, &kind, &e.rec.Merchant, &e.rec.OrderID, &e.rec.RefundID, &e.rec.Payer, &e.rec.Currency,
			&e.rec.Amount, &e.rec.Fee, &e.rec.Description, &fp, &hash, &e.rec.CreatedAt, &e.prevHash,
			&e.ev.Scheme, &e.ev.KeyID, &e.ev.Authorization, &e.ev.Method, &e.ev.Target, &e.ev.Body, &e.bodySum); err != nil {
			rows.Close()
			c.err = translate(err)
			return c
		}
		e.rec.Kind = ledger.Kind(kind)
		copy(e.rec.Fingerprint[:], fp)
		copy(e.rec.Hash[:], hash)
		c.entries = append(c.entries, e)
	}
	if err := rows.Err(); err != nil {
		c.err = translate(err)
		return c
	}
	type raw struct{ entry, account, amount int64 }
	var ps []raw
	var missing []int64
	rows, err = br.Query()
	if err != nil {
		c.err = translate(err)
		return c
	}
	for rows.Next() {
		var r raw
		if err := rows.Scan(&r.entry, &r.account, &r.amount); err != nil {
			rows.Close()
			c.err = translate(err)
			return c
		}
		if _, ok := accounts[r.account]; !ok {
			accounts[r.account] = ledger.Posting{}
			missing = append(missing, r.account)
		}
		ps = append(ps, r)
	}
	if err := rows.Err(); err != nil {
		c.err = translate(err)
		return c
	}
	if err := br.Close(); err != nil {
		c.err = translate(err)
		return c
	}
	if len(missing) > 0 {
		rows, err := tx.Query(ctx, `SELECT id, code, currency FROM accounts WHERE id = ANY($1)`, missing)
		if err != nil {
			c.err = translate(err)
			return c
		}
		for rows.Next() {
			var id int64
			var a ledger.Posting
			if err := rows.Scan(&id, &a.Account, &a.Currency); err != nil {
				rows.Close()
				c.err = translate(err)
				return c
			}
			accounts[id] = a
		}
		if err := rows.Err(); err != nil {
			c.err = translate(err)
			return c
		}
	}
	i := 0
	for _, r := range ps {
		for i < len(c.entries) && c.entries[i].rec.ID < r.entry {
			i++
		}
		if i < len(c.entries) && c.entries[i].rec.ID == r.entry {
			p := accounts[r.account]
			p.Amount = r.amount
			c.entries[i].postings = append(c.entries[i].postings, p)
		} else if c.orphan == 0 {
			c.orphan = r.entry
		}
	}
	for j := range c.entries {
		e := &c.entries[j]
		e.bodyOK = bodyMatches(e.ev.Body, e.bodySum)
		e.fingerprint = ledger.Fingerprint(e.rec.Content(e.postings))
		e.evidence = ledger.EvidenceDigest(e.ev)
	}
	return c
}

// walk checks one chunk's entries in order against the chain so far and
// returns the chain value after them; it stops at the first failure.
func (a *chainAuditor) walk(c auditChunkData, prev [32]byte) [32]byte {
	for j := range c.entries {
		e := &c.entries[j]
		id := c.lo + int64(j)
		if c.orphan != 0 && c.orphan < e.rec.ID {
			a.fail(c.orphan, "entry is missing but its postings remain")
			return prev
		}
		switch {
		case e.rec.ID != id:
			a.fail(id, "entry is missing")
		case string(e.prevHash) != string(prev[:]):
			a.fail(id, fmt.Sprintf("prev_hash does not link to entry %d", id-1))
		case !e.bodyOK:
			a.fail(id, "evidence body does not match its digest")
		case e.fingerprint != e.rec.Fingerprint:
			a.fail(id, "content or postings do not match the fingerprint")
		}
		if a.rep.FirstBad != 0 {
			return prev
		}
		h := ledger.ChainHash(prev, e.rec, e.postings, e.evidence)
		if h != e.rec.Hash {
			a.fail(id, "hash does not match the content")
			return prev
		}
		prev = h
		a.rep.Entries++
		if a.passed(id, h); a.rep.FirstBad != 0 {
			return prev
		}
	}
	if n := int64(len(c.entries)); n != c.hi-c.lo+1 {
		if c.orphan != 0 && c.orphan < c.lo+n {
			a.fail(c.orphan, "entry is missing but its postings remain")
		} else {
			a.fail(c.lo+n, "entry is missing")
		}
	}
	return prev
}

func bodyMatches(body, sum []byte) bool {
	h := sha256.Sum256(body)
	return string(h[:]) == string(sum)
}
