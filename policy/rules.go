package policy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// ErrRules means a merchant's Rules (or profile) are invalid: an unknown
// currency, a malformed bound, min above max, or a pattern that does not
// compile. It is a configuration error, not a client error.
var ErrRules = errors.New("policy: invalid merchant rules")

// Defaults applied to empty Rules fields.
const (
	DefaultCurrency       = "CNY"
	DefaultMinAmount      = "0.01"
	DefaultMaxAmount      = "1000000.00"
	DefaultOrderIDPattern = `^ORD[0-9]{12,29}$`
)

// MaxOrderIDLen caps every order id whatever the merchant's pattern allows:
// WeChat Pay caps merchant order ids at 32 characters.
const MaxOrderIDLen = 32

// maxPatternLen bounds a merchant's order-id pattern; RE2 matching is linear,
// but the compiled program's size is not worth leaving unbounded.
const maxPatternLen = 512

// DefaultRules returns the rules a merchant gets when its profile sets none:
// CNY only, 0.01 to 1,000,000.00 per payment, order ids ^ORD[0-9]{12,29}$.
func DefaultRules() Rules {
	return Rules{
		Currencies:     []string{DefaultCurrency},
		MinAmount:      DefaultMinAmount,
		MaxAmount:      DefaultMaxAmount,
		OrderIDPattern: DefaultOrderIDPattern,
	}
}

// WithDefaults returns r with each empty field replaced by its default.
func WithDefaults(r Rules) Rules {
	d := DefaultRules()
	if len(r.Currencies) > 0 {
		d.Currencies = slices.Clone(r.Currencies)
	}
	if r.MinAmount != "" {
		d.MinAmount = r.MinAmount
	}
	if r.MaxAmount != "" {
		d.MaxAmount = r.MaxAmount
	}
	if r.OrderIDPattern != "" {
		d.OrderIDPattern = r.OrderIDPattern
	}
	return d
}

// CompiledRules are Rules with defaults applied, bounds converted to minor
// units per currency and the order-id pattern compiled. They are immutable and
// safe for concurrent use; compile once and reuse (Checker caches them).
type CompiledRules struct {
	rules   Rules
	orderID *regexp.Regexp
	limits  map[string]amountRange
}

type amountRange struct{ min, max int64 }

// Compile applies defaults to r and validates it: every currency must be a
// known ISO 4217 code, the bounds decimal strings with min <= max in every
// currency, and the pattern a valid RE2 expression. The pattern is anchored as
// ^(?:pattern)$, so an unanchored pattern still has to match the whole id.
// Bounds are converted per currency, rounding the minimum up and the maximum
// down to the currency's minor unit (a minimum of "0.01" is 1 yen in JPY).
// Errors wrap ErrRules.
func Compile(r Rules) (*CompiledRules, error) {
	r = WithDefaults(r)
	c := &CompiledRules{rules: r, limits: make(map[string]amountRange, len(r.Currencies))}
	for _, cur := range r.Currencies {
		exp, ok := Exponent(cur)
		if !ok {
			return nil, fmt.Errorf("%w: unknown currency %q", ErrRules, cur)
		}
		lo, err := parseBound(r.MinAmount, exp, true)
		if err != nil {
			return nil, fmt.Errorf("%w: min_amount %q: %v", ErrRules, r.MinAmount, err)
		}
		hi, err := parseBound(r.MaxAmount, exp, false)
		if err != nil {
			return nil, fmt.Errorf("%w: max_amount %q: %v", ErrRules, r.MaxAmount, err)
		}
		lo = max(lo, 1) // zero is never a valid amount
		if hi < lo {
			return nil, fmt.Errorf("%w: no %s amount lies between min_amount %q and max_amount %q", ErrRules, cur, r.MinAmount, r.MaxAmount)
		}
		c.limits[cur] = amountRange{min: lo, max: hi}
	}
	if len(r.OrderIDPattern) > maxPatternLen {
		return nil, fmt.Errorf("%w: order_id_pattern longer than %d bytes", ErrRules, maxPatternLen)
	}
	re, err := regexp.Compile(`^(?:` + r.OrderIDPattern + `)$`)
	if err != nil {
		return nil, fmt.Errorf("%w: order_id_pattern: %v", ErrRules, err)
	}
	c.orderID = re
	return c, nil
}

// parseBound converts a decimal bound to minor units with exponent exp,
// rounding extra fraction digits up (roundUp) or down.
func parseBound(s string, exp int, roundUp bool) (int64, error) {
	intPart, frac, aerr := splitDecimal(s)
	if aerr != nil {
		return 0, aerr
	}
	var rest string
	if len(frac) > exp {
		frac, rest = frac[:exp], frac[exp:]
	}
	v, ok := minorUnits(intPart, frac, exp)
	if !ok {
		return 0, &AmountError{Code: AmountCodeTooLarge, Message: "bound is too large"}
	}
	if roundUp && !allZero(rest) {
		if v == 1<<63-1 {
			return 0, &AmountError{Code: AmountCodeTooLarge, Message: "bound is too large"}
		}
		v++
	}
	return v, nil
}

// Rules returns the effective rules, defaults applied.
func (c *CompiledRules) Rules() Rules {
	r := c.rules
	r.Currencies = slices.Clone(r.Currencies)
	return r
}

// Allows reports whether currency is on the allow-list.
func (c *CompiledRules) Allows(currency string) bool {
	_, ok := c.limits[currency]
	return ok
}

// Limits returns the inclusive amount range for currency in minor units, and
// false if the currency is not allowed.
func (c *CompiledRules) Limits(currency string) (lo, hi int64, ok bool) {
	l, ok := c.limits[currency]
	return l.min, l.max, ok
}

// MatchOrderID reports whether id is at most MaxOrderIDLen bytes and matches
// the order-id pattern in full.
func (c *CompiledRules) MatchOrderID(id string) bool {
	return len(id) <= MaxOrderIDLen && c.orderID.MatchString(id)
}
