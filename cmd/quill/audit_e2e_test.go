package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/policy"
)

// auditHarness is a server with its auditor listener.
type auditHarness struct {
	*harness
	auditHTTP *http.Client
}

// startAuditServer starts a private server (its own database) with the
// auditor listener, reading as the read-only role.
func startAuditServer(t *testing.T) *auditHarness {
	t.Helper()
	h := startServerWith(t, serverOptions{audit: true, tweaks: []func(*harness, *config){func(h *harness, c *config) {
		c.Audit = auditConfig{Addr: "127.0.0.1:0", Issuer: devenv.AuditorIssuer, Audience: devenv.AuditorAudience}
		leastPrivilege(t, c, h.dsn) // the auditor API reads as the read-only role
	}}})
	return &auditHarness{harness: h, auditHTTP: h.httpClient(nil)}
}

type auditResp struct {
	status int
	header http.Header
	body   []byte
}

func (a *auditHarness) get(token, target string, extra ...string) auditResp {
	a.t.Helper()
	req, err := http.NewRequest("GET", a.auditBase+target, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	res, err := a.auditHTTP.Do(req)
	if err != nil {
		a.t.Fatalf("GET %s: %v", target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatalf("GET %s: body: %v", target, err)
	}
	return auditResp{res.StatusCode, res.Header, b}
}

func (a *auditHarness) getJSON(token, target string, v any) {
	a.t.Helper()
	r := a.get(token, target)
	if r.status != http.StatusOK {
		a.t.Fatalf("GET %s: %d %s", target, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		a.t.Fatalf("GET %s: %v", target, err)
	}
}

func (a *auditHarness) auditorToken(scope audit.Scope) string {
	a.t.Helper()
	tok, err := devenv.AuditorToken(a.dir, "alice", scope, 10*time.Minute, a.clock.Now())
	if err != nil {
		a.t.Fatal(err)
	}
	return tok
}

// withoutRequestID returns a problem body with its request id removed, so two
// answers can be compared byte for byte.
func withoutRequestID(t *testing.T, b []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	delete(m, "request_id")
	out, _ := json.Marshal(m)
	return string(out)
}

// seedPayments writes deposits and payments for two merchants over the merchant API.
func (a *auditHarness) seedPayments() {
	a.deposit("a1", "100.00")
	a.deposit("a2", "50.00")
	for i, amt := range []string{"12.34", "1.00", "7.77"} {
		if r := a.do(demoMerchant, "POST", "/v1/payments", paymentBody(newOrderID(), amt, a.token("a1"))); r.Status != http.StatusOK {
			a.t.Fatalf("payment %d: %d %s", i, r.Status, r.Body)
		}
		if r := a.do(otherMerch, "POST", "/v1/payments", paymentBody(newOrderID(), "2.50", a.token("a2"))); r.Status != http.StatusOK {
			a.t.Fatalf("payment %d: %d %s", i, r.Status, r.Body)
		}
		a.clock.Advance(time.Second)
	}
}

func TestAuditorAccess(t *testing.T) {
	a := startAuditServer(t)
	a.seedPayments()
	good := a.auditorToken(audit.All)
	if r := a.get(good, "/v1/audit/trial-balance"); r.status != http.StatusOK {
		t.Fatalf("valid token: %d %s", r.status, r.body)
	}

	// Forged tokens, all refused with 401 token_invalid.
	kid, _ := os.ReadFile(filepath.Join(a.dir, "auditor-signer.kid"))
	ks, err := keys.OpenFileStore(filepath.Join(a.dir, "keys"), keys.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ks.PublicKey(context.Background(), keys.AuditorOwner, strings.TrimSpace(string(kid)))
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"iss": devenv.AuditorIssuer, "aud": devenv.AuditorAudience, "sub": "mallory", "role": "auditor",
		"exp": a.clock.Now().Add(time.Hour).Unix()}
	none := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	none.Header["kid"] = strings.TrimSpace(string(kid))
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	hs.Header["kid"] = strings.TrimSpace(string(kid))
	hsTok, _ := hs.SignedString([]byte(pub.Public.(ed25519.PublicKey)))
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	strangerTok, _ := audit.IssueToken(stranger, audit.TokenOptions{KeyID: "AUDITOR_UNKNOWN", Issuer: devenv.AuditorIssuer,
		Audience: devenv.AuditorAudience, Subject: "mallory", TTL: time.Hour, Now: a.clock.Now()})
	expired, _ := devenv.AuditorToken(a.dir, "alice", audit.All, time.Minute, a.clock.Now().Add(-2*time.Minute))
	future, _ := devenv.AuditorToken(a.dir, "alice", audit.All, time.Hour, a.clock.Now().Add(time.Minute))
	payer := a.token("a1") // a payer JWT: another issuer and audience, no role
	merchantSig := a.sign(demoMerchant, nil, "", "GET", "/v1/audit/trial-balance", nil, a.clock.Now())
	for _, c := range []struct {
		name string
		auth string
	}{
		{"no Authorization", ""},
		{"alg none", "Bearer " + noneTok},
		{"HS256 keyed with the public key", "Bearer " + hsTok},
		{"unknown kid", "Bearer " + strangerTok},
		{"expired", "Bearer " + expired},
		{"not yet valid", "Bearer " + future},
		{"payer token (wrong iss and aud)", "Bearer " + payer},
		{"merchant signature", merchantSig},
		{"basic auth", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:secret"))},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r auditResp
			if c.auth == "" {
				r = a.get("", "/v1/audit/trial-balance")
			} else {
				r = a.get("", "/v1/audit/trial-balance", "Authorization", c.auth)
			}
			if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), `"code":"token_invalid"`) ||
				!strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	// A token in the query string is refused, even alongside a good header.
	for _, q := range []string{"?access_token=" + good, "?token=x", "?as_of_entry=" + url.QueryEscape(good)} {
		if r := a.get(good, "/v1/audit/trial-balance"+q); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "token_in_query") {
			t.Errorf("query %.20s…: %d %s", q, r.status, r.body)
		}
	}
	// Read-only: no method but GET.
	req, _ := http.NewRequest("POST", a.auditBase+"/v1/audit/trial-balance", nil)
	req.Header.Set("Authorization", "Bearer "+good)
	if res, err := a.auditHTTP.Do(req); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST on the auditor API: %v %v", res.StatusCode, err)
	} else {
		res.Body.Close()
	}
	// Merchant routes are not on the auditor listener, and the merchant
	// listener does not take auditor tokens.
	if r := a.get(good, "/v1/payments/ORD1"); r.status != http.StatusNotFound {
		t.Errorf("merchant route on the auditor listener: %d", r.status)
	}
	cert := a.certs[demoMerchant]
	r := a.raw(&cert, "GET", "/v1/certificates", nil, "Bearer "+good)
	if r.Status != http.StatusUnauthorized || problem(t, r)["code"] != "signature_invalid" {
		t.Errorf("auditor token on a merchant route: %d %s", r.Status, r.Body)
	}
	if r := a.raw(&cert, "GET", "/v1/audit/trial-balance", nil, "Bearer "+good); r.Status == http.StatusOK {
		t.Errorf("auditor route on the merchant listener: %d", r.Status)
	}
}

func TestAuditorScopeIsolation(t *testing.T) {
	a := startAuditServer(t)
	a.seedPayments()
	all, m200 := a.auditorToken(audit.All), a.auditorToken(audit.Merchants(otherMerch))
	var m100Entry, m200Entry int64
	if err := a.db.QueryRow(context.Background(), `SELECT
		(SELECT min(id) FROM entries WHERE merchant_id = $1), (SELECT min(id) FROM entries WHERE merchant_id = $2)`,
		demoMerchant, otherMerch).Scan(&m100Entry, &m200Entry); err != nil {
		t.Fatal(err)
	}
	if r := a.get(m200, fmt.Sprintf("/v1/audit/entries/%d", m200Entry)); r.status != http.StatusOK {
		t.Fatalf("own entry: %d %s", r.status, r.body)
	}
	// Another merchant's entry answers exactly like one that does not exist.
	for _, pair := range [][2]string{
		{fmt.Sprintf("/v1/audit/entries/%d", m100Entry), "/v1/audit/entries/999999"},
		{"/v1/audit/accounts/merchant:" + demoMerchant + "/statement", "/v1/audit/accounts/merchant:NOPE/statement"},
		{"/v1/audit/accounts/user:a1/statement", "/v1/audit/accounts/user:nobody/statement"},
	} {
		hidden, missing := a.get(m200, pair[0]), a.get(m200, pair[1])
		if hidden.status != http.StatusNotFound || hidden.status != missing.status ||
			withoutRequestID(t, hidden.body) != withoutRequestID(t, missing.body) ||
			hidden.header.Get("Content-Type") != missing.header.Get("Content-Type") {
			t.Errorf("%s: %d %s; missing: %d %s", pair[0], hidden.status, hidden.body, missing.status, missing.body)
		}
		if r := a.get(all, pair[0]); r.status != http.StatusOK {
			t.Errorf("unscoped %s: %d", pair[0], r.status)
		}
	}
	// The scoped trial balance covers only M200's entries, and balances.
	var tb struct {
		Accounts []struct{ Account, Debit, Credit, Balance string }
		Totals   []struct {
			Debit, Credit string
			Balanced      bool
		}
		Scope []string
	}
	a.getJSON(m200, "/v1/audit/trial-balance", &tb)
	if len(tb.Scope) != 1 || tb.Scope[0] != otherMerch || len(tb.Totals) != 1 || !tb.Totals[0].Balanced {
		t.Fatalf("scoped trial balance: %+v", tb)
	}
	for _, acc := range tb.Accounts {
		if acc.Account == "merchant:"+demoMerchant || acc.Account == "bank:settlement" {
			t.Errorf("scoped trial balance shows %s", acc.Account)
		}
	}
	// The scoped export holds only M200's rows.
	r := a.get(m200, "/v1/audit/journal?format=ndjson")
	for _, line := range bytes.Split(bytes.TrimSpace(r.body), []byte("\n")) {
		var row api.JournalRowJSON
		if err := json.Unmarshal(line, &row); err != nil || row.Merchant != otherMerch {
			t.Fatalf("scoped export row %s: %v", line, err)
		}
	}
}

func TestAuditorReports(t *testing.T) {
	a := startAuditServer(t)
	a.seedPayments()
	tok := a.auditorToken(audit.All)

	// Trial balance: every account against the test's own sum of its postings.
	var tb struct {
		AsOfEntry int64 `json:"as_of_entry"`
		Accounts  []struct{ Account, Currency, Debit, Credit, Balance string }
		Totals    []struct {
			Currency, Debit, Credit string
			Balanced                bool
		}
		Checked bool `json:"checked_against_balances"`
	}
	a.getJSON(tok, "/v1/audit/trial-balance", &tb)
	if tb.AsOfEntry != int64(a.entries("")) || !tb.Checked || len(tb.Totals) != 1 || !tb.Totals[0].Balanced || tb.Totals[0].Debit != tb.Totals[0].Credit {
		t.Fatalf("trial balance: %+v", tb)
	}
	for _, acc := range tb.Accounts {
		if want := policy.FormatAmount(a.balance(acc.Account), "CNY"); acc.Balance != want {
			t.Errorf("%s balance %s, postings give %s", acc.Account, acc.Balance, want)
		}
	}
	// As of the second entry: only the two deposits.
	a.getJSON(tok, "/v1/audit/trial-balance?as_of_entry=2", &tb)
	if tb.AsOfEntry != 2 || tb.Checked || tb.Totals[0].Debit != "150.00" {
		t.Fatalf("as of entry 2: %+v", tb)
	}

	// Statement of user:a1, two lines a page, against the postings.
	type line struct {
		EntryID int64 `json:"entry_id"`
		Debit   string
		Credit  string
		Balance string
	}
	var lines []line
	next, pages := "", 0
	for {
		var st struct {
			Opening string `json:"opening_balance"`
			Closing string `json:"closing_balance"`
			Lines   []line
			Next    string `json:"next_cursor"`
		}
		target := "/v1/audit/accounts/user:a1/statement?limit=2"
		if next != "" {
			target += "&cursor=" + url.QueryEscape(next)
		}
		a.getJSON(tok, target, &st)
		if st.Opening != "0.00" || st.Closing != policy.FormatAmount(a.balance("user:a1"), "CNY") {
			t.Fatalf("statement page %d: %+v", pages, st)
		}
		lines, next, pages = append(lines, st.Lines...), st.Next, pages+1
		if next == "" {
			break
		}
		// A tampered cursor is refused.
		raw, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(next, ".", 2)[0])
		forged := base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte(`"Running":`), []byte(`"Running":1`), 1)) + "." + strings.SplitN(next, ".", 2)[1]
		if r := a.get(tok, "/v1/audit/accounts/user:a1/statement?cursor="+url.QueryEscape(forged)); r.status != http.StatusBadRequest ||
			!strings.Contains(string(r.body), "cursor_invalid") {
			t.Fatalf("forged cursor: %d %s", r.status, r.body)
		}
		// A cursor of this account does not open another's statement.
		if r := a.get(tok, "/v1/audit/accounts/user:a2/statement?cursor="+url.QueryEscape(next)); r.status != http.StatusBadRequest {
			t.Fatalf("cursor on another account: %d %s", r.status, r.body)
		}
	}
	rows, err := a.db.Query(context.Background(), `SELECT p.entry_id, p.amount FROM postings p JOIN accounts ac ON ac.id = p.account_id
		WHERE ac.code = 'user:a1' ORDER BY p.entry_id, p.seq`)
	if err != nil {
		t.Fatal(err)
	}
	var running int64
	i := 0
	for rows.Next() {
		var id, amt int64
		rows.Scan(&id, &amt)
		running -= amt // a wallet is a liability
		if i >= len(lines) || lines[i].EntryID != id || lines[i].Balance != policy.FormatAmount(running, "CNY") {
			t.Fatalf("line %d: %+v, want entry %d balance %d", i, lines, id, running)
		}
		i++
	}
	if i != len(lines) || pages != (len(lines)+1)/2 {
		t.Fatalf("%d lines in %d pages, want %d", len(lines), pages, i)
	}

	// Export round trip: CSV and NDJSON parse back to the same rows, which
	// are the postings in the database.
	csvResp := a.get(tok, "/v1/audit/journal?format=csv")
	ndResp := a.get(tok, "/v1/audit/journal?format=ndjson")
	recs, err := csv.NewReader(bytes.NewReader(csvResp.body)).ReadAll()
	if err != nil || len(recs) < 2 || strings.Join(recs[0], ",") != strings.Join(api.ExportColumns, ",") {
		t.Fatalf("csv: %v %v", err, recs)
	}
	ndLines := bytes.Split(bytes.TrimSpace(ndResp.body), []byte("\n"))
	if len(ndLines) != len(recs)-1 || csvResp.header.Get(api.HeaderExportRows) != strconv.Itoa(len(ndLines)) {
		t.Fatalf("%d ndjson rows, %d csv rows, header %s", len(ndLines), len(recs)-1, csvResp.header.Get(api.HeaderExportRows))
	}
	dbRows, err := a.db.Query(context.Background(), `SELECT p.entry_id, p.seq, ac.code, p.amount, e.order_id, e.hash
		FROM postings p JOIN accounts ac ON ac.id = p.account_id JOIN entries e ON e.id = p.entry_id ORDER BY p.entry_id, p.seq`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for dbRows.Next() {
		var id, amt int64
		var seq int32
		var code, order string
		var hash []byte
		dbRows.Scan(&id, &seq, &code, &amt, &order, &hash)
		var nd api.JournalRowJSON
		if err := json.Unmarshal(ndLines[n], &nd); err != nil {
			t.Fatal(err)
		}
		c := recs[n+1]
		want := []string{strconv.FormatInt(id, 10), strconv.Itoa(int(seq)), nd.CreatedAt, nd.Kind, nd.Merchant, order, nd.Payer, nd.Description,
			code, "CNY", policy.FormatAmount(amt, "CNY"), strconv.FormatInt(amt, 10), hex.EncodeToString(hash)}
		if strings.Join(c, "|") != strings.Join(want, "|") || nd.EntryID != id || nd.Seq != seq || nd.AmountMinor != amt || nd.Account != code {
			t.Fatalf("row %d: csv %v ndjson %+v, want %v", n, c, nd, want)
		}
		n++
	}
	if n != len(ndLines) {
		t.Fatalf("%d postings, %d exported", n, len(ndLines))
	}
	// Resume after row 4 with the sealed cursor: the rest, no header.
	cur := csvResp.header.Get(api.HeaderExportCursor)
	rest := a.get(tok, "/v1/audit/journal?format=csv&cursor="+url.QueryEscape(cur)+"&after="+recs[4][0]+":"+recs[4][1])
	restRecs, err := csv.NewReader(bytes.NewReader(rest.body)).ReadAll()
	if err != nil || len(restRecs) != len(recs)-5 || strings.Join(restRecs[0], ",") != strings.Join(recs[5], ",") {
		t.Fatalf("resumed export: %v, %d rows, want %d", err, len(restRecs), len(recs)-5)
	}
	if rest.header.Get(api.HeaderExportCursor) != cur {
		t.Error("a resumed export must hand back the same cursor")
	}
}

func TestAuditorCheckpointsAndChain(t *testing.T) {
	a := startAuditServer(t)
	a.seedPayments()
	tok := a.auditorToken(audit.Merchants(otherMerch)) // chain checks are open to scoped auditors too
	ctx := context.Background()
	store, err := postgres.Open(ctx, a.dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ks, err := keys.OpenFileStore(filepath.Join(a.dir, "keys"), keys.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ks.PlatformKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.CreateCheckpoint(ctx, a.clock.Now(), pk.ID(), pk.Signer(), false); err != nil {
		t.Fatal(err)
	}
	// Offline: the listed checkpoint verifies with the published platform key.
	var list struct{ Checkpoints []api.CheckpointJSON }
	a.getJSON(tok, "/v1/audit/checkpoints", &list)
	var published struct{ Keys []api.PlatformKeyJSON }
	a.getJSON(tok, "/v1/audit/platform-keys", &published)
	if len(list.Checkpoints) != 1 || len(published.Keys) == 0 {
		t.Fatalf("checkpoints %+v keys %+v", list, published)
	}
	cj := list.Checkpoints[0]
	var pubPEM string
	for _, k := range published.Keys {
		if k.KeyID == cj.KeyID {
			pubPEM = k.PEM
		}
	}
	pub, err := keys.ParsePublicKeyPEM([]byte(pubPEM))
	if err != nil {
		t.Fatal(err)
	}
	cp := ledger.Checkpoint{ID: cj.ID, Seq: cj.Seq, CreatedAt: time.UnixMicro(cj.CreatedMicros).UTC(), KeyID: cj.KeyID, Algorithm: cj.Algorithm}
	head, _ := hex.DecodeString(cj.Head)
	copy(cp.Head[:], head)
	cp.Signature, _ = base64.StdEncoding.DecodeString(cj.Signature)
	if err := ledger.VerifyCheckpoint(cp, pub); err != nil || cp.Seq != int64(a.entries("")) {
		t.Fatalf("offline checkpoint check: %v (seq %d)", err, cp.Seq)
	}
	var rep api.ChainReportJSON
	a.getJSON(tok, "/v1/audit/chain/verify", &rep)
	if !rep.OK || rep.Entries != cp.Seq || rep.Checkpoints != 1 {
		t.Fatalf("verify: %+v", rep)
	}
	// Alter a posting and the checkpoint's signature, as a superuser would.
	if _, err := a.db.Exec(ctx, `SET session_replication_role = replica;
		UPDATE postings SET amount = amount - 1 WHERE entry_id = 3 AND seq = 1;
		UPDATE checkpoints SET signature = overlay(signature placing '\xff' from 1 for 1);
		SET session_replication_role = origin`); err != nil {
		t.Fatal(err)
	}
	a.getJSON(tok, "/v1/audit/chain/verify", &rep)
	if rep.OK || rep.FirstBad != 3 || rep.BadCheckpoint != cj.ID {
		t.Fatalf("after tampering: %+v", rep)
	}
	var after api.ChainReportJSON
	a.getJSON(tok, "/v1/audit/chain/verify?from=4", &after)
	if after.FirstBad != 0 || after.From != 4 || after.Entries != cp.Seq-3 || after.BadCheckpoint != cj.ID {
		t.Fatalf("range after the altered entry: %+v", after)
	}
}
