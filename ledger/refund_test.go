package ledger_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quillpay/quill/ledger"
)

func paid(amount, fee int64) ledger.Refundable {
	e := ledger.Payment("M1", "ORD1", "42", "CNY", amount, fee, "tea", ledger.Evidence{})
	rec := ledger.Proposed(e)
	rec.ID = 9
	return ledger.Refundable{Payment: rec}
}

// TestRefundFeeProportional checks the fee rule on random refund sequences:
// each refund's fee is within [0, amount], the fee returned so far is the
// floored proportion of the amount refunded so far (so never above the
// payment's fee), and a payment refunded in full has returned all its fee.
func TestRefundFeeProportional(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := [][2]int64{{100, 0}, {100, 1}, {1000, 6}, {3, 2}, {101, 100}, {math.MaxInt64, math.MaxInt64 - 1}, {math.MaxInt64, 12345}}
	for range 200 {
		a := rng.Int64N(100000) + 1
		cases = append(cases, [2]int64{a, rng.Int64N(a)})
	}
	for _, c := range cases {
		amount, fee := c[0], c[1]
		var before, feeSoFar int64
		for before < amount {
			r := amount - before
			if rng.IntN(3) > 0 {
				r = rng.Int64N(r) + 1
			}
			f := ledger.RefundFee(amount, fee, before, r)
			if f < 0 || f > r {
				t.Fatalf("payment %d fee %d: refund %d after %d returns fee %d", amount, fee, r, before, f)
			}
			before, feeSoFar = before+r, feeSoFar+f
			if want := floorMulDiv(before, fee, amount); feeSoFar != want {
				t.Fatalf("payment %d fee %d: %d refunded returned fee %d, want %d", amount, fee, before, feeSoFar, want)
			}
		}
		if feeSoFar != fee {
			t.Fatalf("payment %d fee %d refunded in full returned fee %d", amount, fee, feeSoFar)
		}
	}
}

// floorMulDiv is floor(x·y/z) by repeated halving, independent of RefundFee's
// 128-bit arithmetic.
func floorMulDiv(x, y, z int64) int64 {
	// x·y/z = x·(y/z) split as x·q + x·r/z with y = q·z + r; x·r/z < x.
	q, r := y/z, y%z
	var acc, rem int64 // acc + rem/z = x·r/z, rem < z
	for bit := int64(1) << 62; bit > 0; bit >>= 1 {
		acc, rem = acc*2, rem*2
		if rem >= z || rem < 0 {
			acc, rem = acc+1, rem-z
		}
		if x&bit != 0 {
			rem += r
			if rem >= z || rem < 0 {
				acc, rem = acc+1, rem-z
			}
		}
	}
	return x*q + acc
}

func TestCompleteRefund(t *testing.T) {
	req := ledger.Refund("M1", "REF1", "ORD1", "CNY", 400, "broken cup", ledger.Evidence{})
	if err := req.Validate(); err != nil {
		t.Fatalf("a refund request must validate before it is completed: %v", err)
	}
	got, err := ledger.CompleteRefund(req, paid(1000, 6))
	if err != nil {
		t.Fatal(err)
	}
	if got.Payer != "42" || got.Fee != 2 || got.RefundID != "REF1" || got.OrderID != "ORD1" {
		t.Fatalf("completed = %+v", got)
	}
	want := map[string]int64{"user:42": -400, "merchant:M1": 398, "platform:fees": 2}
	if len(got.Postings) != len(want) {
		t.Fatalf("postings %+v", got.Postings)
	}
	for _, p := range got.Postings {
		if want[p.Account] != p.Amount {
			t.Errorf("posting %+v, want %d", p, want[p.Account])
		}
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	// A one-unit refund whose fee share is the whole unit: the merchant posts nothing.
	p := paid(3, 2)
	p.Refunded, p.RefundedFee, p.Refunds = 1, 0, 1
	one, err := ledger.CompleteRefund(ledger.Refund("M1", "REF2", "ORD1", "CNY", 1, "", ledger.Evidence{}), p)
	if err != nil || one.Fee != 1 || len(one.Postings) != 2 || one.Validate() != nil {
		t.Fatalf("fee-only refund = %+v, %v (validate %v)", one, err, one.Validate())
	}

	over := paid(1000, 6)
	over.Refunded = 700
	dep := ledger.Refundable{Payment: ledger.Proposed(ledger.Deposit("M1", "ORD1", "42", "CNY", 1000, ledger.Evidence{}))}
	other := paid(1000, 6)
	other.Payment.Merchant = "M2"
	for _, c := range []struct {
		name string
		p    ledger.Refundable
		e    ledger.Entry
		want error
	}{
		{"more than is left", over, req, ledger.ErrRefundExceedsPayment},
		{"more than the payment", paid(300, 1), req, ledger.ErrRefundExceedsPayment},
		{"other currency", paid(1000, 6), ledger.Refund("M1", "REF1", "ORD1", "USD", 400, "", ledger.Evidence{}), ledger.ErrRefundCurrency},
		{"a deposit", dep, req, ledger.ErrNotRefundable},
		{"another merchant's payment", other, req, ledger.ErrNotRefundable},
	} {
		if _, err := ledger.CompleteRefund(c.e, c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	for _, bad := range []ledger.Entry{
		ledger.Refund("M1", "", "ORD1", "CNY", 400, "", ledger.Evidence{}),
		ledger.Refund("M1", "REF1", "", "CNY", 400, "", ledger.Evidence{}),
		ledger.Refund("M1", "REF1", "ORD1", "CNY", 0, "", ledger.Evidence{}),
		func() ledger.Entry {
			e := ledger.Payment("M1", "ORD1", "42", "CNY", 10, 0, "", ledger.Evidence{})
			e.RefundID = "R"
			return e
		}(),
		func() ledger.Entry {
			e := ledger.Payment("M1", "ORD1", "42", "CNY", 10, 10, "", ledger.Evidence{})
			return e
		}(),
	} {
		if err := bad.Validate(); !errors.Is(err, ledger.ErrInvalidEntry) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidEntry", bad, err)
		}
	}
}

// TestRefundCanonicalBytes: a refund's fingerprint and chain hash cover its
// refund id, and the bytes of the other kinds are what they were.
func TestRefundCanonicalBytes(t *testing.T) {
	e, err := ledger.CompleteRefund(ledger.Refund("M1", "REF1", "ORD1", "CNY", 400, "", ledger.Evidence{}), paid(1000, 6))
	if err != nil {
		t.Fatal(err)
	}
	e2 := e
	e2.RefundID = "REF2"
	if ledger.Fingerprint(e) == ledger.Fingerprint(e2) {
		t.Fatal("the fingerprint does not cover the refund id")
	}
	r, r2 := ledger.Proposed(e), ledger.Proposed(e2)
	r2.Fingerprint = r.Fingerprint
	if ledger.ChainHash(ledger.GenesisHash, r, e.Postings, [32]byte{}) == ledger.ChainHash(ledger.GenesisHash, r2, e.Postings, [32]byte{}) {
		t.Fatal("the chain hash does not cover the refund id")
	}
	p := ledger.Payment("M1", "ORD1", "42", "CNY", 1000, 6, "tea", ledger.Evidence{})
	p2 := p
	p2.RefundID = "ignored" // not a refund: not encoded
	if ledger.Fingerprint(p) != ledger.Fingerprint(p2) {
		t.Fatal("a payment's bytes changed with a refund id")
	}
	if !ledger.Matches(r, ledger.Refund("M1", "REF1", "ORD1", "CNY", 400, "", ledger.Evidence{})) {
		t.Fatal("a refund request does not match the refund it recorded")
	}
	for _, c := range []ledger.Entry{
		ledger.Refund("M1", "REF1", "ORD1", "CNY", 401, "", ledger.Evidence{}),
		ledger.Refund("M1", "REF1", "ORD2", "CNY", 400, "", ledger.Evidence{}),
		ledger.Refund("M1", "REF1", "ORD1", "CNY", 400, "other reason", ledger.Evidence{}),
	} {
		if ledger.Matches(r, c) {
			t.Errorf("%+v matches the recorded refund", c)
		}
	}
}
