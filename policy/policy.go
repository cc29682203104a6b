package policy

import (
	"errors"
	"strings"

	"github.com/quillpay/quill/merchant"
)

// Errors returned by this package.
var (
	// ErrValidation is wrapped by *ValidationError.
	ErrValidation = errors.New("policy: request failed field rules")
	// ErrUnknownMerchant means the directory has no such merchant (or a
	// disabled one: merchant.ErrDisabled matches it). It is merchant.ErrUnknown.
	ErrUnknownMerchant = merchant.ErrUnknown
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

// Rules are the per-merchant field rules, stored with the merchant's profile
// (merchant.Rules). Amount bounds are decimal strings in major units,
// converted per currency; Compile checks and compiles them.
type Rules = merchant.Rules

// Merchant is a merchant's profile: what it may do and its rules. It is the
// profile type of package merchant, which owns it.
type Merchant = merchant.Profile

// Directory finds merchant profiles (merchant.Directory): Merchant returns
// the profile of an active merchant id, or an error wrapping
// ErrUnknownMerchant.
type Directory = merchant.Directory
