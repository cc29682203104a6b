package postgres

import (
	"fmt"
	"time"

	"github.com/quillpay/quill/ledger"
)

// This file holds the money rules of a batch as pure functions: what to read
// (keys), and, given what was read (snapshot), what to write and what every
// request is answered (decide). writer.go does the I/O around them.

type orderKey struct{ merchant, order string }

// batchKeys is what a batch must read before it can be decided.
type batchKeys struct {
	// firstOf[i] is the index of the first request of the batch with request
	// i's (merchant, order id): i itself for a primary.
	firstOf []int
	// primaries are the indexes of the first requests of each order key, in
	// batch order; only they are decided, the others share their outcome.
	primaries []int
	orders    []orderKey   // of the primaries, in the same order
	accounts  []accountKey // every account a primary posts to, first use first
}

// keys dedupes reqs by (merchant, order id) and lists what to read.
func keys(reqs []*request) batchKeys {
	k := batchKeys{firstOf: make([]int, len(reqs))}
	first := make(map[orderKey]int, len(reqs))
	seen := make(map[accountKey]bool)
	for i, r := range reqs {
		ok := orderKey{r.e.Merchant, r.e.OrderID}
		if p, dup := first[ok]; dup {
			k.firstOf[i] = p
			continue
		}
		first[ok] = i
		k.firstOf[i] = i
		k.primaries = append(k.primaries, i)
		k.orders = append(k.orders, ok)
		for _, p := range r.e.Postings {
			ak := accountKey{p.Account, p.Currency}
			if !seen[ak] {
				seen[ak] = true
				k.accounts = append(k.accounts, ak)
			}
		}
	}
	return k
}

// snapshot is what the batch transaction read, under the chain-head lock and
// the balance row locks: nothing in it can change until the transaction ends.
type snapshot struct {
	headSeq  int64
	headHash [32]byte
	existing map[orderKey]ledger.Recorded // entries already written under the batch's order keys
	accounts map[accountKey]account       // every account in batchKeys.accounts
	balances map[accountKey]int64         // their balances, normal sign
}

// plan is the decision for one batch: the rows to write and the answer of
// every request, valid only once the transaction has committed.
type plan struct {
	results  []result
	entries  entryRows
	postings postingRows
	// deltas are the non-zero balance changes, by account id.
	deltaIDs, deltas []int64
	headSeq          int64
	headHash         [32]byte
}

// written is the number of new entries the plan writes.
func (p *plan) written() int { return len(p.entries.ids) }

// decide applies the batch's primaries in order to the balances of snap:
//
//   - an order key already written is a replay (the request Matches the
//     stored entry: answered with it, Replayed) or ErrOrderConflict;
//   - an entry whose postings would overflow a balance is ErrInvalidEntry;
//   - an entry that would take an account that may not go negative below
//     zero is ErrInsufficientFunds, and is left out: later entries see the
//     balances without it;
//   - every other entry is accepted: it gets the next id, created_at (now(),
//     read once for the batch) and its chain hash.
//
// A later request with the same order key as a primary gets the primary's
// outcome when it Matches the primary's request (an accepted entry as
// Replayed), ErrOrderConflict when it does not; if the key was already
// written, it is judged against the stored entry instead, like the primary.
func decide(reqs []*request, k batchKeys, snap snapshot, now func() time.Time) plan {
	p := plan{results: make([]result, len(reqs)), headSeq: snap.headSeq, headHash: snap.headHash}
	balances := make(map[accountKey]int64, len(snap.balances))
	for key, b := range snap.balances {
		balances[key] = b
	}
	var created time.Time
	for _, i := range k.primaries {
		r := reqs[i]
		e := &r.e
		if rec, ok := snap.existing[orderKey{e.Merchant, e.OrderID}]; ok {
			if ledger.Matches(rec, *e) {
				rec.Replayed = true
				p.results[i] = result{rec: rec}
			} else {
				p.results[i] = result{err: conflict(e)}
			}
			continue
		}
		next, err := apply(e.Postings, snap.accounts, balances)
		if err != nil {
			p.results[i] = result{err: err}
			continue
		}
		for key, nb := range next {
			balances[key] = nb
		}
		if created.IsZero() {
			created = ledger.CanonicalTime(now())
		}
		p.results[i] = result{rec: p.append(r, snap.accounts, created)}
	}
	for _, key := range k.accounts {
		if d := balances[key] - snap.balances[key]; d != 0 {
			p.deltaIDs = append(p.deltaIDs, snap.accounts[key].id)
			p.deltas = append(p.deltas, d)
		}
	}
	for i, f := range k.firstOf {
		if f == i {
			continue
		}
		if rec, ok := snap.existing[orderKey{reqs[i].e.Merchant, reqs[i].e.OrderID}]; ok {
			// Stored already: judged against the record, as its primary was
			// (which may be the copy that conflicts).
			if ledger.Matches(rec, reqs[i].e) {
				rec.Replayed = true
				p.results[i] = result{rec: rec}
			} else {
				p.results[i] = result{err: conflict(&reqs[i].e)}
			}
			continue
		}
		switch first := p.results[f]; {
		case !ledger.Matches(ledger.Proposed(reqs[f].e), reqs[i].e):
			p.results[i] = result{err: conflict(&reqs[i].e)}
		case first.err != nil:
			p.results[i] = result{err: first.err}
		default:
			first.rec.Replayed = true
			p.results[i] = first
		}
	}
	return p
}

// apply returns the balances of the accounts ps posts to after ps, or
// ErrInvalidEntry if one overflows, or ErrInsufficientFunds if one that may
// not go negative would.
func apply(ps []ledger.Posting, accounts map[accountKey]account, balances map[accountKey]int64) (map[accountKey]int64, error) {
	next := make(map[accountKey]int64, len(ps))
	for _, p := range ps {
		key := accountKey{p.Account, p.Currency}
		cur, ok := next[key]
		if !ok {
			cur = balances[key]
		}
		nb, ok := ledger.AddBalance(cur, accounts[key].sign*p.Amount)
		if !ok {
			return nil, fmt.Errorf("%w: balance of %s overflows", ledger.ErrInvalidEntry, p.Account)
		}
		next[key] = nb
	}
	for _, p := range ps {
		key := accountKey{p.Account, p.Currency}
		if next[key] < 0 && !accounts[key].allowNegative {
			return nil, fmt.Errorf("%w: %s %s", ledger.ErrInsufficientFunds, key.code, key.currency)
		}
	}
	return next, nil
}

func conflict(e *ledger.Entry) error {
	return fmt.Errorf("%w: merchant %s order %s", ledger.ErrOrderConflict, e.Merchant, e.OrderID)
}

// append adds r as the next entry of the chain and returns it as recorded.
func (p *plan) append(r *request, accounts map[accountKey]account, created time.Time) ledger.Recorded {
	e := &r.e
	p.headSeq++
	rec := ledger.Recorded{
		ID: p.headSeq, Kind: e.Kind, Merchant: e.Merchant, OrderID: e.OrderID, Payer: e.Payer,
		Currency: e.Currency, Amount: e.Amount, Fee: e.Fee, Description: e.Description,
		Fingerprint: r.fp, CreatedAt: created,
	}
	prev := p.headHash
	rec.Hash = ledger.ChainHash(prev, rec, e.Postings, r.evidence)
	p.headHash = rec.Hash
	p.entries.add(rec, prev, &e.Evidence, r.bodySum, len(e.Postings))
	for seq, ps := range e.Postings {
		p.postings.add(rec.ID, seq, len(e.Postings), accounts[accountKey{ps.Account, ps.Currency}].id, ps.Amount)
	}
	return rec
}

// entryRows are the columns of the entries a batch inserts, in the order of
// sqlInsertEntries' parameters.
type entryRows struct {
	ids, amounts, fees        []int64
	kinds, merchants, orders  []string
	payers, currencies, descs []string
	fps, prevs, hashes        [][]byte
	times                     []time.Time
	schemes, keyIDs, auths    []string
	methods, targets          []string
	bodies, bodySums          [][]byte
	counts                    []int32
}

func (c *entryRows) add(rec ledger.Recorded, prev [32]byte, ev *ledger.Evidence, bodySum [32]byte, postings int) {
	c.ids, c.kinds, c.merchants = append(c.ids, rec.ID), append(c.kinds, string(rec.Kind)), append(c.merchants, rec.Merchant)
	c.orders, c.payers, c.currencies = append(c.orders, rec.OrderID), append(c.payers, rec.Payer), append(c.currencies, rec.Currency)
	c.amounts, c.fees, c.descs = append(c.amounts, rec.Amount), append(c.fees, rec.Fee), append(c.descs, rec.Description)
	c.fps, c.prevs, c.hashes = append(c.fps, rec.Fingerprint[:]), append(c.prevs, prev[:]), append(c.hashes, rec.Hash[:])
	c.times = append(c.times, rec.CreatedAt)
	c.schemes, c.keyIDs, c.auths = append(c.schemes, ev.Scheme), append(c.keyIDs, ev.KeyID), append(c.auths, ev.Authorization)
	c.methods, c.targets = append(c.methods, ev.Method), append(c.targets, ev.Target)
	c.bodies, c.bodySums = append(c.bodies, nonNil(ev.Body)), append(c.bodySums, bodySum[:])
	c.counts = append(c.counts, int32(postings))
}

// args returns the parameters of sqlInsertEntries.
func (c *entryRows) args() []any {
	return []any{c.ids, c.kinds, c.merchants, c.orders, c.payers, c.currencies, c.amounts, c.fees, c.descs,
		c.fps, c.prevs, c.hashes, c.times, c.schemes, c.keyIDs, c.auths, c.methods, c.targets,
		c.bodies, c.bodySums, c.counts}
}

// postingRows are the columns of the postings a batch inserts, in the order
// of sqlInsertPostings' parameters.
type postingRows struct {
	entries, accounts, amounts []int64
	seqs, counts               []int32
}

func (c *postingRows) add(entry int64, seq, count int, account, amount int64) {
	c.entries, c.seqs, c.counts = append(c.entries, entry), append(c.seqs, int32(seq)), append(c.counts, int32(count))
	c.accounts, c.amounts = append(c.accounts, account), append(c.amounts, amount)
}

func (c *postingRows) args() []any {
	return []any{c.entries, c.seqs, c.counts, c.accounts, c.amounts}
}

// nonNil keeps an empty body from being sent as SQL NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
