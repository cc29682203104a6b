package policy

import (
	"errors"
	"strconv"
)

// ErrAmount is wrapped by every *AmountError, so errors.Is(err, ErrAmount)
// tells an amount problem from other failures.
var ErrAmount = errors.New("policy: invalid amount")

// Amount error codes, carried by AmountError.Code and by the FieldError of the
// "amount" field. They are stable: clients and the API error table may match them.
const (
	AmountCodeFormat    = "format"    // not ^(0|[1-9][0-9]*)(\.[0-9]+)?$ in ASCII
	AmountCodePrecision = "precision" // more fraction digits than the currency has
	AmountCodeZero      = "zero"      // the amount is zero
	AmountCodeTooLarge  = "too_large" // does not fit int64 minor units
	AmountCodeCurrency  = "currency"  // unknown ISO 4217 currency code
)

// AmountError says why ParseAmount rejected an amount. Code is one of the
// AmountCode constants; Message is safe to show to the client.
type AmountError struct {
	Code    string
	Message string
}

func (e *AmountError) Error() string { return "policy: amount " + e.Code + ": " + e.Message }

// Unwrap lets errors.Is(err, ErrAmount) match.
func (e *AmountError) Unwrap() error { return ErrAmount }

// exponents maps ISO 4217 alphabetic codes to their minor-unit exponent. The
// table covers the currencies a payment API is likely to see; codes not listed
// are rejected rather than guessed.
var exponents = map[string]int{
	// 0 decimals
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
	"KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0,
	"XAF": 0, "XOF": 0, "XPF": 0,
	// 2 decimals
	"AED": 2, "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2,
	"DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2,
	"ILS": 2, "INR": 2, "KZT": 2, "MOP": 2, "MXN": 2, "MYR": 2, "NOK": 2,
	"NZD": 2, "PHP": 2, "PKR": 2, "PLN": 2, "QAR": 2, "RUB": 2, "SAR": 2,
	"SEK": 2, "SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2,
	"ZAR": 2,
	// 3 decimals
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// 4 decimals
	"CLF": 4, "UYW": 4,
}

// maxExponent bounds the exponents table; pow10 must cover it.
const maxExponent = 4

var pow10 = [...]int64{1, 10, 100, 1000, 10000}

// A compile-time check: this index is out of range if pow10 stops covering
// maxExponent.
var _ = pow10[maxExponent]

// Exponent returns the ISO 4217 minor-unit exponent of currency (2 for CNY, 0
// for JPY, 3 for KWD) and whether the code is known. Codes are upper case.
func Exponent(currency string) (int, bool) {
	e, ok := exponents[currency]
	return e, ok
}

// splitDecimal checks s against ^(0|[1-9][0-9]*)(\.[0-9]+)?$ in ASCII and
// returns the integer and fraction digits. Leading zeros ("012.34", "00.5")
// are rejected so that each value has exactly one integer spelling; "0.50" is
// fine. Any failure is an AmountCodeFormat error.
func splitDecimal(s string) (intPart, frac string, err *AmountError) {
	dot := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '.' && dot < 0:
			dot = i
		default:
			return "", "", formatError(s)
		}
	}
	intPart, frac = s, ""
	if dot >= 0 {
		intPart, frac = s[:dot], s[dot+1:]
		if frac == "" {
			return "", "", formatError(s)
		}
	}
	if intPart == "" {
		return "", "", formatError(s)
	}
	if len(intPart) > 1 && intPart[0] == '0' {
		return "", "", &AmountError{Code: AmountCodeFormat, Message: "amount must not have leading zeros"}
	}
	return intPart, frac, nil
}

func formatError(s string) *AmountError {
	if len(s) > 0 && (s[0] == '-') {
		return &AmountError{Code: AmountCodeFormat, Message: "amount must be positive"}
	}
	return &AmountError{Code: AmountCodeFormat, Message: `amount must be a decimal string of ASCII digits like "12.34"`}
}

// CheckAmountFormat reports whether s is spelled like an amount, without
// knowing its currency: the same format and zero checks as ParseAmount, minus
// precision and range. The Checker uses it to still report a malformed amount
// when the currency field is itself wrong.
func CheckAmountFormat(s string) error {
	intPart, frac, aerr := splitDecimal(s)
	if aerr != nil {
		return aerr
	}
	if allZero(intPart) && allZero(frac) {
		return &AmountError{Code: AmountCodeZero, Message: "amount must be greater than zero"}
	}
	return nil
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// ParseAmount converts s, an exact decimal in major units of currency ("12.34"
// CNY), to int64 minor units (1234). It accepts only ASCII matching
// ^(0|[1-9][0-9]*)(\.[0-9]+)?$: no sign, exponent, grouping, spaces,
// underscores, leading or trailing dot, or leading zeros. It rejects more
// fraction digits than the currency's exponent ("1.234" CNY, "1.0" JPY), even
// when they are zeros ("1.200" CNY), zero, and values that overflow int64.
// Errors are *AmountError (wrapping ErrAmount); no floating point is used.
func ParseAmount(s, currency string) (int64, error) {
	exp, ok := exponents[currency]
	if !ok {
		return 0, &AmountError{Code: AmountCodeCurrency, Message: "unknown currency"}
	}
	intPart, frac, aerr := splitDecimal(s)
	if aerr != nil {
		return 0, aerr
	}
	if len(frac) > exp {
		return 0, &AmountError{Code: AmountCodePrecision, Message: "amount has more than " + strconv.Itoa(exp) + " decimal places for " + currency}
	}
	v, ok := minorUnits(intPart, frac, exp)
	if !ok {
		return 0, &AmountError{Code: AmountCodeTooLarge, Message: "amount is too large"}
	}
	if v == 0 {
		return 0, &AmountError{Code: AmountCodeZero, Message: "amount must be greater than zero"}
	}
	return v, nil
}

// minorUnits computes intPart*10^exp + frac*10^(exp-len(frac)), reporting
// false on int64 overflow. len(frac) <= exp <= maxExponent.
func minorUnits(intPart, frac string, exp int) (int64, bool) {
	const maxInt = 1<<63 - 1
	var v int64
	for i := 0; i < len(intPart); i++ {
		d := int64(intPart[i] - '0')
		if v > (maxInt-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if v > maxInt/pow10[exp] {
		return 0, false
	}
	v *= pow10[exp]
	var f int64
	for i := 0; i < len(frac); i++ {
		f = f*10 + int64(frac[i]-'0')
	}
	f *= pow10[exp-len(frac)]
	if v > maxInt-f {
		return 0, false
	}
	return v + f, true
}

// FormatAmount is the inverse of ParseAmount: it writes minor units of
// currency in major units with exactly the currency's number of decimals
// (1234 CNY is "12.34", 5 CNY is "0.05", 500 JPY is "500"). Negative values get
// a leading "-". An unknown currency is written as the plain integer of minor
// units.
func FormatAmount(minor int64, currency string) string {
	exp := exponents[currency]
	var buf [24]byte
	i := len(buf)
	neg := minor < 0
	u := uint64(minor)
	if neg {
		u = -u
	}
	for n := 0; n < exp; n++ {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
	}
	if exp > 0 {
		i--
		buf[i] = '.'
	}
	for {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}
