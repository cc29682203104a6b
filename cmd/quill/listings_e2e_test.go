package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/quillclient"
)

// listingClient is quillclient's Client for merchant over mTLS, scheme A or
// B, verifying every response with the platform keys the server publishes.
func (h *harness) listingClient(t *testing.T, merchant string, schemeB bool) *quillclient.Client {
	t.Helper()
	mc, err := devenv.LoadMerchant(h.dir, merchant)
	if err != nil {
		t.Fatal(err)
	}
	opts := []quillclient.Option{quillclient.WithBase(h.httpClient(&mc.TLS).Transport), quillclient.WithKeyID(mc.KeyID),
		quillclient.WithPrivateKey(mc.SigningKey), quillclient.WithClock(h.clock.Now)}
	if schemeB {
		opts = append(opts, quillclient.WithSchemeB())
	} else {
		opts = append(opts, quillclient.WithMerchant(merchant))
	}
	tr, err := quillclient.NewTransport(opts...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := quillclient.NewClient(h.base, tr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMerchantListingsEndToEnd: over mTLS, with every response's signature
// checked by quillclient, in both schemes, a merchant lists exactly its own
// payments and refunds page by page, cannot use another merchant's cursor,
// and downloads a statement whose rows and totals match the ledger as the
// test sums it from SQL, and whose net total is the merchant's balance.
func TestMerchantListingsEndToEnd(t *testing.T) {
	// As production runs: the service role, which may read but not change
	// the journal, serves the listings and statements.
	h := startServer(t, func(h *harness, c *config) { leastPrivilege(t, c, h.dsn) })
	ctx := context.Background()
	h.deposit("42", "1000.00")
	amounts := []string{"12.34", "0.01", "99.99", "5.00", "1.50", "250.00", "7.77"}
	refunds, refundOf := 0, map[string]string{}
	for i, a := range amounts {
		order := newOrderID()
		if r := h.do(demoMerchant, "POST", "/v1/payments", paymentBody(order, a, h.token("42"))); r.Status != http.StatusOK {
			t.Fatalf("payment: %d %s", r.Status, r.Body)
		}
		if i%2 == 0 { // refund part of it (all of the one-cent payment), fee share returned
			part := map[bool]string{true: a, false: "0.01"}[a == "0.01"]
			refundOf[order] = newOrderID() // refund ids follow the order id pattern
			body := fmt.Sprintf(`{"refund_id":%q,"order_id":%q,"amount":%q,"currency":"CNY","reason":"e2e"}`, refundOf[order], order, part)
			if r := h.do(demoMerchant, "POST", "/v1/refunds", []byte(body)); r.Status != http.StatusOK {
				t.Fatalf("refund: %d %s", r.Status, r.Body)
			}
			refunds++
		}
		if i%3 == 0 {
			if r := h.do(otherMerch, "POST", "/v1/payments", paymentBody(newOrderID(), "3.00", h.token("42"))); r.Status != http.StatusOK {
				t.Fatalf("payment: %d %s", r.Status, r.Body)
			}
		}
	}
	sqlOrders := func(merchant, kind string) []string {
		rows, err := h.db.Query(ctx, `SELECT order_id FROM entries WHERE merchant_id = $1 AND kind = $2 ORDER BY id`, merchant, kind)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				t.Fatal(err)
			}
			out = append(out, o)
		}
		return out
	}

	for _, schemeB := range []bool{false, true} {
		t.Run(fmt.Sprintf("schemeB=%v", schemeB), func(t *testing.T) {
			m100 := h.listingClient(t, demoMerchant, schemeB)
			var got []string
			for p, err := range m100.Payments(ctx, quillclient.ListQuery{Limit: 3}) {
				if err != nil {
					t.Fatal(err)
				}
				if p.MerchantID != demoMerchant || p.Kind != "payment" || p.Status != "succeeded" {
					t.Fatalf("listed %+v", p)
				}
				got = append(got, p.OrderID)
			}
			if want := sqlOrders(demoMerchant, "payment"); !slices.Equal(got, want) || len(want) != len(amounts) {
				t.Fatalf("listed %v, the ledger has %v", got, want)
			}
			got = nil
			for r, err := range m100.Refunds(ctx, quillclient.ListQuery{Limit: 2}) {
				if err != nil {
					t.Fatal(err)
				}
				if r.MerchantID != demoMerchant || r.Kind != "refund" || r.RefundID != refundOf[r.OrderID] {
					t.Fatalf("listed %+v", r)
				}
				got = append(got, r.OrderID)
			}
			if want := sqlOrders(demoMerchant, "refund"); !slices.Equal(got, want) || len(want) != refunds {
				t.Fatalf("listed refunds of %v, the ledger has %v", got, want)
			}
			if other, err := h.listingClient(t, otherMerch, schemeB).ListRefunds(ctx, quillclient.ListQuery{}); err != nil || len(other.Data) != 0 {
				t.Fatalf("M200 lists refunds %+v, %v: it made none", other, err)
			}

			// M200 replaying M100's cursor gets a refusal, not M100's payments.
			page, err := m100.ListPayments(ctx, quillclient.ListQuery{Limit: 2})
			if err != nil || !page.HasMore {
				t.Fatalf("first page: %+v, %v", page, err)
			}
			_, err = h.listingClient(t, otherMerch, schemeB).ListPayments(ctx, quillclient.ListQuery{Cursor: page.NextCursor})
			var apiErr *quillclient.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Reason != "cursor_invalid" {
				t.Fatalf("another merchant's cursor: %v, want 400 cursor_invalid", err)
			}

			// The statement of today (+08:00, the default) holds every M100
			// entry: the server's clock has not moved.
			day := h.clock.Now().In(time.FixedZone("", 8*3600)).Format(time.DateOnly)
			var buf bytes.Buffer
			n, err := m100.Statement(ctx, day, "", &buf)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(buf.Len()) || n == 0 {
				t.Fatalf("Statement wrote %d, returned %d", buf.Len(), n)
			}
			checkStatementAgainstLedger(t, h, demoMerchant, day, buf.Bytes())

			// Another day, and a refusal, both verified.
			buf.Reset()
			if _, err := m100.Statement(ctx, "2001-01-01", "Z", &buf); err != nil {
				t.Fatal(err)
			}
			if _, err := m100.Statement(ctx, "2001-02-30", "", &bytes.Buffer{}); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
				t.Fatalf("bad date: %v, want a 400 APIError", err)
			}
		})
	}
	day := h.clock.Now().In(time.FixedZone("", 8*3600)).Format(time.DateOnly)
	var buf bytes.Buffer
	if _, err := h.listingClient(t, topUp, false).Statement(ctx, day, "+08:00", &buf); err != nil {
		t.Fatal(err)
	}
	checkStatementAgainstLedger(t, h, topUp, day, buf.Bytes())
}

// checkStatementAgainstLedger parses a statement and compares each row, and
// the totals, with the entries table and the merchant's balance from its
// postings (all of the merchant's entries are of that day).
func checkStatementAgainstLedger(t *testing.T, h *harness, merchant, day string, body []byte) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, body)
	}
	split := slices.IndexFunc(recs, func(rec []string) bool { return rec[0] == "date" })
	if split < 1 || !slices.Equal(recs[0], []string{"order_id", "refund_id", "entry_id", "kind", "amount", "fee", "net", "currency", "time"}) {
		t.Fatalf("statement layout:\n%s", body)
	}
	rows, summary := recs[1:split], recs[split+1:]
	q, err := h.db.Query(context.Background(), `SELECT id, order_id, coalesce(refund_id, ''), kind, amount, fee FROM entries WHERE merchant_id = $1 ORDER BY id`, merchant)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	type tot struct{ count, amount, fee int64 }
	sums := map[string]*tot{"total": {}}
	i := 0
	for q.Next() {
		var (
			id                  int64
			order, refund, kind string
			amount, feeMinor    int64
		)
		if err := q.Scan(&id, &order, &refund, &kind, &amount, &feeMinor); err != nil {
			t.Fatal(err)
		}
		if i >= len(rows) {
			t.Fatalf("entry %d is not in the statement", id)
		}
		if row := rows[i]; row[0] != order || row[1] != refund || row[2] != strconv.FormatInt(id, 10) || row[3] != kind ||
			row[4] != policy.FormatAmount(amount, "CNY") || row[5] != policy.FormatAmount(feeMinor, "CNY") {
			t.Errorf("row %v, want entry %d %s %s %d %d", row, id, order, kind, amount, feeMinor)
		}
		for _, k := range []string{kind, "total"} {
			if sums[k] == nil {
				sums[k] = &tot{}
			}
			sums[k].count++
			sums[k].amount += amount
			sums[k].fee += feeMinor
		}
		i++
	}
	if i != len(rows) || i == 0 {
		t.Fatalf("%d rows for %d entries", len(rows), i)
	}
	net := h.balance("merchant:" + merchant) // the merchant's account moved only by these entries
	for _, s := range summary {
		if s[0] != day || s[1] != "+08:00" || s[2] != "CNY" {
			t.Errorf("summary row %v", s)
			continue
		}
		want := sums[s[3]]
		if want == nil {
			t.Errorf("summary of %s, which has no entries", s[3])
			continue
		}
		if s[4] != strconv.FormatInt(want.count, 10) || s[5] != policy.FormatAmount(want.amount, "CNY") || s[6] != policy.FormatAmount(want.fee, "CNY") {
			t.Errorf("summary %v, the ledger sums %d entries, %d, fee %d", s, want.count, want.amount, want.fee)
		}
		if s[3] == "total" && s[7] != policy.FormatAmount(net, "CNY") {
			t.Errorf("net total %s, the merchant's balance is %d", s[7], net)
		}
	}
	if len(summary) != len(sums) {
		t.Errorf("summary %v, want a row for each of %d kinds and the total", summary, len(sums)-1)
	}
}
