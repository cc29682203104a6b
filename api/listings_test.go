package api

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/signing"
)

// memListings is the test's ledger of records, in id order, with the
// resolution rules of ledger.Listings stated in Go. fail, when set, is the
// error of the failAt-th EachRecord call (1-based) after failAfter records.
type memListings struct {
	mu        sync.Mutex
	recs      []ledger.Record
	calls     int
	failAt    int
	failAfter int
	fail      error
}

func (m *memListings) ResolveSpan(_ context.Context, from, to time.Time) (ledger.Span, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sp := ledger.Span{FromEntry: 1, ToEntry: int64(len(m.recs)), From: from, To: to}
	for _, r := range m.recs {
		if !from.IsZero() && r.CreatedAt.Before(from) {
			sp.FromEntry = r.ID + 1
		}
		if !to.IsZero() && !r.CreatedAt.Before(to) && sp.ToEntry >= r.ID {
			sp.ToEntry = r.ID - 1
		}
	}
	return sp, nil
}

func (m *memListings) in(r ledger.Record, merchant string, kinds []ledger.Kind, sp ledger.Span) bool {
	return r.Merchant == merchant && slices.Contains(kinds, r.Kind) && r.ID >= sp.FromEntry && r.ID <= sp.ToEntry &&
		(sp.From.IsZero() || !r.CreatedAt.Before(sp.From)) && (sp.To.IsZero() || r.CreatedAt.Before(sp.To))
}

func (m *memListings) ListRecords(_ context.Context, q ledger.ListQuery) (ledger.ListPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var p ledger.ListPage
	for _, r := range m.recs {
		if r.ID <= q.After || !m.in(r, q.Merchant, []ledger.Kind{q.Kind}, q.Span) {
			continue
		}
		if len(p.Records) == q.Limit {
			p.More = true
			break
		}
		p.Records = append(p.Records, r)
	}
	return p, nil
}

func (m *memListings) EachRecord(ctx context.Context, merchant string, kinds []ledger.Kind, sp ledger.Span, emit func(ledger.Record) error) error {
	m.mu.Lock()
	m.calls++
	failing := m.fail != nil && m.calls == m.failAt
	recs := slices.Clone(m.recs)
	m.mu.Unlock()
	n := 0
	for _, r := range recs {
		if !m.in(r, merchant, kinds, sp) {
			continue
		}
		if failing && n == m.failAfter {
			return m.fail
		}
		if err := emit(r); err != nil {
			return err
		}
		n++
	}
	if failing {
		return m.fail
	}
	return nil
}

func (m *memListings) add(merchant string, kind ledger.Kind, order string, amount, fee, net int64, at time.Time) ledger.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := ledger.Record{Recorded: ledger.Recorded{ID: int64(len(m.recs) + 1), Kind: kind, Merchant: merchant, OrderID: order,
		Payer: "42", Currency: "CNY", Amount: amount, Fee: fee, CreatedAt: at}, Net: net}
	r.Hash[0] = byte(r.ID)
	m.recs = append(m.recs, r)
	return r
}

// platformKey is a scheme A platform key for the tests' real response signer.
type platformKey struct {
	id  string
	key crypto.Signer
}

func (p platformKey) SigningKey(context.Context) (string, crypto.Signer, error) {
	return p.id, p.key, nil
}

var (
	testRSAOnce sync.Once
	testRSA     *rsa.PrivateKey
)

func rsaKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	testRSAOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testRSA = k
	})
	return testRSA
}

// listingServer is the merchant API over l, with real platform signers (RSA
// for scheme A, Ed25519 for scheme B) and a verifier that takes the merchant
// from the X-Test-Merchant header (and a scheme B request's Signature field
// as its verified signature).
type listingServer struct {
	h      http.Handler
	rsa    *rsa.PrivateKey
	ed     ed25519.PrivateKey
	cursor []byte
}

func newListingServer(tb testing.TB, l ledger.Listings, schemeAKey crypto.Signer) *listingServer {
	tb.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s := &listingServer{rsa: rsaKey(tb), ed: ed, cursor: make([]byte, 32)}
	rand.Read(s.cursor)
	if schemeAKey == nil {
		schemeAKey = s.rsa
	}
	auth := authFunc(func(_ context.Context, r signing.Request) (signing.Verified, error) {
		if r.Authorization == "" {
			return signing.Verified{}, &signing.Failure{Err: signing.ErrBadSignature}
		}
		if strings.HasPrefix(r.Authorization, "sig1=") { // scheme B, through authFunc.VerifyMessage
			return signing.Verified{Scheme: signing.SchemeHTTPSig, Merchant: r.Merchant, KeyID: "KB", Label: "sig1", Signature: r.Authorization}, nil
		}
		return signing.Verified{Scheme: signing.SchemeWeChatPay, Merchant: r.Merchant, KeyID: "K1"}, nil
	})
	s.h = NewHandler(Deps{
		Auth:          auth,
		Identify:      func(r *http.Request) (string, error) { return r.Header.Get("X-Test-Merchant"), nil },
		Signer:        &signing.ResponseSigner{Keys: platformKey{"PA", schemeAKey}},
		MessageSigner: &signing.MessageResponseSigner{Keys: platformKey{"PB", ed}},
		Listings:      l,
		CursorKey:     s.cursor,
		Log:           zerolog.New(io.Discard),
	})
	return s
}

// get sends a scheme A GET as merchant and checks the response's platform
// signature over its exact body.
func (s *listingServer) get(tb testing.TB, merchant, target string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("X-Test-Merchant", merchant)
	req.Header.Set("Authorization", `WECHATPAY2-SHA256-RSA2048 mchid="`+merchant+`"`)
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	sig := signing.ResponseSignature{Timestamp: rec.Header().Get("Wechatpay-Timestamp"), Nonce: rec.Header().Get("Wechatpay-Nonce"),
		Serial: rec.Header().Get("Wechatpay-Serial"), Signature: rec.Header().Get("Wechatpay-Signature")}
	if err := signing.VerifyResponse(s.rsa.Public(), sig, rec.Body.Bytes()); err != nil && rec.Code != http.StatusServiceUnavailable {
		tb.Fatalf("GET %s: %d response does not verify: %v", target, rec.Code, err)
	}
	return rec
}

type pageJSON struct {
	Data []struct {
		OrderID  string `json:"order_id"`
		RefundID string `json:"refund_id"`
		EntryID  int64  `json:"entry_id"`
		Kind     string `json:"kind"`
		Amount   string `json:"amount"`
	} `json:"data"`
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor"`
}

func decodePage(tb testing.TB, rec *httptest.ResponseRecorder) pageJSON {
	tb.Helper()
	if rec.Code != http.StatusOK {
		tb.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var p pageJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		tb.Fatal(err)
	}
	if p.HasMore != (p.NextCursor != "") {
		tb.Fatalf("has_more %v with next_cursor %q", p.HasMore, p.NextCursor)
	}
	return p
}

// listAllPages follows next_cursor from target and returns the entry ids.
func (s *listingServer) listAllPages(tb testing.TB, merchant, target string, limit int) []int64 {
	tb.Helper()
	path, kind := "/v1/payments", "payment"
	if strings.HasPrefix(target, "/v1/refunds") {
		path, kind = "/v1/refunds", "refund"
	}
	var ids []int64
	p := decodePage(tb, s.get(tb, merchant, target))
	for pages := 1; ; pages++ {
		if p.HasMore && len(p.Data) != limit {
			tb.Fatalf("page %d: %d items with more to come, want %d", pages, len(p.Data), limit)
		}
		for _, d := range p.Data {
			if d.Kind != kind || (kind == "refund") != (d.RefundID != "") {
				tb.Fatalf("a %s (refund id %q) in the %s listing", d.Kind, d.RefundID, path)
			}
			ids = append(ids, d.EntryID)
		}
		if !p.HasMore {
			return ids
		}
		p = decodePage(tb, s.get(tb, merchant, fmt.Sprintf("%s?limit=%d&cursor=%s", path, limit, url.QueryEscape(p.NextCursor))))
	}
}

var day0 = time.Date(2026, 12, 3, 15, 30, 0, 0, time.UTC) // 23:30 in +08:00

// listingFixture: M1 and M2 payments and M1 deposits, a minute apart, from
// 23:30 on 2026-12-03 to 00:09 on 2026-12-04 in +08:00.
func listingFixture() *memListings {
	m := &memListings{}
	for i := range 40 {
		at := day0.Add(time.Duration(i) * time.Minute)
		switch i % 4 {
		case 0, 1:
			m.add("M1", ledger.KindPayment, fmt.Sprintf("ORD1%012d", i), int64(1000+i), int64(i), int64(1000), at)
		case 2:
			m.add("M2", ledger.KindPayment, fmt.Sprintf("ORD2%012d", i), 500, 5, 495, at)
		case 3:
			m.add("M1", ledger.KindDeposit, fmt.Sprintf("DEP1%012d", i), 700, 0, 0, at)
		}
		if i%5 == 1 { // a refund of the M1 payment just made
			r := m.add("M1", ledger.KindRefund, fmt.Sprintf("ORD1%012d", i), 300, 3, -297, at.Add(time.Second))
			m.recs[len(m.recs)-1].RefundID, r.RefundID = fmt.Sprintf("RF1%012d", i), fmt.Sprintf("RF1%012d", i)
		}
	}
	return m
}

func wantIDs(m *memListings, merchant string, kind ledger.Kind, from, to time.Time) []int64 {
	var ids []int64
	for _, r := range m.recs {
		if r.Merchant == merchant && r.Kind == kind && (from.IsZero() || !r.CreatedAt.Before(from)) && (to.IsZero() || r.CreatedAt.Before(to)) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

func TestListPayments(t *testing.T) {
	m := listingFixture()
	s := newListingServer(t, m, nil)
	from, to := day0.Add(3*time.Minute), day0.Add(15*time.Minute)
	q := "from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.In(time.FixedZone("", 8*3600)).Format(time.RFC3339))
	for _, c := range []struct {
		merchant, target string
		limit            int
		from, to         time.Time
	}{
		{"M1", "/v1/payments?limit=3", 3, time.Time{}, time.Time{}},
		{"M1", "/v1/payments?limit=1&status=succeeded", 1, time.Time{}, time.Time{}},
		{"M1", "/v1/payments?limit=2&" + q, 2, from, to},
		{"M2", "/v1/payments?limit=2", 2, time.Time{}, time.Time{}},
		{"M3", "/v1/payments", 100, time.Time{}, time.Time{}},
		{"M1", "/v1/refunds?limit=2", 2, time.Time{}, time.Time{}},
		{"M1", "/v1/refunds?limit=1&" + q, 1, from, to},
		{"M2", "/v1/refunds", 100, time.Time{}, time.Time{}},
	} {
		t.Run(c.merchant+" "+c.target, func(t *testing.T) {
			got := s.listAllPages(t, c.merchant, c.target, c.limit)
			kind := ledger.KindPayment
			if strings.HasPrefix(c.target, "/v1/refunds") {
				kind = ledger.KindRefund
			}
			want := wantIDs(m, c.merchant, kind, c.from, c.to)
			if !slices.Equal(got, want) {
				t.Fatalf("listed %v, want %v", got, want)
			}
		})
	}

	// A listing is fixed by its first page: what is recorded later is not in it.
	p := decodePage(t, s.get(t, "M1", "/v1/payments?limit=2"))
	later := m.add("M1", ledger.KindPayment, "ORD1999999999999", 10, 0, 10, day0.Add(time.Hour))
	var rest []int64
	for p.HasMore {
		p = decodePage(t, s.get(t, "M1", "/v1/payments?limit=5&cursor="+url.QueryEscape(p.NextCursor)))
		for _, d := range p.Data {
			rest = append(rest, d.EntryID)
		}
	}
	if slices.Contains(rest, later.ID) {
		t.Error("a payment recorded after the first page is in the listing")
	}
	if ids := s.listAllPages(t, "M1", "/v1/payments?limit=7", 7); !slices.Contains(ids, later.ID) {
		t.Error("a new listing does not show the later payment")
	}
}

func TestListPaymentsRefusals(t *testing.T) {
	m := listingFixture()
	s := newListingServer(t, m, nil)
	first := decodePage(t, s.get(t, "M1", "/v1/payments?limit=2"))
	cur := first.NextCursor
	payload, mac, _ := strings.Cut(cur, ".")
	flip := func(s string) string {
		b := []byte(s)
		b[len(b)/2] ^= 1
		return string(b)
	}
	// The same position sealed as another listing kind, or for M2.
	var c listCursor
	if err := (cursorSealer{key: s.cursor}).open(cursorPayments+"\x00M1", cur, &c); err != nil {
		t.Fatal(err)
	}
	forM2 := c
	forM2.Merchant = "M2"
	other := newListingServer(t, m, nil) // another server: another cursor key
	otherCur := decodePage(t, other.get(t, "M1", "/v1/payments?limit=2")).NextCursor
	for _, c := range []struct {
		name, merchant, target, reason, detail string
	}{
		{"payload altered", "M1", "/v1/payments?cursor=" + url.QueryEscape(flip(payload)+"."+mac), "cursor_invalid", ""},
		{"mac altered", "M1", "/v1/payments?cursor=" + url.QueryEscape(payload+"."+flip(mac)), "cursor_invalid", ""},
		{"not a cursor", "M1", "/v1/payments?cursor=abc", "cursor_invalid", ""},
		{"another merchant's cursor", "M2", "/v1/payments?cursor=" + url.QueryEscape(cur), "cursor_invalid", ""},
		{"sealed for M2 under M1's seal", "M2", "/v1/payments?cursor=" + url.QueryEscape((cursorSealer{key: s.cursor}).seal(cursorPayments+"\x00M1", forM2)), "cursor_invalid", ""},
		{"another listing's cursor", "M1", "/v1/payments?cursor=" + url.QueryEscape((cursorSealer{key: s.cursor}).seal(cursorStatement, c)), "cursor_invalid", ""},
		{"another server's cursor", "M1", "/v1/payments?cursor=" + url.QueryEscape(otherCur), "cursor_invalid", ""},
		{"a payments cursor for refunds", "M1", "/v1/refunds?cursor=" + url.QueryEscape(cur), "cursor_invalid", ""},
		{"cursor with a filter", "M1", "/v1/payments?status=succeeded&cursor=" + url.QueryEscape(cur), "malformed_request", "status"},
		{"unknown parameter", "M1", "/v1/payments?form=2026-01-01T00:00:00Z", "malformed_request", "unknown query parameter form"},
		{"limit zero", "M1", "/v1/payments?limit=0", "malformed_request", "limit"},
		{"limit too large", "M1", "/v1/payments?limit=1001", "malformed_request", "limit"},
		{"limit twice", "M1", "/v1/payments?limit=1&limit=2", "malformed_request", "more than once"},
		{"from not RFC 3339", "M1", "/v1/payments?from=2026-12-03", "malformed_request", "from"},
		{"from after to", "M1", "/v1/payments?from=2026-12-04T00:00:00Z&to=2026-12-03T00:00:00Z", "malformed_request", "before to"},
		{"unknown status", "M1", "/v1/payments?status=refunded", "malformed_request", "status"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := s.get(t, c.merchant, c.target)
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if rec.Code != http.StatusBadRequest || p.Reason != c.reason || !strings.Contains(p.Detail, c.detail) {
				t.Fatalf("%d %s/%s %q, want 400 %s mentioning %q", rec.Code, p.Code, p.Reason, p.Detail, c.reason, c.detail)
			}
		})
	}
	// The untouched cursor still works, for its merchant.
	if p := decodePage(t, s.get(t, "M1", "/v1/payments?limit=2&cursor="+url.QueryEscape(cur))); len(p.Data) != 2 || p.Data[0].EntryID <= first.Data[1].EntryID {
		t.Errorf("the next page after the refusals: %+v", p)
	}
}
