package policy

import (
	"context"
	"errors"
	"strings"
)

// Errors returned by this package.
var (
	// ErrValidation is wrapped by *ValidationError.
	ErrValidation = errors.New("policy: request failed field rules")
	// ErrUnknownMerchant means the directory has no such merchant.
	ErrUnknownMerchant = errors.New("policy: unknown merchant")
	// ErrForbidden means the merchant is not allowed this operation.
	ErrForbidden = errors.New("policy: operation not allowed for merchant")
	// ErrUnavailable means a dependency (the payer-token denylist) could not answer.
	ErrUnavailable = errors.New("policy: rule dependency unavailable")
)

// FieldError is one failing field; Field is the JSON name.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ValidationError lists every failing field of a request.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("policy: invalid fields:")
	for _, f := range e.Fields {
		b.WriteString(" " + f.Field + "(" + f.Code + ")")
	}
	return b.String()
}

// Unwrap lets errors.Is(err, ErrValidation) match.
func (e *ValidationError) Unwrap() error { return ErrValidation }

// Rules are the per-merchant field rules. Amount bounds are decimal strings in
// major units, converted per currency.
type Rules struct {
	Currencies     []string `json:"currencies"`       // allow-list, default ["CNY"]
	MinAmount      string   `json:"min_amount"`       // default "0.01"
	MaxAmount      string   `json:"max_amount"`       // default "1000000.00"
	OrderIDPattern string   `json:"order_id_pattern"` // default ^ORD[0-9]{12,29}$
}

// Merchant is a merchant's profile: what it may do and its rules.
type Merchant struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	CanDeposit bool   `json:"can_deposit"`
	FeeBps     int64  `json:"fee_bps"` // fee in basis points of each payment
	Rules      Rules  `json:"rules"`
}

// Directory finds merchant profiles.
type Directory interface {
	// Merchant returns the profile of id, or an error wrapping ErrUnknownMerchant.
	Merchant(ctx context.Context, id string) (Merchant, error)
}
