package attack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestAmountsOnlyStrictGrammar is issue 11 item 12: a correctly signed
// payment whose amount is anything but ^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$ in
// ASCII, within 0.01–1,000,000.00, is a signed 422 naming the amount field;
// nothing is recorded. Two strict amounts, the smallest and an ordinary one,
// pass and move the wallet by exactly their value.
func TestAmountsOnlyStrictGrammar(t *testing.T) {
	s := shared(t)
	user, tok := s.wallet(t, "100.00")
	for _, amount := range []string{
		`"-1.00"`, `"-0.01"`, `"0"`, `"0.00"`, `"0.001"`, `"1.001"`, `"1e309"`, `"1E2"`, `"1e2"`,
		`"0x10"`, `"0X1A"`, `"Infinity"`, `"-Infinity"`, `"NaN"`, `"1_000"`, `"1,000.00"`, `"1 000"`,
		`"+1"`, `"+1.00"`, `" 1.00"`, `"1.00 "`, `"1."`, `".50"`, `"01.00"`, `"00"`, `""`,
		`"１２.３４"`, `"١٢.٣٤"`, `"۱۲.۳۴"`, `"१२.३४"`, `"12٫34"`, `"1.2e1"`,
		`"9223372036854775807"`, `"9223372036854775808"`, `"92233720368547758.08"`,
		`"184467440737095516.16"`, `"1000000.01"`, `"99999999999999999999999999999999"`,
		`12.34`, `1234`, `1e309`, `null`, `true`, `["1.00"]`, `{"value":"1.00"}`,
	} {
		t.Run(amount, func(t *testing.T) {
			before := s.state(t)
			body := fmt.Sprintf(`{"order_id":%q,"amount":%s,"currency":"CNY","payer_token":%q}`, newOrderID(), amount, tok)
			r := s.send(t, honest, "POST", "/v1/payments", []byte(body))
			refused(t, r, http.StatusUnprocessableEntity, "validation_failed", "")
			if _, ok := fieldErrors(t, r)["amount"]; !ok {
				t.Fatalf("no error on amount: %s", r.Body)
			}
			s.unchanged(t, before)
		})
	}
	for _, c := range []struct {
		amount string
		minor  int64
	}{{"0.01", 1}, {"12.3", 1230}, {"12.34", 1234}} {
		before := s.walletBalance(t, user)
		if r := s.send(t, honest, "POST", "/v1/payments", paymentBody(newOrderID(), c.amount, tok)); r.Status != 200 {
			t.Fatalf("%s: %d %s", c.amount, r.Status, r.Body)
		}
		if got := before - s.walletBalance(t, user); got != c.minor {
			t.Fatalf("%s moved %d minor units, want %d", c.amount, got, c.minor)
		}
	}
}

// TestOrderIDsAllowListed is issue 11 item 13: order ids that are SQL,
// carry NUL, CR or LF, are over 32 characters, or look like an allowed id in
// other scripts are refused by the allow-list (a signed 422 naming
// order_id; a signed 404 when they come in the path) and change nothing;
// the same strings where free text is allowed (the description) are stored
// verbatim and the tables stay whole, so the SQL is parameterized.
func TestOrderIDsAllowListed(t *testing.T) {
	s := shared(t)
	user, tok := s.wallet(t, "10.00")
	base := "ORD" + strconv.FormatInt(int64(1e12)+int64(orderSeq.Add(1)), 10) // 16 characters, valid
	bad := []string{
		base + "' OR '1'='1",
		base + "; DROP TABLE entries; --",
		"' UNION SELECT hash FROM entries --",
		base + "\x00",
		"\x00" + base,
		base + "\r\n",
		base + "\r\nX-Injected: 1",
		base + "\n",
		"ORD" + strings.Repeat("1", 30), // 33 characters
		"ORD" + strings.Repeat("1", 200),
		"ОRD" + base[3:],            // Cyrillic О
		"ORD" + "１２３４５６７８９０１２",      // full-width digits
		"ORD" + "١٢٣٤٥٦٧٨٩٠١٢",      // Arabic-Indic digits
		"ORD" + base[3:] + "\u200b", // a zero-width space
		"ord" + base[3:],
		" " + base,
		base + "%00",
		"",
	}
	for _, id := range bad {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			before := s.state(t)
			body := fmt.Sprintf(`{"order_id":%s,"amount":"1.00","currency":"CNY","payer_token":%q}`, jsonString(id), tok)
			r := s.send(t, honest, "POST", "/v1/payments", []byte(body))
			refused(t, r, http.StatusUnprocessableEntity, "validation_failed", "")
			if _, ok := fieldErrors(t, r)["order_id"]; !ok {
				t.Fatalf("no error on order_id: %s", r.Body)
			}
			s.unchanged(t, before)
			// The same id as a path parameter: not found, nothing moves.
			g := s.send(t, honest, "GET", "/v1/payments/"+url.PathEscape(id), nil)
			if id == "" {
				refused(t, g, http.StatusNotFound, "not_found", "")
			} else if g.Status != http.StatusNotFound || !g.Signed {
				t.Fatalf("GET: %d signed=%v %s", g.Status, g.Signed, g.Body)
			}
			s.unchanged(t, before)
		})
	}
	// Deposits' user ids follow an allow-list too.
	for _, uid := range []string{"42' OR '1'='1", "42\x00", "42\r\n", "４２", strings.Repeat("9", 65)} {
		before := s.state(t)
		body := fmt.Sprintf(`{"order_id":%q,"user_id":%s,"amount":"1.00","currency":"CNY"}`, newOrderID(), jsonString(uid))
		r := s.send(t, topUp, "POST", "/v1/deposits", []byte(body))
		refused(t, r, http.StatusUnprocessableEntity, "validation_failed", "")
		if _, ok := fieldErrors(t, r)["user_id"]; !ok {
			t.Fatalf("%q: no error on user_id: %s", uid, r.Body)
		}
		s.unchanged(t, before)
	}
	// Free text is data: stored exactly, and the statements it would
	// break, were it spliced into SQL, left the tables whole.
	var entriesBefore int64
	s.db.QueryRow(t.Context(), `SELECT count(*) FROM entries`).Scan(&entriesBefore)
	sql := `x'); DELETE FROM postings; DROP TABLE entries; --`
	order := newOrderID()
	body := fmt.Sprintf(`{"order_id":%q,"amount":"1.00","currency":"CNY","payer_token":%q,"description":%q}`, order, tok, sql)
	if r := s.send(t, honest, "POST", "/v1/payments", []byte(body)); r.Status != 200 {
		t.Fatalf("payment with SQL in the description: %d %s", r.Status, r.Body)
	}
	var stored string
	var entriesAfter int64
	if err := s.db.QueryRow(t.Context(), `SELECT description, (SELECT count(*) FROM entries) FROM entries WHERE order_id = $1`, order).Scan(&stored, &entriesAfter); err != nil {
		t.Fatal(err)
	}
	if stored != sql || entriesAfter != entriesBefore+1 {
		t.Fatalf("stored %q, %d entries (was %d)", stored, entriesAfter, entriesBefore)
	}
	if b := s.walletBalance(t, user); b != 900 {
		t.Fatalf("wallet %d, want 900", b)
	}
}

// jsonString is v as a JSON string, control characters escaped as \u00XX.
func jsonString(v string) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
