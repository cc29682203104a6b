package ledger

import (
	"context"
	"time"
)

// MerchantKinds are the entry kinds a merchant's statement lists, in the
// order its footer sums them.
var MerchantKinds = []Kind{KindPayment, KindRefund, KindDeposit}

// Span is a resolved listing range: the entries with FromEntry <= id <=
// ToEntry (none when ToEntry < FromEntry) whose created_at is in [From, To)
// (a zero bound is open). ToEntry is at most the chain head when the span was
// resolved, so a span lists the same entries whenever it is read: entries are
// append-only and every id up to the head is committed.
type Span struct {
	FromEntry, ToEntry int64
	From, To           time.Time
}

// Empty reports whether s can hold no entry.
func (s Span) Empty() bool { return s.ToEntry < s.FromEntry }

// ListQuery asks for one page of a merchant's own entries of one kind, in id
// order (commit order: the chain head is taken by every writer, so a later
// commit never gets a lower id and pages never skip an entry).
type ListQuery struct {
	Merchant string
	Kind     Kind
	Span     Span
	After    int64 // the last entry id already listed (0: from the start of Span)
	Limit    int
}

// Record is one of a merchant's entries as its listings and statements show
// it: the stored entry and Net, the change it made to the merchant's own
// account (merchant:ID in the entry's currency) in that account's normal
// sign: a payment credits amount-fee (Net > 0), a refund debits what it
// returns less its share of the fee (Net < 0), an entry that does not touch
// the merchant's account (a deposit into a wallet) has Net 0.
type Record struct {
	Recorded
	Net int64
}

// ListPage is one page of a listing. More is true when entries of the span
// remain after the last one.
type ListPage struct {
	Records []Record
	More    bool
}

// Listings are a merchant's views of its own entries: paginated listings by
// kind and the day statement. Each is index-driven on (merchant_id, kind, id),
// so its cost follows the merchant's own entries in the span, not the ledger.
type Listings interface {
	// ResolveSpan turns the period [from, to) (zero: open) into the entry ids
	// it covers as of now, the way auditor periods resolve (the last entry
	// created before each bound, on the chain's created_at order). It returns
	// an error wrapping ErrUnavailable if the store cannot be reached.
	ResolveSpan(ctx context.Context, from, to time.Time) (Span, error)
	// ListRecords returns one page of q; at most q.Limit records (1..1000).
	// It returns ErrInvalidEntry for a limit out of range, an error wrapping
	// ErrUnavailable if the store cannot be reached.
	ListRecords(ctx context.Context, q ListQuery) (ListPage, error)
	// EachRecord streams merchant's entries of kinds within span to emit, in
	// id order, in constant memory; emit's error stops it and is returned.
	// Reading the same span again yields the same records.
	EachRecord(ctx context.Context, merchant string, kinds []Kind, span Span, emit func(Record) error) error
}
