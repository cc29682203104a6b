package ledger

import (
	"fmt"
	"math/bits"
)

// Refund returns the request to refund amount minor units of currency of
// merchant's payment orderID, under the merchant's own refundID, with reason
// as its description. Its payer, fee and postings follow from the payment
// and the refunds before it, which only the writer knows exactly (under its
// lock) when it records the refund: it completes the entry with
// CompleteRefund. It does not validate; Record does.
func Refund(merchant, refundID, orderID, currency string, amount int64, reason string, ev Evidence) Entry {
	return Entry{
		Kind:        KindRefund,
		Merchant:    merchant,
		OrderID:     orderID,
		RefundID:    refundID,
		Currency:    currency,
		Amount:      amount,
		Description: reason,
		Evidence:    ev,
	}
}

// Refundable is a payment as its next refund sees it: the payment and what
// its refunds so far returned.
type Refundable struct {
	Payment     Recorded
	Refunded    int64 // amount refunded so far
	RefundedFee int64 // fee returned so far
	Refunds     int   // number of refunds so far
}

// RefundFee returns the share of a payment's fee that a refund of amount
// returns when before was refunded already: the floored proportional fee of
// the refunded total after it, minus that of before,
//
//	floor((before+amount)·fee/paid) − floor(before·fee/paid)
//
// Partial refunds return the fee in proportion, never more in total than
// floor(refunded·fee/paid), so the fee returned never exceeds the payment's;
// and once the whole payment is refunded the whole fee is returned, whatever
// the partial refunds were. It requires 0 <= before, 0 < amount,
// before+amount <= paid and 0 <= fee < paid.
func RefundFee(paid, fee, before, amount int64) int64 {
	return proportion(before+amount, fee, paid) - proportion(before, fee, paid)
}

// proportion is floor(x·fee/paid) for 0 <= x <= paid, without overflow.
func proportion(x, fee, paid int64) int64 {
	hi, lo := bits.Mul64(uint64(x), uint64(fee))
	q, _ := bits.Div64(hi, lo, uint64(paid)) // hi < paid since x <= paid and fee < paid
	return int64(q)
}

// CompleteRefund returns the refund request e completed against its payment
// p: the payer is the payment's, the fee RefundFee's share, and the postings
// move the money back — the payer's wallet is credited amount, the merchant
// debited amount-fee and platform:fees debited fee (a posting is left out
// when it would be zero). It returns ErrNotRefundable if p is not a payment
// of e's merchant and order, ErrRefundCurrency if the currencies differ and
// ErrRefundExceedsPayment if the refunds would total more than the payment.
func CompleteRefund(e Entry, p Refundable) (Entry, error) {
	pay := p.Payment
	switch {
	case e.Kind != KindRefund || e.Amount <= 0:
		return Entry{}, fmt.Errorf("%w: not a refund request", ErrInvalidEntry)
	case pay.Kind != KindPayment || pay.Merchant != e.Merchant || pay.OrderID != e.OrderID:
		return Entry{}, fmt.Errorf("%w: %s %s is a %s", ErrNotRefundable, e.Merchant, e.OrderID, pay.Kind)
	case pay.Currency != e.Currency:
		return Entry{}, fmt.Errorf("%w: refund in %s of a payment in %s", ErrRefundCurrency, e.Currency, pay.Currency)
	case p.Refunded < 0 || p.Refunded > pay.Amount || e.Amount > pay.Amount-p.Refunded:
		return Entry{}, fmt.Errorf("%w: %d refunded of %d, %d more asked", ErrRefundExceedsPayment, p.Refunded, pay.Amount, e.Amount)
	}
	fee := RefundFee(pay.Amount, pay.Fee, p.Refunded, e.Amount)
	e.Payer, e.Fee = pay.Payer, fee
	e.Postings = []Posting{{Account: UserAccount(pay.Payer), Currency: e.Currency, Amount: -e.Amount}}
	if e.Amount != fee {
		e.Postings = append(e.Postings, Posting{Account: MerchantAccount(e.Merchant), Currency: e.Currency, Amount: e.Amount - fee})
	}
	if fee != 0 {
		e.Postings = append(e.Postings, Posting{Account: FeesAccount, Currency: e.Currency, Amount: fee})
	}
	return e, nil
}

// refundRequest reports whether e is a refund not yet completed: no payer,
// fee or postings.
func (e Entry) refundRequest() bool {
	return e.Kind == KindRefund && e.Payer == "" && e.Fee == 0 && len(e.Postings) == 0
}
