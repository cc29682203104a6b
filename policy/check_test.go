package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// fakePayers accepts "good-<subject>" tokens, refuses "bad", and is
// unavailable for "down".
type fakePayers struct{}

func (fakePayers) VerifyPayer(_ context.Context, token string) (Payer, error) {
	switch {
	case strings.HasPrefix(token, "good-"):
		return Payer{Subject: strings.TrimPrefix(token, "good-"), TokenID: "jti-1"}, nil
	case token == "down":
		return Payer{}, fmt.Errorf("%w: redis down", ErrUnavailable)
	default:
		return Payer{}, fmt.Errorf("%w: bad signature", ErrPayerToken)
	}
}

func (f fakePayers) Subject(ctx context.Context, token string) (string, error) {
	if sub, ok := strings.CutPrefix(token, "expired-"); ok {
		return sub, nil
	}
	p, err := f.VerifyPayer(ctx, token)
	return p.Subject, err
}

func validPayment() PaymentRequest {
	return PaymentRequest{
		OrderID:     "ORD202401010001",
		Amount:      "12.34",
		Currency:    "CNY",
		PayerToken:  "good-user42",
		Description: "咖啡 coffee",
	}
}

var testMerchant = Merchant{ID: "M100", Name: "Cafe", FeeBps: 60}

// fields returns "field:code" pairs of a *ValidationError, or fails tb.
func fields(tb testing.TB, err error) []string {
	tb.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrValidation) {
		tb.Fatalf("error = %v; want *ValidationError", err)
	}
	var out []string
	for _, f := range ve.Fields {
		if f.Message == "" {
			tb.Fatalf("field error without message: %+v", f)
		}
		out = append(out, f.Field+":"+f.Code)
	}
	return out
}

func TestCheckerPaymentValid(t *testing.T) {
	c := NewChecker(fakePayers{})
	got, err := c.Payment(context.Background(), testMerchant, validPayment())
	if err != nil {
		t.Fatal(err)
	}
	want := Payment{Merchant: "M100", OrderID: "ORD202401010001", Payer: "user42", Currency: "CNY", Description: "咖啡 coffee", Amount: 1234, Fee: 7}
	if got != want {
		t.Fatalf("Payment = %+v; want %+v", got, want)
	}
}

func TestCheckerPaymentFields(t *testing.T) {
	usd := Merchant{ID: "M200", FeeBps: 0, Rules: Rules{Currencies: []string{"USD", "JPY"}, MinAmount: "5", MaxAmount: "100", OrderIDPattern: `^[a-z]{3}-[0-9]{3}$`}}
	tests := []struct {
		name string
		m    Merchant
		edit func(*PaymentRequest)
		want []string
	}{
		{"everything missing", testMerchant, func(r *PaymentRequest) { *r = PaymentRequest{} },
			[]string{"order_id:required", "amount:required", "currency:required", "payer_token:required"}},
		{"many failures at once", testMerchant, func(r *PaymentRequest) {
			r.OrderID, r.Amount, r.Currency, r.PayerToken, r.Description = "X1", "1.234", "USD", "bad", "tab\there"
		}, []string{"order_id:pattern", "amount:precision", "currency:unsupported", "payer_token:invalid", "description:invalid"}},
		{"bad amount with unknown currency", testMerchant, func(r *PaymentRequest) { r.Amount, r.Currency = "1e3", "XYZ" },
			[]string{"amount:format", "currency:unsupported"}},
		{"good amount with unknown currency", testMerchant, func(r *PaymentRequest) { r.Currency = "XYZ" },
			[]string{"currency:unsupported"}},
		{"zero", testMerchant, func(r *PaymentRequest) { r.Amount = "0.00" }, []string{"amount:zero"}},
		{"negative", testMerchant, func(r *PaymentRequest) { r.Amount = "-1.00" }, []string{"amount:format"}},
		{"above default max", testMerchant, func(r *PaymentRequest) { r.Amount = "1000000.01" }, []string{"amount:too_large"}},
		{"default max ok", testMerchant, func(r *PaymentRequest) { r.Amount = "1000000.00" }, nil},
		{"overflow", testMerchant, func(r *PaymentRequest) { r.Amount = "99999999999999999999" }, []string{"amount:too_large"}},
		{"order id too long", testMerchant, func(r *PaymentRequest) { r.OrderID = "ORD" + strings.Repeat("1", 30) }, []string{"order_id:pattern"}},
		{"description too long", testMerchant, func(r *PaymentRequest) { r.Description = strings.Repeat("字", 128) }, []string{"description:max"}},
		{"description 127 runes", testMerchant, func(r *PaymentRequest) { r.Description = strings.Repeat("字", 127) }, nil},
		{"description invalid utf8", testMerchant, func(r *PaymentRequest) { r.Description = "caf\xe9" }, []string{"description:invalid"}},
		{"description C1 control", testMerchant, func(r *PaymentRequest) { r.Description = "a\u0085b" }, []string{"description:invalid"}},
		{"merchant below min", usd, func(r *PaymentRequest) { r.OrderID, r.Amount, r.Currency = "abc-123", "4.99", "USD" }, []string{"amount:too_small"}},
		{"merchant min ok", usd, func(r *PaymentRequest) { r.OrderID, r.Amount, r.Currency = "abc-123", "5", "USD" }, nil},
		{"merchant above max", usd, func(r *PaymentRequest) { r.OrderID, r.Amount, r.Currency = "abc-123", "100.01", "USD" }, []string{"amount:too_large"}},
		{"merchant jpy", usd, func(r *PaymentRequest) { r.OrderID, r.Amount, r.Currency = "abc-123", "100", "JPY" }, nil},
		{"merchant jpy fraction", usd, func(r *PaymentRequest) { r.OrderID, r.Amount, r.Currency = "abc-123", "10.5", "JPY" }, []string{"amount:precision"}},
		{"merchant rejects default currency", usd, func(r *PaymentRequest) { r.OrderID = "abc-123" }, []string{"currency:unsupported"}},
		{"merchant custom pattern", usd, func(r *PaymentRequest) { r.Currency, r.Amount = "USD", "10" }, []string{"order_id:pattern"}},
	}
	c := NewChecker(fakePayers{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validPayment()
			tt.edit(&req)
			_, err := c.Payment(context.Background(), tt.m, req)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Payment: %v", err)
				}
				return
			}
			if got := fields(t, err); !slices.Equal(got, tt.want) {
				t.Fatalf("fields = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestCheckerPaymentErrors(t *testing.T) {
	c := NewChecker(fakePayers{})
	req := validPayment()
	req.PayerToken = "down"
	if _, err := c.Payment(context.Background(), testMerchant, req); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrValidation) {
		t.Fatalf("denylist down: error = %v; want ErrUnavailable only", err)
	}
	bad := testMerchant
	bad.Rules.OrderIDPattern = "("
	if _, err := c.Payment(context.Background(), bad, validPayment()); !errors.Is(err, ErrRules) {
		t.Fatalf("bad rules: error = %v; want ErrRules", err)
	}
	bad = testMerchant
	bad.FeeBps = 10001
	if _, err := c.Payment(context.Background(), bad, validPayment()); !errors.Is(err, ErrRules) {
		t.Fatalf("bad fee: error = %v; want ErrRules", err)
	}
}

// TestCheckerRulesCache checks that a merchant's changed rules take effect.
func TestCheckerRulesCache(t *testing.T) {
	c := NewChecker(fakePayers{})
	m := testMerchant
	req := validPayment()
	req.Amount = "600.00"
	if _, err := c.Payment(context.Background(), m, req); err != nil {
		t.Fatal(err)
	}
	first, _ := c.Rules(m)
	if again, _ := c.Rules(m); again != first {
		t.Fatal("rules recompiled although unchanged")
	}
	m.Rules.MaxAmount = "500"
	_, err := c.Payment(context.Background(), m, req)
	if got := fields(t, err); !slices.Equal(got, []string{"amount:too_large"}) {
		t.Fatalf("after lowering the max: fields = %v", got)
	}
	m.Rules.Currencies = []string{"USD"}
	_, err = c.Payment(context.Background(), m, req)
	if got := fields(t, err); !slices.Equal(got, []string{"currency:unsupported"}) {
		t.Fatalf("after changing currencies: fields = %v", got)
	}
}

func TestComputeFee(t *testing.T) {
	tests := []struct {
		amount, bps, want int64
	}{
		{1234, 60, 7}, // 7.404 → 7
		{1666, 60, 9}, // 9.996 → 9: always rounds down
		{10000, 60, 60},
		{1, 9999, 0},
		{100, 10000, 100},
		{100, 0, 0},
		{math.MaxInt64, 10000, math.MaxInt64},
		{math.MaxInt64, 9999, 9222449699651090329}, // floor((2^63-1)*9999/10000), no overflow
		{math.MaxInt64, 1, 922337203685477},
		{-5, 60, 0},
		{100, -1, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.amount, "@", tt.bps), func(t *testing.T) {
			if got := ComputeFee(tt.amount, tt.bps); got != tt.want {
				t.Fatalf("ComputeFee(%d, %d) = %d; want %d", tt.amount, tt.bps, got, tt.want)
			}
		})
	}
}

func TestCheckerPaymentFee(t *testing.T) {
	c := NewChecker(fakePayers{})
	tests := []struct {
		amount string
		bps    int64
		fee    int64
		code   string
	}{
		{"16.66", 60, 9, ""},
		{"0.01", 60, 0, ""},
		{"1000000.00", 9999, 99990000, ""},
		{"1.00", 10000, 0, "amount:too_small"}, // fee must stay below the amount
	}
	for _, tt := range tests {
		t.Run(tt.amount, func(t *testing.T) {
			m := testMerchant
			m.FeeBps = tt.bps
			req := validPayment()
			req.Amount = tt.amount
			p, err := c.Payment(context.Background(), m, req)
			if tt.code != "" {
				if got := fields(t, err); !slices.Equal(got, []string{tt.code}) {
					t.Fatalf("fields = %v; want %s", got, tt.code)
				}
				return
			}
			if err != nil || p.Fee != tt.fee || p.Fee >= p.Amount {
				t.Fatalf("Payment = %+v, %v; want fee %d", p, err, tt.fee)
			}
		})
	}
}

func TestCheckerDeposit(t *testing.T) {
	dep := Merchant{ID: "M300", CanDeposit: true}
	valid := DepositRequest{OrderID: "ORD202401010002", UserID: "user_42-x", Amount: "100.00", Currency: "CNY"}
	c := NewChecker(fakePayers{})

	got, err := c.Deposit(context.Background(), dep, valid)
	if want := (Deposit{Merchant: "M300", OrderID: valid.OrderID, User: "user_42-x", Currency: "CNY", Amount: 10000}); err != nil || got != want {
		t.Fatalf("Deposit = %+v, %v; want %+v", got, err, want)
	}
	if _, err := c.Deposit(context.Background(), Merchant{ID: "M100"}, DepositRequest{}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("deposit by merchant without CanDeposit: %v; want ErrForbidden", err)
	}

	tests := []struct {
		name string
		edit func(*DepositRequest)
		want []string
	}{
		{"empty", func(r *DepositRequest) { *r = DepositRequest{} }, []string{"order_id:required", "user_id:required", "amount:required", "currency:required"}},
		{"all wrong", func(r *DepositRequest) { r.OrderID, r.UserID, r.Amount, r.Currency = "nope", "user 42", "1,00", "EUR" },
			[]string{"order_id:pattern", "user_id:pattern", "amount:format", "currency:unsupported"}},
		{"user id too long", func(r *DepositRequest) { r.UserID = strings.Repeat("u", 65) }, []string{"user_id:pattern"}},
		{"user id 64", func(r *DepositRequest) { r.UserID = strings.Repeat("u", 64) }, nil},
		{"user id unicode", func(r *DepositRequest) { r.UserID = "用户" }, []string{"user_id:pattern"}},
		{"above max", func(r *DepositRequest) { r.Amount = "2000000" }, []string{"amount:too_large"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := valid
			tt.edit(&req)
			_, err := c.Deposit(context.Background(), dep, req)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := fields(t, err); !slices.Equal(got, tt.want) {
				t.Fatalf("fields = %v; want %v", got, tt.want)
			}
		})
	}
}

func BenchmarkCheckerPayment(b *testing.B) {
	c := NewChecker(fakePayers{})
	req := validPayment()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Payment(ctx, testMerchant, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckerPaymentInvalid(b *testing.B) {
	c := NewChecker(fakePayers{})
	req := PaymentRequest{OrderID: "X", Amount: "1.234", Currency: "USD", PayerToken: "bad"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Payment(ctx, testMerchant, req); !errors.Is(err, ErrValidation) {
			b.Fatal(err)
		}
	}
}
