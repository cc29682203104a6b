package ledger

import (
	"context"
	"fmt"
	"time"
)

// AsOf names a point of the journal: through entry Entry if it is positive,
// else through the last entry created at or before Time, else (both zero) the
// head. Reports state the entry id they resolved it to.
type AsOf struct {
	Time  time.Time
	Entry int64
}

// Period selects the entries of a statement or an export: those created in
// [From, To) — a zero From is the start of the journal, a zero To the head at
// the first request — or, when FromEntry or ToEntry is positive, the entries
// with FromEntry <= id <= ToEntry (a zero bound is open).
type Period struct {
	From, To           time.Time
	FromEntry, ToEntry int64
}

// AccountTotal is one line of a trial balance: an account's debit and credit
// totals (both non-negative) and its balance in normal sign.
type AccountTotal struct {
	Account  string
	Currency string
	Type     AccountType
	Debit    int64
	Credit   int64
	Balance  int64
}

// CurrencyTotal sums a trial balance per currency. Debit equals Credit and
// DebitBalances equals CreditBalances, always: every entry balances.
type CurrencyTotal struct {
	Currency       string
	Debit          int64 // sum of every debit posting
	Credit         int64 // sum of every credit posting
	DebitBalances  int64 // sum of the accounts whose postings sum above zero
	CreditBalances int64 // minus the sum of the accounts whose postings sum below zero
}

// TrialBalance lists every account's totals through one chain position,
// computed from the postings.
type TrialBalance struct {
	AsOfEntry int64     // the last entry included (0: none)
	AsOfTime  time.Time // created_at of that entry (zero if none)
	Accounts  []AccountTotal
	Totals    []CurrencyTotal
	// CheckedBalances is true when AsOfEntry is the head and the stored
	// balances were compared with the computed ones (in the same snapshot);
	// Mismatches lists the accounts that differ.
	CheckedBalances bool
	Mismatches      []BalanceMismatch
}

// BalanceMismatch is an account whose stored balance differs from its postings.
type BalanceMismatch struct {
	Account  string
	Currency string
	Stored   int64
	Computed int64
}

// Check returns an error wrapping ErrIntegrity if a currency's totals do not
// balance or a stored balance disagreed with the postings.
func (tb TrialBalance) Check() error {
	for _, t := range tb.Totals {
		if t.Debit != t.Credit || t.DebitBalances != t.CreditBalances {
			return fmt.Errorf("%w: %s trial balance does not balance: debits %d, credits %d", ErrIntegrity, t.Currency, t.Debit, t.Credit)
		}
	}
	if len(tb.Mismatches) > 0 {
		m := tb.Mismatches[0]
		return fmt.Errorf("%w: account %s %s: stored balance %d, postings give %d", ErrIntegrity, m.Account, m.Currency, m.Stored, m.Computed)
	}
	return nil
}

// StatementPosition is where a statement page starts: the resolved period
// (entry ids), the opening and closing balances computed for the first page,
// the last posting already shown and the running balance after it. The API
// hands it to clients sealed (it is not to be trusted when it comes back
// unsealed: the balances in it are shown as Quill's).
type StatementPosition struct {
	AccountID  int64
	FromEntry  int64 // first entry of the period (exclusive lower bound is FromEntry-1)
	ToEntry    int64 // last entry of the period
	Opening    int64
	Closing    int64
	AfterEntry int64 // last posting shown: entry id …
	AfterSeq   int32 // … and seq
	Running    int64 // balance after it
}

// StatementQuery asks for one page of an account statement. Either Period (a
// first page) or After (a later page) is used.
type StatementQuery struct {
	Account   string
	Currency  string
	Period    Period
	After     *StatementPosition
	Limit     int
	Merchants []string // nil: all; else the statement is refused (ErrNotFound) unless the account is one of theirs
}

// StatementLine is one posting of a statement with the balance after it, in
// the account's normal sign.
type StatementLine struct {
	EntryID   int64
	Seq       int32
	CreatedAt time.Time
	Kind      Kind
	Merchant  string
	OrderID   string
	Debit     int64
	Credit    int64
	Balance   int64
}

// Statement is one page of an account statement.
type Statement struct {
	Account   string
	Currency  string
	Type      AccountType
	FromEntry int64
	ToEntry   int64
	Opening   int64 // balance before the period
	Closing   int64 // balance at its end
	Lines     []StatementLine
	// Next is the position of the next page, nil on the last one.
	Next *StatementPosition
}

// JournalPosition is where an export resumes: after posting (AfterEntry,
// AfterSeq), within the resolved range FromEntry..ToEntry.
type JournalPosition struct {
	FromEntry  int64
	ToEntry    int64
	AfterEntry int64
	AfterSeq   int32
}

// JournalQuery selects an export: a Period for a new one, or Resume.
type JournalQuery struct {
	Period    Period
	Resume    *JournalPosition
	Merchants []string // nil: all merchants' entries
}

// JournalRow is one posting of the journal with its entry's fields.
type JournalRow struct {
	EntryID     int64
	Seq         int32
	CreatedAt   time.Time
	Kind        Kind
	Merchant    string
	OrderID     string
	Payer       string
	Description string
	Account     string
	Currency    string
	Amount      int64 // positive: debit, negative: credit
	Hash        [32]byte
}

// EntryEvidence is a stored entry with everything needed to re-verify it:
// its postings (in stored order), its chain links and the signed request.
type EntryEvidence struct {
	Recorded
	PrevHash [32]byte
	Postings []Posting
	Evidence Evidence
}

// Reports are the auditor's read-only views. Every method reads one
// consistent snapshot.
type Reports interface {
	// TrialBalance returns the trial balance at asOf over the entries of
	// merchants (nil: all). It returns an error wrapping ErrIntegrity if the
	// totals do not balance, ErrUnavailable if the store cannot be reached.
	TrialBalance(ctx context.Context, asOf AsOf, merchants []string) (TrialBalance, error)
	// Statement returns one page of q's statement; ErrNotFound for an account
	// that does not exist or is outside q.Merchants.
	Statement(ctx context.Context, q StatementQuery) (Statement, error)
	// ExportRange resolves q to the range an export covers and counts the rows
	// left after its position.
	ExportRange(ctx context.Context, q JournalQuery) (JournalPosition, int64, error)
	// Export streams the rows after pos in (entry id, seq) order to emit, in
	// constant memory; emit's error stops it and is returned.
	Export(ctx context.Context, pos JournalPosition, merchants []string, emit func(JournalRow) error) error
	// EntryEvidence returns entry id with its evidence; ErrNotFound if it does
	// not exist or belongs to a merchant outside merchants (nil: all).
	EntryEvidence(ctx context.Context, id int64, merchants []string) (EntryEvidence, error)
}

// AccountVisible reports whether account code is visible to an auditor
// limited to merchants (nil: every account): a limited auditor sees only
// those merchants' own accounts (merchant:ID), never wallets, fees or the
// bank, whose postings mix every merchant's business.
func AccountVisible(code string, merchants []string) bool {
	if merchants == nil {
		return true
	}
	for _, m := range merchants {
		if code == MerchantAccount(m) {
			return true
		}
	}
	return false
}
