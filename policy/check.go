package policy

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
)

// ErrPayerToken means the payer token is not acceptable: malformed, badly
// signed, expired, for another issuer or audience, or revoked. The Checker
// turns it into a "payer_token" field error.
var ErrPayerToken = errors.New("policy: payer token not accepted")

// Field error codes set by the policy's own rules, in addition to the
// validator tags ("required", "max") and the AmountCode constants.
const (
	CodeInvalid     = "invalid"     // payer token not accepted; description not clean UTF-8 text
	CodePattern     = "pattern"     // order_id or user_id does not match its pattern
	CodeUnsupported = "unsupported" // currency unknown or not on the merchant's allow-list
	CodeTooSmall    = "too_small"   // amount below the merchant's minimum (or not above the fee)
	CodeTooLarge    = AmountCodeTooLarge
)

// PaymentRequest is the body of a payment request, decoded strictly at the
// API edge. Amount is a decimal string in major units, never a JSON number.
type PaymentRequest struct {
	OrderID     string `json:"order_id" validate:"required"`
	Amount      string `json:"amount" validate:"required"`
	Currency    string `json:"currency" validate:"required"`
	PayerToken  string `json:"payer_token" validate:"required"`
	Description string `json:"description" validate:"max=127"`
}

// DepositRequest is the body of a deposit (wallet top-up) request. UserID must
// match ^[A-Za-z0-9_-]{1,64}$.
type DepositRequest struct {
	OrderID  string `json:"order_id" validate:"required"`
	UserID   string `json:"user_id" validate:"required"`
	Amount   string `json:"amount" validate:"required"`
	Currency string `json:"currency" validate:"required"`
}

// Payment is a payment request that passed every rule: amounts in minor
// units, Payer the verified token subject, Fee the platform's cut.
type Payment struct {
	Merchant    string
	OrderID     string
	Payer       string
	Currency    string
	Description string
	Amount      int64
	Fee         int64
}

// Deposit is a deposit request that passed every rule.
type Deposit struct {
	Merchant string
	OrderID  string
	User     string
	Currency string
	Amount   int64
}

// Payer is the verified identity behind a payer token.
type Payer struct {
	Subject string // the token's sub: the payer's user id
	TokenID string // the token's jti
}

// PayerVerifier checks payer tokens.
type PayerVerifier interface {
	// VerifyPayer returns the payer a token identifies. It returns an error
	// wrapping ErrPayerToken if the token is not acceptable, and one wrapping
	// ErrUnavailable if the denylist cannot answer.
	VerifyPayer(ctx context.Context, token string) (Payer, error)
	// Subject returns the subject of a token whose signature, issuer and
	// audience verify, even if it expired, is not yet valid or was revoked;
	// an error wrapping ErrPayerToken otherwise (ErrUnavailable if the key
	// store cannot answer). It identifies whom a retry names so it can be
	// compared with a recorded payment; it never authorizes one.
	Subject(ctx context.Context, token string) (string, error)
}

// maxCachedRules bounds the Checker's compiled-rules cache; it is cleared
// when full, which only costs recompiling.
const maxCachedRules = 4096

// Checker validates decoded requests against a merchant's rules. Create it
// with NewChecker; it is safe for concurrent use and caches each merchant's
// compiled rules, recompiling when the merchant's Rules change.
type Checker struct {
	// Payers verifies payer tokens for Payment.
	Payers PayerVerifier

	once     sync.Once
	validate *validator.Validate
	cache    sync.Map // merchant id → *rulesEntry
	cached   atomic.Int64
}

type rulesEntry struct {
	src      Rules
	compiled *CompiledRules
}

// NewChecker returns a Checker that verifies payer tokens with p.
func NewChecker(p PayerVerifier) *Checker {
	c := &Checker{Payers: p}
	c.init()
	return c
}

func (c *Checker) init() {
	c.once.Do(func() {
		v := validator.New(validator.WithRequiredStructEnabled())
		v.RegisterTagNameFunc(func(f reflect.StructField) string {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				return f.Name
			}
			return name
		})
		c.validate = v
	})
}

// Rules returns m's compiled rules from the cache, compiling them on first use
// or when they changed. Errors wrap ErrRules.
func (c *Checker) Rules(m Merchant) (*CompiledRules, error) {
	if e, ok := c.cache.Load(m.ID); ok {
		e := e.(*rulesEntry)
		if rulesEqual(e.src, m.Rules) {
			return e.compiled, nil
		}
	}
	cr, err := Compile(m.Rules)
	if err != nil {
		return nil, fmt.Errorf("merchant %q: %w", m.ID, err)
	}
	src := m.Rules
	src.Currencies = slices.Clone(src.Currencies)
	if c.cached.Add(1) > maxCachedRules {
		c.cache.Clear()
		c.cached.Store(1)
	}
	c.cache.Store(m.ID, &rulesEntry{src: src, compiled: cr})
	return cr, nil
}

func rulesEqual(a, b Rules) bool {
	return a.MinAmount == b.MinAmount && a.MaxAmount == b.MaxAmount &&
		a.OrderIDPattern == b.OrderIDPattern && slices.Equal(a.Currencies, b.Currencies)
}

// Payment checks req for merchant m and returns the payment to record. Every
// failing field, including a rejected payer token, is listed in one
// *ValidationError (wrapping ErrValidation). It returns an error wrapping
// ErrUnavailable if the payer denylist cannot answer, and one wrapping
// ErrRules if m's profile is invalid.
func (c *Checker) Payment(ctx context.Context, m Merchant, req PaymentRequest) (Payment, error) {
	cr, err := c.Rules(m)
	if err != nil {
		return Payment{}, err
	}
	if m.FeeBps < 0 || m.FeeBps > 10000 {
		return Payment{}, fmt.Errorf("%w: merchant %q: fee_bps %d outside 0..10000", ErrRules, m.ID, m.FeeBps)
	}
	if c.Payers == nil {
		return Payment{}, errors.New("policy: checker has no payer verifier")
	}
	errs, err := c.structErrors(&req)
	if err != nil {
		return Payment{}, err
	}
	checkOrderID(&errs, cr, req.OrderID)
	amount := checkMoney(&errs, cr, req.Amount, req.Currency)
	if !errs.has("description") && !cleanText(req.Description) {
		errs.add("description", CodeInvalid, "description must be valid UTF-8 without control characters")
	}
	var fee int64
	if amount > 0 {
		fee = ComputeFee(amount, m.FeeBps)
		if fee >= amount {
			errs.add("amount", CodeTooSmall, "amount must exceed the merchant's fee")
		}
	}
	var payer Payer
	if !errs.has("payer_token") {
		payer, err = c.Payers.VerifyPayer(ctx, req.PayerToken)
		switch {
		case err == nil:
		case errors.Is(err, ErrPayerToken):
			errs.add("payer_token", CodeInvalid, "payer token not accepted")
		default:
			return Payment{}, err
		}
	}
	if len(errs) > 0 {
		return Payment{}, errs.sorted(paymentFields)
	}
	return Payment{
		Merchant:    m.ID,
		OrderID:     req.OrderID,
		Payer:       payer.Subject,
		Currency:    req.Currency,
		Description: req.Description,
		Amount:      amount,
		Fee:         fee,
	}, nil
}

// PayerSubject returns the subject payer token names (PayerVerifier.Subject),
// or "" if it names none Quill can vouch for. A retry of a recorded payment
// whose rules now fail is compared with it by this subject: a payer who is
// not the recorded one makes the retry a conflict.
func (c *Checker) PayerSubject(ctx context.Context, token string) string {
	if c.Payers == nil || token == "" {
		return ""
	}
	sub, err := c.Payers.Subject(ctx, token)
	if err != nil {
		return ""
	}
	return sub
}

// Deposit checks req for merchant m and returns the deposit to record. It
// returns ErrForbidden, before looking at req, if m may not deposit; every
// failing field in one *ValidationError; an error wrapping ErrRules if m's
// profile is invalid.
func (c *Checker) Deposit(ctx context.Context, m Merchant, req DepositRequest) (Deposit, error) {
	if !m.CanDeposit {
		return Deposit{}, fmt.Errorf("%w: merchant %q may not deposit", ErrForbidden, m.ID)
	}
	cr, err := c.Rules(m)
	if err != nil {
		return Deposit{}, err
	}
	errs, err := c.structErrors(&req)
	if err != nil {
		return Deposit{}, err
	}
	checkOrderID(&errs, cr, req.OrderID)
	if !errs.has("user_id") && !validUserID(req.UserID) {
		errs.add("user_id", CodePattern, "user_id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	}
	amount := checkMoney(&errs, cr, req.Amount, req.Currency)
	if len(errs) > 0 {
		return Deposit{}, errs.sorted(depositFields)
	}
	return Deposit{
		Merchant: m.ID,
		OrderID:  req.OrderID,
		User:     req.UserID,
		Currency: req.Currency,
		Amount:   amount,
	}, nil
}

// ComputeFee returns floor(amount * feeBps / 10000) without overflow, for
// amount >= 0 and 0 <= feeBps <= 10000 (it returns 0 outside that domain).
func ComputeFee(amount, feeBps int64) int64 {
	if amount <= 0 || feeBps <= 0 || feeBps > 10000 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(amount), uint64(feeBps))
	q, _ := bits.Div64(hi, lo, 10000) // hi < 10000 since amount < 2^63 and feeBps <= 10000
	return int64(q)
}

var (
	paymentFields = []string{"order_id", "amount", "currency", "payer_token", "description"}
	depositFields = []string{"order_id", "user_id", "amount", "currency"}
)

type fieldErrors []FieldError

func (f *fieldErrors) add(field, code, msg string) {
	*f = append(*f, FieldError{Field: field, Code: code, Message: msg})
}

func (f fieldErrors) has(field string) bool {
	for _, e := range f {
		if e.Field == field {
			return true
		}
	}
	return false
}

// sorted returns the errors as a *ValidationError in the request's field order.
func (f fieldErrors) sorted(order []string) *ValidationError {
	slices.SortStableFunc(f, func(a, b FieldError) int {
		return slices.Index(order, a.Field) - slices.Index(order, b.Field)
	})
	return &ValidationError{Fields: f}
}

// structErrors runs the validator tags and maps their failures to FieldErrors.
func (c *Checker) structErrors(req any) (fieldErrors, error) {
	c.init()
	err := c.validate.Struct(req)
	if err == nil {
		return nil, nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return nil, fmt.Errorf("policy: validator: %w", err)
	}
	errs := make(fieldErrors, 0, len(verrs))
	for _, fe := range verrs {
		var msg string
		switch fe.Tag() {
		case "required":
			msg = fe.Field() + " is required"
		case "max":
			msg = fe.Field() + " must be at most " + fe.Param() + " characters"
		default:
			msg = fe.Field() + " is invalid"
		}
		errs.add(fe.Field(), fe.Tag(), msg)
	}
	return errs, nil
}

func checkOrderID(errs *fieldErrors, cr *CompiledRules, id string) {
	if errs.has("order_id") || cr.MatchOrderID(id) {
		return
	}
	if len(id) > MaxOrderIDLen {
		errs.add("order_id", CodePattern, "order_id must be at most "+strconv.Itoa(MaxOrderIDLen)+" characters")
		return
	}
	errs.add("order_id", CodePattern, "order_id does not match the merchant's pattern "+cr.rules.OrderIDPattern)
}

// checkMoney checks currency and amount together and returns the amount in
// minor units, or 0 if either failed.
func checkMoney(errs *fieldErrors, cr *CompiledRules, amount, currency string) int64 {
	_, known := Exponent(currency)
	allowed := known && cr.Allows(currency)
	if !errs.has("currency") {
		if !known {
			errs.add("currency", CodeUnsupported, "currency is not a supported ISO 4217 code")
		} else if !allowed {
			errs.add("currency", CodeUnsupported, "currency is not accepted for this merchant")
		}
	}
	if errs.has("amount") {
		return 0
	}
	var err error
	var v int64
	if known {
		v, err = ParseAmount(amount, currency)
	} else {
		// The amount cannot be scaled without a currency; still report a bad spelling.
		err = CheckAmountFormat(amount)
	}
	if err != nil {
		var ae *AmountError
		errors.As(err, &ae)
		errs.add("amount", ae.Code, ae.Message)
		return 0
	}
	if !allowed {
		return 0
	}
	lo, hi, _ := cr.Limits(currency)
	switch {
	case v < lo:
		errs.add("amount", CodeTooSmall, "amount is below the minimum of "+FormatAmount(lo, currency)+" "+currency)
		return 0
	case v > hi:
		errs.add("amount", CodeTooLarge, "amount exceeds the maximum of "+FormatAmount(hi, currency)+" "+currency)
		return 0
	}
	return v
}

// cleanText reports whether s is valid UTF-8 without control characters.
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func validUserID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
