package ledger_test

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/ledger"
)

func evidence() ledger.Evidence {
	return ledger.Evidence{
		Scheme: "WECHATPAY2-SHA256-RSA2048", KeyID: "K1",
		Authorization: `WECHATPAY2-SHA256-RSA2048 mchid="M1",nonce_str="n",timestamp="1",serial_no="K1",signature="c2ln"`,
		Method:        "POST", Target: "/v1/payments", Body: []byte(`{"amount":"1.00"}`),
	}
}

func TestPaymentAndDeposit(t *testing.T) {
	tests := []struct {
		name string
		e    ledger.Entry
		want []ledger.Posting
	}{
		{"payment with fee", ledger.Payment("M1", "ORD1", "42", "CNY", 1000, 6, "tea", evidence()), []ledger.Posting{
			{Account: "user:42", Currency: "CNY", Amount: 1000},
			{Account: "merchant:M1", Currency: "CNY", Amount: -994},
			{Account: "platform:fees", Currency: "CNY", Amount: -6},
		}},
		{"payment without fee", ledger.Payment("M1", "ORD1", "42", "CNY", 1000, 0, "", evidence()), []ledger.Posting{
			{Account: "user:42", Currency: "CNY", Amount: 1000},
			{Account: "merchant:M1", Currency: "CNY", Amount: -1000},
		}},
		{"deposit", ledger.Deposit("M1", "DEP1", "42", "CNY", 500, evidence()), []ledger.Posting{
			{Account: "bank:settlement", Currency: "CNY", Amount: 500},
			{Account: "user:42", Currency: "CNY", Amount: -500},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.e.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if len(tt.e.Postings) != len(tt.want) {
				t.Fatalf("postings = %+v, want %+v", tt.e.Postings, tt.want)
			}
			for i := range tt.want {
				if tt.e.Postings[i] != tt.want[i] {
					t.Errorf("posting %d = %+v, want %+v", i, tt.e.Postings[i], tt.want[i])
				}
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code     string
		typ      ledger.AccountType
		negative bool
		wantErr  bool
	}{
		{"user:42", ledger.Liability, false, false},
		{"merchant:M1", ledger.Liability, false, false},
		{"platform:fees", ledger.Revenue, false, false},
		{"bank:settlement", ledger.Asset, true, false},
		{"user:", "", false, true},
		{"merchant:", "", false, true},
		{"platform:other", "", false, true},
		{"bank:other", "", false, true},
		{"", "", false, true},
		{"USER:42", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			typ, neg, err := ledger.Classify(tt.code)
			if tt.wantErr {
				if !errors.Is(err, ledger.ErrInvalidEntry) {
					t.Fatalf("err = %v, want ErrInvalidEntry", err)
				}
				return
			}
			if err != nil || typ != tt.typ || neg != tt.negative {
				t.Fatalf("Classify = %q, %v, %v; want %q, %v", typ, neg, err, tt.typ, tt.negative)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := func() ledger.Entry { return ledger.Payment("M1", "ORD1", "42", "CNY", 1000, 6, "tea", evidence()) }
	tests := []struct {
		name   string
		modify func(e *ledger.Entry)
		want   error
	}{
		{"valid", func(e *ledger.Entry) {}, nil},
		{"unknown kind", func(e *ledger.Entry) { e.Kind = "gift" }, ledger.ErrInvalidEntry},
		{"empty merchant", func(e *ledger.Entry) { e.Merchant = "" }, ledger.ErrInvalidEntry},
		{"empty order", func(e *ledger.Entry) { e.OrderID = "" }, ledger.ErrInvalidEntry},
		{"empty payer", func(e *ledger.Entry) { e.Payer = "" }, ledger.ErrInvalidEntry},
		{"bad currency", func(e *ledger.Entry) { e.Currency = "cny" }, ledger.ErrInvalidEntry},
		{"zero amount", func(e *ledger.Entry) { e.Amount = 0 }, ledger.ErrInvalidEntry},
		{"negative amount", func(e *ledger.Entry) { e.Amount = -1 }, ledger.ErrInvalidEntry},
		{"negative fee", func(e *ledger.Entry) { e.Fee = -1 }, ledger.ErrInvalidEntry},
		{"fee equals amount", func(e *ledger.Entry) { e.Fee = e.Amount }, ledger.ErrInvalidEntry},
		{"one posting", func(e *ledger.Entry) { e.Postings = e.Postings[:1] }, ledger.ErrInvalidEntry},
		{"zero posting", func(e *ledger.Entry) {
			e.Postings = append(e.Postings, ledger.Posting{Account: "user:1", Currency: "CNY"})
		}, ledger.ErrInvalidEntry},
		{"unknown account", func(e *ledger.Entry) { e.Postings[0].Account = "cash:1" }, ledger.ErrInvalidEntry},
		{"posting currency", func(e *ledger.Entry) { e.Postings[0].Currency = "C" }, ledger.ErrInvalidEntry},
		{"unbalanced", func(e *ledger.Entry) { e.Postings[0].Amount++ }, ledger.ErrUnbalanced},
		{"unbalanced per currency", func(e *ledger.Entry) {
			e.Postings = []ledger.Posting{
				{Account: "user:1", Currency: "CNY", Amount: 5}, {Account: "user:2", Currency: "USD", Amount: -5},
			}
		}, ledger.ErrUnbalanced},
		{"overflow", func(e *ledger.Entry) {
			e.Postings = []ledger.Posting{
				{Account: "user:1", Currency: "CNY", Amount: math.MaxInt64},
				{Account: "user:2", Currency: "CNY", Amount: math.MaxInt64},
				{Account: "user:3", Currency: "CNY", Amount: 2},
			}
		}, ledger.ErrInvalidEntry},
		{"min int posting", func(e *ledger.Entry) {
			e.Postings = []ledger.Posting{
				{Account: "user:1", Currency: "CNY", Amount: math.MinInt64},
				{Account: "user:2", Currency: "CNY", Amount: math.MaxInt64},
				{Account: "user:3", Currency: "CNY", Amount: 1},
			}
		}, ledger.ErrInvalidEntry},
		{"NUL in description", func(e *ledger.Entry) { e.Description = "a\x00b" }, ledger.ErrInvalidEntry},
		{"invalid UTF-8 in evidence", func(e *ledger.Entry) { e.Evidence.Target = "/\xff" }, ledger.ErrInvalidEntry},
		{"long description", func(e *ledger.Entry) { e.Description = strings.Repeat("x", 5000) }, ledger.ErrInvalidEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok()
			tt.modify(&e)
			err := e.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	base := ledger.Payment("M1", "ORD1", "42", "CNY", 1000, 6, "tea", evidence())
	fp := ledger.Fingerprint(base)

	t.Run("ignores evidence", func(t *testing.T) {
		e := base
		e.Evidence.Authorization = "other"
		e.Evidence.Body = []byte("x")
		if ledger.Fingerprint(e) != fp {
			t.Fatal("fingerprint changed with evidence")
		}
	})
	t.Run("ignores posting order", func(t *testing.T) {
		e := base
		e.Postings = []ledger.Posting{base.Postings[2], base.Postings[0], base.Postings[1]}
		if ledger.Fingerprint(e) != fp {
			t.Fatal("fingerprint depends on posting order")
		}
	})
	changes := []struct {
		name   string
		modify func(e *ledger.Entry)
	}{
		{"kind", func(e *ledger.Entry) { e.Kind = ledger.KindDeposit }},
		{"merchant", func(e *ledger.Entry) { e.Merchant = "M2" }},
		{"order", func(e *ledger.Entry) { e.OrderID = "ORD2" }},
		{"payer", func(e *ledger.Entry) { e.Payer = "43" }},
		{"currency", func(e *ledger.Entry) { e.Currency = "USD" }},
		{"amount", func(e *ledger.Entry) { e.Amount = 1001 }},
		{"fee", func(e *ledger.Entry) { e.Fee = 7 }},
		{"description", func(e *ledger.Entry) { e.Description = "coffee" }},
		{"posting", func(e *ledger.Entry) {
			e.Postings = append([]ledger.Posting(nil), e.Postings...)
			e.Postings[1].Amount--
		}},
		// Length prefixes: moving a byte between adjacent fields must change it.
		{"field boundary", func(e *ledger.Entry) { e.Merchant, e.OrderID = "M1O", "RD1" }},
	}
	for _, c := range changes {
		t.Run("depends on "+c.name, func(t *testing.T) {
			e := base
			c.modify(&e)
			if ledger.Fingerprint(e) == fp {
				t.Fatal("fingerprint unchanged")
			}
		})
	}
}

// TestChainHashEncoding recomputes ChainHash from the encoding documented in
// doc.go, written out independently, so the documentation and code agree.
func TestChainHashEncoding(t *testing.T) {
	ev := evidence()
	e := ledger.Payment("M1", "ORD1", "42", "CNY", 1000, 6, "tea", ev)
	created := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	r := ledger.Recorded{
		ID: 7, Kind: e.Kind, Merchant: e.Merchant, OrderID: e.OrderID, Payer: e.Payer,
		Currency: e.Currency, Amount: e.Amount, Fee: e.Fee, Description: e.Description,
		Fingerprint: ledger.Fingerprint(e), CreatedAt: ledger.CanonicalTime(created),
	}
	var prev [32]byte
	prev[0] = 0xAB

	var b []byte
	str := func(s string) { b = binary.BigEndian.AppendUint32(b, uint32(len(s))); b = append(b, s...) }
	i64 := func(v int64) { b = binary.BigEndian.AppendUint64(b, uint64(v)) }
	str("quill.ledger.evidence.v1")
	for _, s := range []string{ev.Scheme, ev.KeyID, ev.Authorization, ev.Method, ev.Target, string(ev.Body)} {
		str(s)
	}
	evd := sha256.Sum256(b)
	if evd != ledger.EvidenceDigest(ev) {
		t.Fatal("EvidenceDigest differs from the documented encoding")
	}

	b = append([]byte(nil), prev[:]...)
	str("quill.ledger.entry.v1")
	i64(7)
	for _, s := range []string{"payment", "M1", "ORD1", "42", "CNY"} {
		str(s)
	}
	i64(1000)
	i64(6)
	str("tea")
	str(string(r.Fingerprint[:]))
	i64(created.UnixMicro())
	i64(3) // postings sorted by account: merchant:M1, platform:fees, user:42
	str("merchant:M1")
	str("CNY")
	i64(-994)
	str("platform:fees")
	str("CNY")
	i64(-6)
	str("user:42")
	str("CNY")
	i64(1000)
	str(string(evd[:]))
	want := sha256.Sum256(b)

	if got := ledger.ChainHash(prev, r, e.Postings, evd); got != want {
		t.Fatalf("ChainHash = %x, want %x", got, want)
	}
	r.Replayed, r.Hash = true, want
	if got := ledger.ChainHash(prev, r, e.Postings, evd); got != want {
		t.Fatal("ChainHash depends on Replayed or Hash")
	}
	r.ID = 8
	if ledger.ChainHash(prev, r, e.Postings, evd) == want {
		t.Fatal("ChainHash ignores the id")
	}
}

func TestCanonicalTime(t *testing.T) {
	in := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	got := ledger.CanonicalTime(in)
	if got.Location() != time.UTC || got.Nanosecond() != 123456000 || !got.Equal(in.Truncate(time.Microsecond)) {
		t.Fatalf("CanonicalTime = %v", got)
	}
}

// FuzzValidate checks that Validate never panics and that whatever it accepts
// balances per currency and has a well-formed fingerprint input.
func FuzzValidate(f *testing.F) {
	f.Add("M1", "ORD1", "42", "CNY", int64(1000), int64(6), "tea", int64(0))
	f.Add("M1", "ORD1", "42", "CNY", int64(math.MaxInt64), int64(math.MaxInt64-1), "", int64(5))
	f.Add("", "\x00", "\xff", "usd", int64(-1), int64(-1), "x", int64(math.MinInt64))
	f.Fuzz(func(t *testing.T, merchant, order, payer, cur string, amount, fee int64, desc string, skew int64) {
		e := ledger.Payment(merchant, order, payer, cur, amount, fee, desc, evidence())
		e.Postings[0].Amount += skew
		if err := e.Validate(); err != nil {
			if !errors.Is(err, ledger.ErrInvalidEntry) && !errors.Is(err, ledger.ErrUnbalanced) {
				t.Fatalf("Validate error %v wraps no sentinel", err)
			}
			return
		}
		var sum int64
		for _, p := range e.Postings {
			sum += p.Amount
		}
		if sum != 0 || skew != 0 {
			t.Fatalf("accepted unbalanced entry %+v", e)
		}
		_ = ledger.Fingerprint(e)
	})
}

// TestMatches pins the idempotency rule: every field the request determines
// is compared, the derived fee and postings and the evidence are not.
func TestMatches(t *testing.T) {
	ev := ledger.Evidence{Scheme: "S", KeyID: "K", Authorization: "a", Method: "POST", Target: "/v1/payments", Body: []byte("{}")}
	base := ledger.Payment("M1", "ORD1", "42", "CNY", 1000, 6, "tea", ev)
	rec := ledger.Proposed(base)
	rec.ID, rec.Hash = 7, [32]byte{1}
	other := ev
	other.Authorization = "b"
	for _, c := range []struct {
		name string
		e    ledger.Entry
		want bool
	}{
		{"identical", base, true},
		{"signed anew", ledger.Payment("M1", "ORD1", "42", "CNY", 1000, 6, "tea", other), true},
		{"fee rate changed since", ledger.Payment("M1", "ORD1", "42", "CNY", 1000, 30, "tea", ev), true},
		{"other payer", ledger.Payment("M1", "ORD1", "43", "CNY", 1000, 6, "tea", ev), false},
		{"payer unknown", ledger.Payment("M1", "ORD1", "", "CNY", 1000, 6, "tea", ev), false},
		{"other amount", ledger.Payment("M1", "ORD1", "42", "CNY", 1001, 6, "tea", ev), false},
		{"other currency", ledger.Payment("M1", "ORD1", "42", "USD", 1000, 6, "tea", ev), false},
		{"other description", ledger.Payment("M1", "ORD1", "42", "CNY", 1000, 6, "", ev), false},
		{"other order", ledger.Payment("M1", "ORD2", "42", "CNY", 1000, 6, "tea", ev), false},
		{"other merchant", ledger.Payment("M2", "ORD1", "42", "CNY", 1000, 6, "tea", ev), false},
		{"a deposit", ledger.Deposit("M1", "ORD1", "42", "CNY", 1000, ev), false},
	} {
		if got := ledger.Matches(rec, c.e); got != c.want {
			t.Errorf("%s: Matches = %v, want %v", c.name, got, c.want)
		}
		// Equal fingerprints always match.
		if ledger.Fingerprint(c.e) == rec.Fingerprint && !ledger.Matches(rec, c.e) {
			t.Errorf("%s: same fingerprint but no match", c.name)
		}
	}
}
