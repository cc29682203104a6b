package ledger

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Account code prefixes.
const (
	userPrefix     = "user:"
	merchantPrefix = "merchant:"
)

// UserAccount returns the wallet account code of user id.
func UserAccount(id string) string { return userPrefix + id }

// MerchantAccount returns the account code of merchant id.
func MerchantAccount(id string) string { return merchantPrefix + id }

// Payment returns the entry for payer paying merchant amount minor units of
// currency, of which fee goes to the platform: the payer's wallet is debited
// amount, the merchant credited amount-fee and platform:fees credited fee (no
// fee posting when fee is zero). It does not validate; call Validate.
func Payment(merchant, orderID, payer, currency string, amount, fee int64, description string, ev Evidence) Entry {
	ps := []Posting{
		{Account: UserAccount(payer), Currency: currency, Amount: amount},
		{Account: MerchantAccount(merchant), Currency: currency, Amount: -(amount - fee)},
	}
	if fee != 0 {
		ps = append(ps, Posting{Account: FeesAccount, Currency: currency, Amount: -fee})
	}
	return Entry{
		Kind:        KindPayment,
		Merchant:    merchant,
		OrderID:     orderID,
		Payer:       payer,
		Currency:    currency,
		Amount:      amount,
		Fee:         fee,
		Description: description,
		Postings:    ps,
		Evidence:    ev,
	}
}

// Deposit returns the entry that tops up user's wallet with amount minor units
// of currency arriving through the bank: bank:settlement is debited and the
// wallet credited. merchant and orderID identify the deposit for idempotency.
// It does not validate; call Validate.
func Deposit(merchant, orderID, user, currency string, amount int64, ev Evidence) Entry {
	return Entry{
		Kind:     KindDeposit,
		Merchant: merchant,
		OrderID:  orderID,
		Payer:    user,
		Currency: currency,
		Amount:   amount,
		Postings: []Posting{
			{Account: SettlementAccount, Currency: currency, Amount: amount},
			{Account: UserAccount(user), Currency: currency, Amount: -amount},
		},
		Evidence: ev,
	}
}

// Classify returns the accounting type of account code and whether its balance
// may go negative. User wallets, merchant accounts and platform:fees may not;
// bank:settlement, the boundary with the outside world, may. An unknown code
// yields ErrInvalidEntry.
func Classify(code string) (AccountType, bool, error) {
	switch {
	case code == FeesAccount:
		return Revenue, false, nil
	case code == SettlementAccount:
		return Asset, true, nil
	case strings.HasPrefix(code, userPrefix) && len(code) > len(userPrefix):
		return Liability, false, nil
	case strings.HasPrefix(code, merchantPrefix) && len(code) > len(merchantPrefix):
		return Liability, false, nil
	}
	return "", false, fmt.Errorf("%w: unknown account %q", ErrInvalidEntry, code)
}

// NormalSign returns +1 for types whose balance is the sum of their postings
// (asset, expense) and -1 for those whose balance is its negation (liability,
// equity, revenue), so that balances are what the account holder sees.
func NormalSign(t AccountType) int64 {
	if t == Asset || t == Expense {
		return 1
	}
	return -1
}

// maxText bounds every text field so a single entry cannot bloat a batch.
const maxText = 4096

// Validate reports whether e can be written: a known kind, a merchant, order
// id and payer (and a refund id for a refund, none for the other kinds), a
// valid currency, 0 < Amount, 0 <= Fee < Amount (Fee <= Amount for a refund,
// whose share of a fee may be all of a one-unit refund), at least two
// postings with non-zero amounts on known accounts, text that PostgreSQL can
// store (UTF-8, no NUL), and per currency postings summing to zero (computed
// without overflow). A refund request not yet completed (see Refund: no
// payer, fee or postings) is checked for the rest. It returns an error
// wrapping ErrUnbalanced for the last rule and ErrInvalidEntry for the
// others.
func (e Entry) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEntry}, a...)...)
	}
	if e.Kind != KindPayment && e.Kind != KindDeposit && e.Kind != KindRefund {
		return bad("unknown kind %q", e.Kind)
	}
	if (e.Kind == KindRefund) != (e.RefundID != "") {
		return bad("a refund id belongs to refunds, and every refund has one")
	}
	request := e.refundRequest()
	for _, f := range []struct{ name, v string }{
		{"merchant", e.Merchant}, {"order id", e.OrderID}, {"payer", e.Payer},
	} {
		if f.v == "" && !(request && f.name == "payer") {
			return bad("empty %s", f.name)
		}
	}
	for _, f := range []struct{ name, v string }{
		{"merchant", e.Merchant}, {"order id", e.OrderID}, {"refund id", e.RefundID}, {"payer", e.Payer},
		{"description", e.Description}, {"evidence scheme", e.Evidence.Scheme},
		{"evidence key id", e.Evidence.KeyID}, {"evidence authorization", e.Evidence.Authorization},
		{"evidence method", e.Evidence.Method}, {"evidence target", e.Evidence.Target},
	} {
		if err := checkText(f.v); err != nil {
			return bad("%s: %v", f.name, err)
		}
	}
	if !validCurrency(e.Currency) {
		return bad("currency %q is not three upper-case letters", e.Currency)
	}
	if e.Amount <= 0 {
		return bad("amount %d is not positive", e.Amount)
	}
	if e.Fee < 0 || e.Fee > e.Amount || (e.Fee == e.Amount && e.Kind != KindRefund) {
		return bad("fee %d outside [0, amount)", e.Fee)
	}
	if request {
		return nil
	}
	if len(e.Postings) < 2 {
		return bad("%d postings, need at least 2", len(e.Postings))
	}
	sums := make(map[string]int64, 1)
	for i, p := range e.Postings {
		if p.Amount == 0 || p.Amount == math.MinInt64 {
			return bad("posting %d: amount %d", i, p.Amount)
		}
		if !validCurrency(p.Currency) {
			return bad("posting %d: currency %q", i, p.Currency)
		}
		if _, _, err := Classify(p.Account); err != nil {
			return fmt.Errorf("posting %d: %w", i, err)
		}
		if err := checkText(p.Account); err != nil {
			return bad("posting %d: account: %v", i, err)
		}
		s, ok := add(sums[p.Currency], p.Amount)
		if !ok {
			return bad("posting %d: sum overflows", i)
		}
		sums[p.Currency] = s
	}
	for cur, s := range sums {
		if s != 0 {
			return fmt.Errorf("%w: %s postings sum to %d", ErrUnbalanced, cur, s)
		}
	}
	return nil
}

// add returns a+b and false if it overflows int64.
func add(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// AddBalance returns balance+delta, or false if the sum overflows int64.
func AddBalance(balance, delta int64) (int64, bool) { return add(balance, delta) }

func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

func checkText(s string) error {
	if len(s) > maxText {
		return fmt.Errorf("longer than %d bytes", maxText)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("not UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("contains NUL")
	}
	return nil
}
