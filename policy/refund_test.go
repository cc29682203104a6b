package policy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestRefundRules(t *testing.T) {
	c := NewChecker(fakePayers{})
	ok := RefundRequest{RefundID: "ORD900000000001", OrderID: "ORD202401010001", Amount: "2.50", Currency: "CNY", Reason: "破损 broken"}
	got, err := c.Refund(context.Background(), testMerchant, ok)
	if err != nil || got != (Refund{Merchant: "M100", RefundID: ok.RefundID, OrderID: ok.OrderID, Currency: "CNY", Reason: ok.Reason, Amount: 250}) {
		t.Fatalf("Refund = %+v, %v", got, err)
	}
	// Not the merchant's currency list or limits: a USD payment made before
	// the list changed can still be refunded, and so can more than max.
	usd := ok
	usd.Currency, usd.Amount = "USD", "2000000.00"
	if _, err := c.Refund(context.Background(), testMerchant, usd); err != nil {
		t.Fatalf("USD refund over the payment maximum: %v", err)
	}
	// An order id made under an older pattern is still an order id.
	old := ok
	old.OrderID = "legacy-42"
	if _, err := c.Refund(context.Background(), testMerchant, old); err != nil {
		t.Fatalf("refund of an order outside today's pattern: %v", err)
	}
	for _, tt := range []struct {
		name string
		edit func(*RefundRequest)
		want []string
	}{
		{"everything missing", func(r *RefundRequest) { *r = RefundRequest{} },
			[]string{"refund_id:required", "order_id:required", "amount:required", "currency:required"}},
		{"refund id off pattern", func(r *RefundRequest) { r.RefundID = "R1" }, []string{"refund_id:pattern"}},
		{"refund id too long", func(r *RefundRequest) { r.RefundID = "ORD" + strings.Repeat("1", 30) }, []string{"refund_id:pattern"}},
		{"order id too long", func(r *RefundRequest) { r.OrderID = strings.Repeat("1", 33) }, []string{"order_id:pattern"}},
		{"order id with a control character", func(r *RefundRequest) { r.OrderID = "ORD\n1" }, []string{"order_id:pattern"}},
		{"amount as spelled wrong", func(r *RefundRequest) { r.Amount = "1,00" }, []string{"amount:format"}},
		{"too precise", func(r *RefundRequest) { r.Amount = "1.001" }, []string{"amount:precision"}},
		{"zero", func(r *RefundRequest) { r.Amount = "0.00" }, []string{"amount:zero"}},
		{"unknown currency", func(r *RefundRequest) { r.Currency = "XXX" }, []string{"currency:unsupported"}},
		{"reason too long", func(r *RefundRequest) { r.Reason = strings.Repeat("a", 81) }, []string{"reason:max"}},
		{"reason with a control character", func(r *RefundRequest) { r.Reason = "a\u0085" }, []string{"reason:invalid"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := ok
			tt.edit(&req)
			_, err := c.Refund(context.Background(), testMerchant, req)
			if got := fields(t, err); !slices.Equal(got, tt.want) {
				t.Fatalf("fields = %v, want %v", got, tt.want)
			}
		})
	}
	bad := testMerchant
	bad.Rules.OrderIDPattern = "("
	if _, err := c.Refund(context.Background(), bad, ok); !errors.Is(err, ErrRules) {
		t.Fatalf("invalid rules: %v", err)
	}
}
