package policy

import (
	"context"
	"errors"
	"strconv"
)

// MaxReasonLen bounds a refund's reason, as WeChat Pay bounds its refund
// reason (80 characters).
const MaxReasonLen = 80

// RefundRequest is the body of a refund request: refund RefundID (the
// merchant's own id for it, idempotent like an order id) of Amount of the
// payment OrderID.
type RefundRequest struct {
	RefundID string `json:"refund_id" validate:"required"`
	OrderID  string `json:"order_id" validate:"required"`
	Amount   string `json:"amount" validate:"required"`
	Currency string `json:"currency" validate:"required"`
	Reason   string `json:"reason" validate:"max=80"`
}

// Refund is a refund request that passed every rule. Whether the payment
// exists, is the merchant's, and has Amount left to refund is the ledger's
// to decide.
type Refund struct {
	Merchant string
	RefundID string
	OrderID  string
	Currency string
	Reason   string
	Amount   int64
}

var refundFields = []string{"refund_id", "order_id", "amount", "currency", "reason"}

// Refund checks req for merchant m and returns the refund to record: the
// refund id must match the merchant's order-id pattern (refund ids are their
// own namespace but follow the same allow-list); the order id only has to be
// one an order could have (at most MaxOrderIDLen bytes of clean text), since
// it names a payment made under whatever pattern applied then; the amount
// must be an exact positive amount in a known currency. The merchant's
// currency allow-list and amount range are not applied: the payment bounds a
// refund, and a rule changed since must not trap money already paid. Every
// failing field is listed in one *ValidationError; an invalid profile is an
// error wrapping ErrRules.
func (c *Checker) Refund(_ context.Context, m Merchant, req RefundRequest) (Refund, error) {
	cr, err := c.Rules(m)
	if err != nil {
		return Refund{}, err
	}
	errs, err := c.structErrors(&req)
	if err != nil {
		return Refund{}, err
	}
	if !errs.has("refund_id") && !cr.MatchOrderID(req.RefundID) {
		if len(req.RefundID) > MaxOrderIDLen {
			errs.add("refund_id", CodePattern, "refund_id must be at most "+strconv.Itoa(MaxOrderIDLen)+" characters")
		} else {
			errs.add("refund_id", CodePattern, "refund_id does not match the merchant's order id pattern "+cr.rules.OrderIDPattern)
		}
	}
	if !errs.has("order_id") && (len(req.OrderID) > MaxOrderIDLen || !cleanText(req.OrderID)) {
		errs.add("order_id", CodePattern, "order_id must be at most "+strconv.Itoa(MaxOrderIDLen)+" characters of text")
	}
	var amount int64
	_, known := Exponent(req.Currency)
	if !errs.has("currency") && !known {
		errs.add("currency", CodeUnsupported, "currency is not a supported ISO 4217 code")
	}
	if !errs.has("amount") {
		if known {
			amount, err = ParseAmount(req.Amount, req.Currency)
		} else {
			err = CheckAmountFormat(req.Amount)
		}
		var ae *AmountError
		if errors.As(err, &ae) {
			errs.add("amount", ae.Code, ae.Message)
		}
	}
	if !errs.has("reason") && !cleanText(req.Reason) {
		errs.add("reason", CodeInvalid, "reason must be valid UTF-8 without control characters")
	}
	if len(errs) > 0 {
		return Refund{}, errs.sorted(refundFields)
	}
	return Refund{Merchant: m.ID, RefundID: req.RefundID, OrderID: req.OrderID, Currency: req.Currency, Reason: req.Reason, Amount: amount}, nil
}
