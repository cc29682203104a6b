package postgres

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
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

// auditEntry is what the chain walk needs of a stored entry: its stored
// links and the outcome of every check that depends on the entry alone.
//
// The walk does not rehash in order. Each entry's hash is recomputed from its
// own stored prev_hash (so every entry can be hashed in parallel, on the
// reader goroutines), and the walk checks that each prev_hash equals the
// previous entry's stored hash, itself already recomputed. By induction from
// the genesis (or the start of the range) that is exactly the chain rehashed
// in order: any changed entry, posting or evidence field fails its own hash,
// a deleted entry is a gap in the ids, and moved entries break the links.
type auditEntry struct {
	id        int64
	prevHash  [32]byte // stored
	hash      [32]byte // stored
	malformed string   // a stored value no Quill writer produces (NULL, a digest of the wrong length)
	bodyOK    bool     // evidence_body_sha256 is the body's SHA-256
	fpOK      bool     // the fingerprint recomputes from the content and postings
	hashOK    bool     // the hash recomputes from the stored prev_hash and the entry
}

type auditChunkData struct {
	lo, hi  int64
	entries []auditEntry
	orphan  int64 // first posting entry id without its entry (0: none)
	err     error
}

// fetchChunks reads the chunks starting at from, from+step, … up to to, one
// round trip each, and sends them with their own checks done; it closes
// out when done.
// Accounts are resolved from a cache filled as new ids appear.
func fetchChunks(ctx context.Context, tx pgx.Tx, from, to, step int64, out chan<- auditChunkData) {
	defer close(out)
	r := chunkReader{accounts: map[int64]ledger.Posting{}}
	for lo := from; lo <= to; lo += step {
		hi := min(lo+auditChunk-1, to)
		c := r.read(ctx, tx, lo, hi)
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

// chunkReader reads and checks chunks of the chain, reusing its buffers.
type chunkReader struct {
	accounts map[int64]ledger.Posting // account id → code and currency
	buf      []byte                   // the chunk's variable-length fields, back to back
	rows     []rawEntry
	postings []rawPosting
	digest   ledger.Digester
}

// span locates one field in chunkReader.buf.
type span struct{ off, n int }

// rawEntry is an entries row as read: integers decoded, the rest as spans.
type rawEntry struct {
	id, amount, fee, createdMicros         int64
	kind, merchant, order, payer, currency span
	description, scheme, keyID, auth       span
	method, target, body, bodySum          span
	fingerprint, hash, prevHash            span
	refund                                 span // refund_id, empty for other kinds
	null                                   bool
}

type rawPosting struct{ entry, account, amount int64 }

// The columns the chain covers, read in binary: bytea, text and char as
// their bytes, bigint as 8 bytes and timestamptz as 8 bytes of microseconds
// since 2000-01-01, big-endian.
const auditEntryColumns = `id, kind, merchant_id, order_id, payer, currency, amount, fee,
	description, fingerprint, hash, created_at, prev_hash, evidence_scheme, evidence_key_id,
	authorization_header, evidence_method, evidence_target, evidence_body, evidence_body_sha256,
	coalesce(refund_id, '')`

// pgEpochMicros is 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in
// Unix microseconds.
const pgEpochMicros = 946_684_800_000_000

var binaryResults = pgx.QueryResultFormats{pgx.BinaryFormatCode}

func (r *chunkReader) read(ctx context.Context, tx pgx.Tx, lo, hi int64) auditChunkData {
	c := auditChunkData{lo: lo, hi: hi}
	if err := r.readEntries(ctx, tx, lo, hi); err != nil {
		c.err = err
		return c
	}
	if err := r.readPostings(ctx, tx, lo, hi); err != nil {
		c.err = err
		return c
	}
	// One string holds every text field of the chunk: the fields are
	// substrings of it, so building the entries allocates nothing per field.
	text := string(r.buf)
	str := func(s span) string { return text[s.off : s.off+s.n] }
	raw := func(s span) []byte { return r.buf[s.off : s.off+s.n] }
	ps := make([]ledger.Posting, 0, len(r.postings))
	c.entries = make([]auditEntry, len(r.rows))
	p := 0
	for i := range r.rows {
		row := &r.rows[i]
		e := &c.entries[i]
		e.id = row.id
		// Postings of entries below this one that were not consumed have no
		// entry: the walk reports the first.
		for p < len(r.postings) && r.postings[p].entry < row.id {
			if c.orphan == 0 {
				c.orphan = r.postings[p].entry
			}
			p++
		}
		start := len(ps)
		for ; p < len(r.postings) && r.postings[p].entry == row.id; p++ {
			a := r.accounts[r.postings[p].account]
			a.Amount = r.postings[p].amount
			ps = append(ps, a)
		}
		if row.null {
			e.malformed = "a column is NULL"
			continue
		}
		if row.fingerprint.n != 32 || row.hash.n != 32 || row.prevHash.n != 32 {
			e.malformed = "a stored digest is not 32 bytes"
			continue
		}
		copy(e.prevHash[:], raw(row.prevHash))
		copy(e.hash[:], raw(row.hash))
		sum := sha256.Sum256(raw(row.body))
		e.bodyOK = bytes.Equal(sum[:], raw(row.bodySum))
		rec := ledger.Recorded{
			ID: row.id, Kind: ledger.Kind(str(row.kind)), Merchant: str(row.merchant), OrderID: str(row.order),
			RefundID: str(row.refund), Payer: str(row.payer), Currency: str(row.currency), Amount: row.amount, Fee: row.fee,
			Description: str(row.description), CreatedAt: time.UnixMicro(row.createdMicros + pgEpochMicros).UTC(),
		}
		copy(rec.Fingerprint[:], raw(row.fingerprint))
		postings := ps[start:len(ps):len(ps)]
		e.fpOK = r.digest.Fingerprint(rec.Content(postings)) == rec.Fingerprint
		evd := r.digest.EvidenceDigest(ledger.Evidence{
			Scheme: str(row.scheme), KeyID: str(row.keyID), Authorization: str(row.auth),
			Method: str(row.method), Target: str(row.target), Body: raw(row.body),
		})
		e.hashOK = r.digest.ChainHash(e.prevHash, rec, postings, evd) == e.hash
	}
	if p < len(r.postings) && c.orphan == 0 {
		c.orphan = r.postings[p].entry
	}
	return c
}

// readEntries reads entries lo..hi into r.rows and r.buf.
func (r *chunkReader) readEntries(ctx context.Context, tx pgx.Tx, lo, hi int64) error {
	rows, err := tx.Query(ctx, `SELECT `+auditEntryColumns+` FROM entries WHERE id BETWEEN $1 AND $2 ORDER BY id`, binaryResults, lo, hi)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	r.buf, r.rows = r.buf[:0], r.rows[:0]
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 21 {
			return fmt.Errorf("ledger/postgres: chain audit: %d columns", len(v))
		}
		var e rawEntry
		for _, x := range v {
			e.null = e.null || x == nil
		}
		int8 := func(b []byte) int64 {
			if len(b) != 8 {
				e.null = true // not a bigint: nothing Quill wrote
				return 0
			}
			return int64(binary.BigEndian.Uint64(b))
		}
		put := func(b []byte) span {
			s := span{len(r.buf), len(b)}
			r.buf = append(r.buf, b...)
			return s
		}
		e.id, e.amount, e.fee, e.createdMicros = int8(v[0]), int8(v[6]), int8(v[7]), int8(v[11])
		e.kind, e.merchant, e.order, e.payer, e.currency = put(v[1]), put(v[2]), put(v[3]), put(v[4]), put(v[5])
		e.description, e.fingerprint, e.hash, e.prevHash = put(v[8]), put(v[9]), put(v[10]), put(v[12])
		e.scheme, e.keyID, e.auth, e.method, e.target = put(v[13]), put(v[14]), put(v[15]), put(v[16]), put(v[17])
		e.body, e.bodySum, e.refund = put(v[18]), put(v[19]), put(v[20])
		r.rows = append(r.rows, e)
	}
	return translate(rows.Err())
}

// readPostings reads the postings of entries lo..hi into r.postings and
// resolves account ids the cache does not know yet.
func (r *chunkReader) readPostings(ctx context.Context, tx pgx.Tx, lo, hi int64) error {
	rows, err := tx.Query(ctx, `SELECT entry_id, account_id, amount FROM postings
		WHERE entry_id BETWEEN $1 AND $2 ORDER BY entry_id, seq`, binaryResults, lo, hi)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	r.postings = r.postings[:0]
	var missing []int64
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 3 || len(v[0]) != 8 || len(v[1]) != 8 || len(v[2]) != 8 {
			return fmt.Errorf("%w: a posting of entries %d..%d has a NULL column", ledger.ErrIntegrity, lo, hi)
		}
		p := rawPosting{int64(binary.BigEndian.Uint64(v[0])), int64(binary.BigEndian.Uint64(v[1])), int64(binary.BigEndian.Uint64(v[2]))}
		if _, ok := r.accounts[p.account]; !ok {
			r.accounts[p.account] = ledger.Posting{}
			missing = append(missing, p.account)
		}
		r.postings = append(r.postings, p)
	}
	if err := rows.Err(); err != nil {
		return translate(err)
	}
	rows.Close()
	if len(missing) == 0 {
		return nil
	}
	arows, err := tx.Query(ctx, `SELECT id, code, currency FROM accounts WHERE id = ANY($1)`, missing)
	if err != nil {
		return translate(err)
	}
	defer arows.Close()
	for arows.Next() {
		var id int64
		var a ledger.Posting
		if err := arows.Scan(&id, &a.Account, &a.Currency); err != nil {
			return translate(err)
		}
		r.accounts[id] = a
	}
	return translate(arows.Err())
}

// walk checks one chunk's entries in order against the chain so far (prev:
// the hash of the entry before the chunk, already verified) and returns the
// chain value after them; it stops at the first failure.
func (a *chainAuditor) walk(c auditChunkData, prev [32]byte) [32]byte {
	for j := range c.entries {
		e := &c.entries[j]
		id := c.lo + int64(j)
		if c.orphan != 0 && c.orphan < e.id {
			a.fail(c.orphan, "entry is missing but its postings remain")
			return prev
		}
		switch {
		case e.id != id:
			a.fail(id, "entry is missing")
		case e.malformed != "":
			a.fail(id, e.malformed)
		case e.prevHash != prev:
			a.fail(id, fmt.Sprintf("prev_hash does not link to entry %d", id-1))
		case !e.bodyOK:
			a.fail(id, "evidence body does not match its digest")
		case !e.fpOK:
			a.fail(id, "content or postings do not match the fingerprint")
		case !e.hashOK:
			a.fail(id, "hash does not match the content")
		}
		if a.rep.FirstBad != 0 {
			return prev
		}
		prev = e.hash
		a.rep.Entries++
		if a.passed(id, prev); a.rep.FirstBad != 0 {
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
