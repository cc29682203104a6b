package api

import (
	"bytes"
	"crypto/ed25519"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

// parseStatement reads a statement back: its rows and its summary, checking
// the two headers and the blank line between the sections.
func parseStatement(tb testing.TB, body []byte) (rows, summary [][]string) {
	tb.Helper()
	head, tail, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		tb.Fatalf("no blank line between rows and summary:\n%s", body)
	}
	read := func(b []byte, header []string) [][]string {
		r := csv.NewReader(bytes.NewReader(b))
		recs, err := r.ReadAll()
		if err != nil {
			tb.Fatalf("CSV: %v\n%s", err, b)
		}
		if len(recs) == 0 || !slices.Equal(recs[0], header) {
			tb.Fatalf("header %v, want %v", recs, header)
		}
		return recs[1:]
	}
	return read(append(head, '\n'), StatementColumns), read(tail, StatementSummaryColumns)
}

type kindTotal struct{ count, amount, fee, net int64 }

func TestStatement(t *testing.T) {
	m := listingFixture()
	cst := time.FixedZone("", 8*3600)
	for _, c := range []struct {
		name, target, date, zone string
		loc                      *time.Location
	}{
		{"default zone", "/v1/statements/2026-12-03", "2026-12-03", "+08:00", cst},
		{"next day", "/v1/statements/2026-12-04?tz=%2B08:00", "2026-12-04", "+08:00", cst},
		{"UTC", "/v1/statements/2026-12-03?tz=Z", "2026-12-03", "Z", time.UTC},
		{"west of UTC", "/v1/statements/2026-12-03?tz=-05:30", "2026-12-03", "-05:30", time.FixedZone("", -(5*3600 + 1800))},
		{"a day without entries", "/v1/statements/2026-11-01", "2026-11-01", "+08:00", cst},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newListingServer(t, m, nil)
			rec := s.get(t, "M1", c.target) // verifies the signature over the whole body
			if rec.Code != http.StatusOK {
				t.Fatalf("%d: %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/csv; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
				t.Errorf("Content-Length %s for %d bytes", cl, rec.Body.Len())
			}
			rows, summary := parseStatement(t, rec.Body.Bytes())

			start, _ := time.ParseInLocation(time.DateOnly, c.date, c.loc)
			end := start.AddDate(0, 0, 1)
			var want []ledger.Record
			totals := map[string]*kindTotal{"total": {}}
			for _, r := range m.recs {
				if r.Merchant != "M1" || r.CreatedAt.Before(start) || !r.CreatedAt.Before(end) {
					continue
				}
				want = append(want, r)
				for _, k := range []string{string(r.Kind), "total"} {
					if totals[k] == nil {
						totals[k] = &kindTotal{}
					}
					totals[k].count++
					totals[k].amount += r.Amount
					totals[k].fee += r.Fee
					totals[k].net += r.Net
				}
			}
			if len(rows) != len(want) {
				t.Fatalf("%d rows, want %d:\n%s", len(rows), len(want), rec.Body)
			}
			for i, r := range want {
				at, err := time.Parse(time.RFC3339Nano, rows[i][8])
				if err != nil || !at.Equal(r.CreatedAt) || !strings.HasSuffix(rows[i][8], c.zone) {
					t.Errorf("row %d time %q, want %v in %s", i, rows[i][8], r.CreatedAt, c.zone)
				}
				wantRow := []string{r.OrderID, r.RefundID, strconv.FormatInt(r.ID, 10), string(r.Kind),
					policy.FormatAmount(r.Amount, "CNY"), policy.FormatAmount(r.Fee, "CNY"), policy.FormatAmount(r.Net, "CNY"), "CNY", rows[i][8]}
				if !slices.Equal(rows[i], wantRow) {
					t.Errorf("row %d = %v, want %v", i, rows[i], wantRow)
				}
			}
			var wantSummary [][]string
			for _, k := range []string{"payment", "refund", "deposit", "total"} {
				if tt := totals[k]; tt != nil && tt.count > 0 {
					wantSummary = append(wantSummary, []string{c.date, c.zone, "CNY", k, strconv.FormatInt(tt.count, 10),
						policy.FormatAmount(tt.amount, "CNY"), policy.FormatAmount(tt.fee, "CNY"), policy.FormatAmount(tt.net, "CNY")})
				}
			}
			if len(want) == 0 {
				wantSummary = [][]string{{c.date, c.zone, "", "total", "0", "", "", ""}}
			}
			if !slices.EqualFunc(summary, wantSummary, slices.Equal) {
				t.Errorf("summary %v, want %v", summary, wantSummary)
			}
			if c.name != "a day without entries" && (totals["payment"] == nil || totals["deposit"] == nil || totals["refund"] == nil) {
				t.Errorf("the day should have payments, refunds and deposits: %v", totals)
			}
		})
	}
}

// A scheme B request gets its statement signed with RFC 9421 over the
// body's digest, bound to the request's signature.
func TestStatementSchemeB(t *testing.T) {
	m := listingFixture()
	s := newListingServer(t, m, nil)
	req := httptest.NewRequest(http.MethodGet, "/v1/statements/2026-12-03", nil)
	req.Header.Set("X-Test-Merchant", "M1")
	req.Header.Set("Signature-Input", `sig1=("@method" "@target-uri");created=1;keyid="KB";nonce="n"`)
	req.Header.Set("Signature", "sig1=:AAAA:")
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Wechatpay-Signature") != "" {
		t.Fatalf("%d (Wechatpay-Signature %q): %s", rec.Code, rec.Header().Get("Wechatpay-Signature"), rec.Body)
	}
	lookup := func(id string) (signing.RegisteredKey, error) {
		if id != "PB" {
			return signing.RegisteredKey{}, signing.ErrUnknownKey
		}
		return signing.RegisteredKey{Public: s.ed.Public().(ed25519.PublicKey), Algorithm: signing.Ed25519}, nil
	}
	resp := signing.MessageResponse{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	sreq := signing.MessageRequest{Header: map[string][]string{"Signature": {"sig1=:AAAA:"}}}
	if _, err := signing.VerifyMessageResponse(resp, sreq, lookup); err != nil {
		t.Fatalf("scheme B statement does not verify: %v", err)
	}
	resp.Body = append(bytes.Clone(resp.Body[:len(resp.Body)-2]), '9', '\n')
	if _, err := signing.VerifyMessageResponse(resp, sreq, lookup); !errors.Is(err, signing.ErrBadDigest) {
		t.Errorf("altered statement: %v, want ErrBadDigest", err)
	}
}

func TestStatementRefusals(t *testing.T) {
	m := listingFixture()
	s := newListingServer(t, m, nil)
	for _, c := range []struct{ target, detail string }{
		{"/v1/statements/2026-02-30", "date"},
		{"/v1/statements/2026-2-3", "date"},
		{"/v1/statements/yesterday", "date"},
		{"/v1/statements/2026-12-03?tz=%2B8", "tz"},
		{"/v1/statements/2026-12-03?tz=%2B15:00", "tz"},
		{"/v1/statements/2026-12-03?tz=%2B08:-1", "tz"},
		{"/v1/statements/2026-12-03?tz=Asia/Shanghai", "tz"},
		{"/v1/statements/2026-12-03?tz=Z&tz=Z", "more than once"},
		{"/v1/statements/2026-12-03?zone=Z", "unknown query parameter"},
	} {
		t.Run(c.target, func(t *testing.T) {
			rec := s.get(t, "M1", c.target)
			if code, detail := problemCode(t, rec); rec.Code != http.StatusBadRequest || code != "malformed_request" || !strings.Contains(detail, c.detail) {
				t.Fatalf("%d %s %q, want 400 malformed_request about %s", rec.Code, code, detail, c.detail)
			}
		})
	}

	t.Run("ledger down before anything is sent", func(t *testing.T) {
		m := listingFixture()
		m.fail, m.failAt, m.failAfter = ledger.ErrUnavailable, 1, 3
		rec := newListingServer(t, m, nil).get(t, "M1", "/v1/statements/2026-12-03") // signed: checked by get
		if code, _ := problemCode(t, rec); rec.Code != http.StatusServiceUnavailable || code != "unavailable" {
			t.Fatalf("%d %s, want 503 unavailable", rec.Code, code)
		}
		if rec.Header().Get("Content-Disposition") != "" || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("the refusal carries the statement's headers: %v", rec.Header())
		}
	})

	t.Run("ledger down while sending", func(t *testing.T) {
		m := listingFixture()
		m.fail, m.failAt, m.failAfter = ledger.ErrUnavailable, 2, 3
		s := newListingServer(t, m, nil)
		req := httptest.NewRequest(http.MethodGet, "/v1/statements/2026-12-03", nil)
		req.Header.Set("X-Test-Merchant", "M1")
		req.Header.Set("Authorization", "x")
		rec := httptest.NewRecorder()
		func() {
			defer func() {
				if p := recover(); p != http.ErrAbortHandler {
					t.Errorf("recovered %v, want http.ErrAbortHandler (the connection cut)", p)
				}
			}()
			s.h.ServeHTTP(rec, req)
		}()
		if cl, _ := strconv.Atoi(rec.Header().Get("Content-Length")); rec.Code != http.StatusOK || cl <= rec.Body.Len() {
			t.Errorf("status %d, Content-Length %d for %d bytes sent: the client must see the body cut short", rec.Code, cl, rec.Body.Len())
		}
	})

	t.Run("scheme A platform key that cannot sign a stream", func(t *testing.T) {
		_, ed, _ := ed25519.GenerateKey(nil)
		s := newListingServer(t, listingFixture(), ed)
		req := httptest.NewRequest(http.MethodGet, "/v1/statements/2026-12-03", nil)
		req.Header.Set("X-Test-Merchant", "M1")
		req.Header.Set("Authorization", "x")
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		sig := signing.ResponseSignature{Timestamp: rec.Header().Get("Wechatpay-Timestamp"), Nonce: rec.Header().Get("Wechatpay-Nonce"),
			Serial: rec.Header().Get("Wechatpay-Serial"), Signature: rec.Header().Get("Wechatpay-Signature")}
		if err := signing.VerifyResponse(ed.Public(), sig, rec.Body.Bytes()); err != nil {
			t.Errorf("the refusal is not signed: %v", err)
		}
		var p Problem
		if err := jsonUnmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusServiceUnavailable || p.Reason != "signer_unavailable" {
			t.Fatalf("%d %+v, want 503 signer_unavailable", rec.Code, p)
		}
	})
}

// FuzzParseOffset: whatever the input, parseOffset accepts exactly Z and
// ±HH:MM within ±14:00, and an accepted offset names the zone it reads.
func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"Z", "+08:00", "-05:30", "+14:00", "+14:01", "+8", "+08:-1", "-00:00", "+٠٨:٠٠", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc, ok := parseOffset(s)
		if !ok {
			return
		}
		_, off := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Zone()
		want := "Z"
		if s != "Z" {
			sign, a := "+", off
			if off < 0 || s[0] == '-' {
				sign, a = "-", -off
			}
			want = fmt.Sprintf("%s%02d:%02d", sign, a/3600, a%3600/60)
		}
		if want != s || off > 14*3600 || off < -14*3600 {
			t.Fatalf("parseOffset(%q) accepted, offset %d s reads as %q", s, off, want)
		}
	})
}
