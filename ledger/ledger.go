package ledger

import (
	"context"
	"errors"
	"time"
)

// Errors returned by this package and its adapters.
var (
	ErrInsufficientFunds = errors.New("ledger: insufficient funds")
	// ErrOrderConflict means the (merchant, order id) exists with different content.
	ErrOrderConflict = errors.New("ledger: order id already used with different content")
	ErrNotFound      = errors.New("ledger: not found")
	ErrUnbalanced    = errors.New("ledger: entry does not balance")
	ErrInvalidEntry  = errors.New("ledger: invalid entry")
	// ErrUnavailable means the store could not be reached; nothing was written.
	ErrUnavailable = errors.New("ledger: store unavailable")
	// ErrOutcomeUnknown means the store failed while committing: the entry may
	// or may not be written. Retrying with the same (merchant, order id) is
	// safe and settles it (idempotency).
	ErrOutcomeUnknown = errors.New("ledger: commit outcome unknown; retry with the same order id")

	// ErrNotRefundable means a refund names an order that is not a payment
	// (a deposit).
	ErrNotRefundable = errors.New("ledger: the order is not a refundable payment")
	// ErrRefundExceedsPayment means the refunds of a payment would total
	// more than it.
	ErrRefundExceedsPayment = errors.New("ledger: refunds would exceed the payment")
	// ErrRefundCurrency means a refund's currency is not its payment's.
	ErrRefundCurrency = errors.New("ledger: refund currency differs from the payment's")
	// ErrMerchantFunds means the merchant's balance cannot cover a refund.
	ErrMerchantFunds = errors.New("ledger: merchant balance insufficient for the refund")
)

// Kind is what an entry records.
type Kind string

// Entry kinds.
const (
	KindDeposit Kind = "deposit"
	KindPayment Kind = "payment"
	KindRefund  Kind = "refund"
)

// AccountType is the accounting class of an account.
type AccountType string

// Account types.
const (
	Asset     AccountType = "asset"
	Liability AccountType = "liability"
	Equity    AccountType = "equity"
	Revenue   AccountType = "revenue"
	Expense   AccountType = "expense"
)

// Well-known accounts.
const (
	FeesAccount       = "platform:fees"
	SettlementAccount = "bank:settlement"
)

// Posting moves Amount minor units on one account: positive is a debit,
// negative a credit. Per currency, an entry's postings sum to zero.
type Posting struct {
	Account  string // account code, e.g. "user:42"
	Currency string
	Amount   int64
}

// Evidence is what authorized an entry, kept so an auditor can re-verify it
// offline: the signature scheme, key id, the Authorization header as received,
// the raw body and its SHA-256.
type Evidence struct {
	Scheme        string
	KeyID         string
	Authorization string
	Method        string
	Target        string
	Body          []byte
}

// Entry is a journal transaction to be written.
type Entry struct {
	Kind        Kind
	Merchant    string
	OrderID     string // for a refund: the order id of the payment refunded
	RefundID    string // a refund's own id (refunds only)
	Payer       string // user id for payments and deposits; a refund's is its payment's
	Currency    string
	Amount      int64 // gross amount in minor units
	Fee         int64
	Description string
	Postings    []Posting
	Evidence    Evidence
}

// Recorded is an entry as stored.
type Recorded struct {
	ID          int64
	Kind        Kind
	Merchant    string
	OrderID     string
	RefundID    string // refunds only
	Payer       string
	Currency    string
	Amount      int64
	Fee         int64
	Description string
	Fingerprint [32]byte // digest of the entry's content (see Fingerprint)
	Hash        [32]byte // chain hash: SHA-256(prev_hash ‖ canonical entry)
	CreatedAt   time.Time
	// Replayed is true when Record found an identical entry already written.
	Replayed bool
}

// Writer records entries.
type Writer interface {
	// Record writes e atomically and durably, idempotent on (merchant, order id):
	// an entry already written that e Matches is returned with Replayed set; a
	// different one yields ErrOrderConflict. It returns ErrInsufficientFunds if a
	// debit would take an account that may not go negative below zero,
	// ErrUnbalanced or ErrInvalidEntry for a malformed entry, and an error wrapping
	// ErrUnavailable if the store cannot be reached. On any error nothing is written.
	//
	// A refund (see Refund) is idempotent on (merchant, refund id) instead and
	// completed against its payment when it is written (CompleteRefund); it
	// also returns ErrNotFound for an order that is not the merchant's,
	// ErrNotRefundable, ErrRefundCurrency, ErrRefundExceedsPayment and
	// ErrMerchantFunds.
	Record(ctx context.Context, e Entry) (Recorded, error)
}

// Reader reads the ledger.
type Reader interface {
	// Entry returns the entry of merchant's order id, or ErrNotFound.
	Entry(ctx context.Context, merchant, orderID string) (Recorded, error)
	// Refund returns merchant's refund refundID, or ErrNotFound.
	Refund(ctx context.Context, merchant, refundID string) (Recorded, error)
	// Balance returns the balance of account in currency in its normal sign
	// (what a wallet holder sees), or ErrNotFound.
	Balance(ctx context.Context, account, currency string) (int64, error)
}
