package postgres

import (
	"fmt"
	"time"

	"github.com/quillpay/quill/ledger"
)

// This file holds the money rules of a batch as pure functions: what to read
// (keys), and, given what was read (snapshot), what to write and what every
// request is answered (decide). writer.go does the I/O around them.

// orderKey is an entry's idempotency key: (merchant, order id) for payments
// and deposits, (merchant, refund id) for refunds, whose ids are a namespace
// of their own. A refund's payment is found by (merchant, order id) too.
type orderKey struct{ merchant, order, refund string }

func entryKey(e *ledger.Entry) orderKey {
	if e.Kind == ledger.KindRefund {
		return orderKey{merchant: e.Merchant, refund: e.RefundID}
	}
	return orderKey{merchant: e.Merchant, order: e.OrderID}
}

func recordKey(r ledger.Recorded) orderKey {
	if r.Kind == ledger.KindRefund {
		return orderKey{merchant: r.Merchant, refund: r.RefundID}
	}
	return orderKey{merchant: r.Merchant, order: r.OrderID}
}

// batchKeys is what a batch must read before it can be decided.
type batchKeys struct {
	// firstOf[i] is the index of the first request of the batch with request
	// i's key: i itself for a primary.
	firstOf []int
	// primaries are the indexes of the first requests of each key, in batch
	// order; only they are decided, the others share their outcome.
	primaries []int
	orders    []orderKey   // order keys of the primaries that are not refunds
	refunds   []orderKey   // refund keys of the primaries that are refunds
	targets   []orderKey   // the payments (order keys) those refunds name, each once
	accounts  []accountKey // every account a primary posts to, first use first; read adds the refunds'
}

// keys dedupes reqs by key and lists what to read.
func keys(reqs []*request) batchKeys {
	k := batchKeys{firstOf: make([]int, len(reqs))}
	first := make(map[orderKey]int, len(reqs))
	seen := make(map[accountKey]bool)
	var targets map[orderKey]bool
	for i, r := range reqs {
		ok := entryKey(&r.e)
		if p, dup := first[ok]; dup {
			k.firstOf[i] = p
			continue
		}
		first[ok] = i
		k.firstOf[i] = i
		k.primaries = append(k.primaries, i)
		if r.e.Kind == ledger.KindRefund {
			k.refunds = append(k.refunds, ok)
			if targets == nil {
				targets = make(map[orderKey]bool)
			}
			if t := (orderKey{merchant: r.e.Merchant, order: r.e.OrderID}); !targets[t] {
				targets[t] = true
				k.targets = append(k.targets, t)
			}
			continue
		}
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
	existing map[orderKey]ledger.Recorded   // entries already written under the batch's keys
	targets  map[orderKey]ledger.Refundable // the payments the batch's refunds name, by order key
	accounts map[accountKey]account         // every account in batchKeys.accounts
	balances map[accountKey]int64           // their balances, normal sign
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
//   - a key already written is a replay (the request Matches the stored
//     entry: answered with it, Replayed) or ErrOrderConflict;
//   - a refund is completed against its payment as the refunds before it in
//     the snapshot and in the batch left it (ledger.CompleteRefund): a
//     payment that is not the merchant's, or not there, is ErrNotFound; a
//     payment paid earlier in the same batch can be refunded;
//   - an entry whose postings would overflow a balance is ErrInvalidEntry;
//   - an entry that would take an account that may not go negative below
//     zero is ErrInsufficientFunds (ErrMerchantFunds for a refund the
//     merchant cannot cover), and is left out: later entries see the
//     balances without it;
//   - every other entry is accepted: it gets the next id, created_at (now(),
//     read once for the batch) and its chain hash.
//
// A later request with the same key as a primary gets the primary's
// outcome when it Matches the primary's request (an accepted entry as
// Replayed), ErrOrderConflict when it does not; if the key was already
// written, it is judged against the stored entry instead, like the primary.
func decide(reqs []*request, k batchKeys, snap snapshot, now func() time.Time) plan {
	p := plan{results: make([]result, len(reqs)), headSeq: snap.headSeq, headHash: snap.headHash}
	balances := make(map[accountKey]int64, len(snap.balances))
	for key, b := range snap.balances {
		balances[key] = b
	}
	var targets map[orderKey]ledger.Refundable // nil unless the batch refunds
	if len(k.refunds) > 0 {
		targets = make(map[orderKey]ledger.Refundable, len(snap.targets))
		for key, t := range snap.targets {
			targets[key] = t
		}
	}
	var created time.Time
	for _, i := range k.primaries {
		r := reqs[i]
		e := &r.e
		if rec, ok := snap.existing[entryKey(e)]; ok {
			if ledger.Matches(rec, *e) {
				rec.Replayed = true
				p.results[i] = result{rec: rec}
			} else {
				p.results[i] = result{err: conflict(e)}
			}
			continue
		}
		w := written{e: e, fp: r.fp}
		var target orderKey
		if e.Kind == ledger.KindRefund {
			target = orderKey{merchant: e.Merchant, order: e.OrderID}
			t, ok := targets[target]
			if !ok {
				p.results[i] = result{err: fmt.Errorf("%w: merchant %s has no payment %s", ledger.ErrNotFound, e.Merchant, e.OrderID)}
				continue
			}
			completed, err := ledger.CompleteRefund(*e, t)
			if err == nil {
				err = completed.Validate()
			}
			if err == nil && !postsToKnown(completed.Postings, snap.accounts) {
				// Paid by another writer after this batch's accounts were chosen.
				err = fmt.Errorf("%w: merchant %s has no payment %s yet", ledger.ErrNotFound, e.Merchant, e.OrderID)
			}
			if err != nil {
				p.results[i] = result{err: err}
				continue
			}
			w = written{e: &completed, fp: ledger.Fingerprint(completed), refundOf: t.Payment.ID, refundSeq: int32(t.Refunds + 1)}
		}
		next, short, err := apply(w.e.Postings, snap.accounts, balances)
		if err != nil {
			if e.Kind == ledger.KindRefund && short.code == ledger.MerchantAccount(e.Merchant) {
				err = fmt.Errorf("%w: %s %s", ledger.ErrMerchantFunds, short.code, short.currency)
			}
			p.results[i] = result{err: err}
			continue
		}
		for key, nb := range next {
			balances[key] = nb
		}
		if created.IsZero() {
			created = ledger.CanonicalTime(now())
		}
		rec := p.append(r, w, snap.accounts, created)
		p.results[i] = result{rec: rec}
		switch {
		case e.Kind == ledger.KindRefund:
			t := targets[target]
			t.Refunded, t.RefundedFee, t.Refunds = t.Refunded+w.e.Amount, t.RefundedFee+w.e.Fee, t.Refunds+1
			targets[target] = t
		case targets != nil && e.Kind == ledger.KindPayment:
			targets[entryKey(e)] = ledger.Refundable{Payment: rec}
		}
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
		if rec, ok := snap.existing[entryKey(&reqs[i].e)]; ok {
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

// written is an entry as the plan writes it: for a refund, completed against
// its payment, with its fingerprint and its place among the payment's refunds.
type written struct {
	e         *ledger.Entry
	fp        [32]byte
	refundOf  int64 // entry id of the payment refunded (refunds only)
	refundSeq int32 // 1 for its first refund … (refunds only)
}

// postsToKnown reports whether every posting of ps is on an account the
// batch read (and locked).
func postsToKnown(ps []ledger.Posting, accounts map[accountKey]account) bool {
	for _, p := range ps {
		if _, ok := accounts[accountKey{p.Account, p.Currency}]; !ok {
			return false
		}
	}
	return true
}

// apply returns the balances of the accounts ps posts to after ps, or
// ErrInvalidEntry if one overflows, or ErrInsufficientFunds (and the
// account) if one that may not go negative would.
func apply(ps []ledger.Posting, accounts map[accountKey]account, balances map[accountKey]int64) (map[accountKey]int64, accountKey, error) {
	next := make(map[accountKey]int64, len(ps))
	for _, p := range ps {
		key := accountKey{p.Account, p.Currency}
		cur, ok := next[key]
		if !ok {
			cur = balances[key]
		}
		nb, ok := ledger.AddBalance(cur, accounts[key].sign*p.Amount)
		if !ok {
			return nil, accountKey{}, fmt.Errorf("%w: balance of %s overflows", ledger.ErrInvalidEntry, p.Account)
		}
		next[key] = nb
	}
	for _, p := range ps {
		key := accountKey{p.Account, p.Currency}
		if next[key] < 0 && !accounts[key].allowNegative {
			return nil, key, fmt.Errorf("%w: %s %s", ledger.ErrInsufficientFunds, key.code, key.currency)
		}
	}
	return next, accountKey{}, nil
}

func conflict(e *ledger.Entry) error {
	if e.Kind == ledger.KindRefund {
		return fmt.Errorf("%w: merchant %s refund %s", ledger.ErrOrderConflict, e.Merchant, e.RefundID)
	}
	return fmt.Errorf("%w: merchant %s order %s", ledger.ErrOrderConflict, e.Merchant, e.OrderID)
}

// append adds w (r's entry as written) as the next entry of the chain and
// returns it as recorded.
func (p *plan) append(r *request, w written, accounts map[accountKey]account, created time.Time) ledger.Recorded {
	e := w.e
	p.headSeq++
	rec := ledger.Recorded{
		ID: p.headSeq, Kind: e.Kind, Merchant: e.Merchant, OrderID: e.OrderID, RefundID: e.RefundID, Payer: e.Payer,
		Currency: e.Currency, Amount: e.Amount, Fee: e.Fee, Description: e.Description,
		Fingerprint: w.fp, CreatedAt: created,
	}
	prev := p.headHash
	rec.Hash = ledger.ChainHash(prev, rec, e.Postings, r.evidence)
	p.headHash = rec.Hash
	p.entries.add(rec, prev, &e.Evidence, r.bodySum, len(e.Postings), w.refundOf, w.refundSeq)
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
	// NULL for entries that are not refunds.
	refundIDs  []*string
	refundOfs  []*int64
	refundSeqs []*int32
}

func (c *entryRows) add(rec ledger.Recorded, prev [32]byte, ev *ledger.Evidence, bodySum [32]byte, postings int, refundOf int64, refundSeq int32) {
	c.ids, c.kinds, c.merchants = append(c.ids, rec.ID), append(c.kinds, string(rec.Kind)), append(c.merchants, rec.Merchant)
	c.orders, c.payers, c.currencies = append(c.orders, rec.OrderID), append(c.payers, rec.Payer), append(c.currencies, rec.Currency)
	c.amounts, c.fees, c.descs = append(c.amounts, rec.Amount), append(c.fees, rec.Fee), append(c.descs, rec.Description)
	c.fps, c.prevs, c.hashes = append(c.fps, rec.Fingerprint[:]), append(c.prevs, prev[:]), append(c.hashes, rec.Hash[:])
	c.times = append(c.times, rec.CreatedAt)
	c.schemes, c.keyIDs, c.auths = append(c.schemes, ev.Scheme), append(c.keyIDs, ev.KeyID), append(c.auths, ev.Authorization)
	c.methods, c.targets = append(c.methods, ev.Method), append(c.targets, ev.Target)
	c.bodies, c.bodySums = append(c.bodies, nonNil(ev.Body)), append(c.bodySums, bodySum[:])
	c.counts = append(c.counts, int32(postings))
	if rec.Kind == ledger.KindRefund {
		id := rec.RefundID
		c.refundIDs, c.refundOfs, c.refundSeqs = append(c.refundIDs, &id), append(c.refundOfs, &refundOf), append(c.refundSeqs, &refundSeq)
	} else {
		c.refundIDs, c.refundOfs, c.refundSeqs = append(c.refundIDs, nil), append(c.refundOfs, nil), append(c.refundSeqs, nil)
	}
}

// args returns the parameters of sqlInsertEntries.
func (c *entryRows) args() []any {
	return []any{c.ids, c.kinds, c.merchants, c.orders, c.payers, c.currencies, c.amounts, c.fees, c.descs,
		c.fps, c.prevs, c.hashes, c.times, c.schemes, c.keyIDs, c.auths, c.methods, c.targets,
		c.bodies, c.bodySums, c.counts, c.refundIDs, c.refundOfs, c.refundSeqs}
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
