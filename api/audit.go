package api

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/policy"
)

// AuditTokens verifies auditor bearer tokens.
type AuditTokens interface {
	// Verify returns the auditor token names, or an error wrapping
	// audit.ErrToken (401), audit.ErrForbidden (403) or audit.ErrUnavailable (503).
	Verify(ctx context.Context, token string) (audit.Auditor, error)
}

// PlatformKeyHistory lists every platform key version, so checkpoints signed
// by retired keys stay verifiable offline.
type PlatformKeyHistory interface {
	// PlatformKeyHistory returns all platform public keys, newest first.
	PlatformKeyHistory(ctx context.Context) ([]keys.PublicKey, error)
}

// AuditDeps are the auditor API's dependencies, wired in cmd/quill.
type AuditDeps struct {
	Tokens         AuditTokens
	Reports        ledger.Reports
	Checkpoints    ledger.Checkpoints
	CheckpointKeys ledger.CheckpointKeys // verify checkpoint signatures in chain audits
	PlatformKeys   PlatformKeyHistory
	Events         AuditEventLog // the operator audit log, read as the reader role; nil leaves GET /v1/audit/events out
	CursorKey      []byte        // HMAC key sealing cursors; at least 32 bytes, shared by every node
	Log            zerolog.Logger
	MerchantKeys   MerchantKeyHistory // entry verification (audit_verify.go)
}

// Auditor API cursor kinds (the HMAC covers the kind).
const (
	cursorStatement = "statement"
	cursorExport    = "export"
)

const (
	defaultStatementLimit = 100
	maxStatementLimit     = 1000
	exportFlushRows       = 2000 // flush a streamed export at least this often
)

// NewAuditHandler returns the read-only auditor API, served on its own
// listener: every route takes only a bearer token from the Authorization
// header (never a merchant signature, never a query parameter) and answers
// GET. All auditor routes are here.
func NewAuditHandler(d AuditDeps) (http.Handler, error) {
	if len(d.CursorKey) < minCursorKey {
		return nil, fmt.Errorf("api: audit cursor key must have at least %d bytes", minCursorKey)
	}
	cursors := cursorSealer{key: d.CursorKey}
	r := chi.NewRouter()
	r.Use(auditEnvelope(newRequestIDs(), d.Log), limitHeaders(MaxHeaderBytes, writeAuditError), refuseQueryTokens, bearer(d.Tokens))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { writeAuditError(w, r, errRouteNotFound) })
	r.MethodNotAllowed(methodNotAllowed(r, writeAuditError))
	r.Get("/v1/audit/trial-balance", handleTrialBalance(d.Reports))
	r.Get("/v1/audit/accounts/{account}/statement", handleStatement(d.Reports, cursors))
	r.Get("/v1/audit/journal", handleExport(d.Reports, cursors))
	r.Get("/v1/audit/entries/{id}", handleEntry(d.Reports))
	r.Get("/v1/audit/entries/{id}/verification", handleEntryVerification(d.Reports, d.MerchantKeys))
	r.Get("/v1/audit/checkpoints", handleCheckpoints(d.Checkpoints))
	r.Get("/v1/audit/chain/verify", handleVerifyChain(d.Checkpoints, d.CheckpointKeys))
	r.Get("/v1/audit/platform-keys", handlePlatformKeys(d.PlatformKeys))
	if d.Events != nil {
		r.Get("/v1/audit/events", handleEvents(d.Events, cursors)) // audit_events.go
	}
	return r, nil
}

// auditState is the request-scoped state of the auditor middleware.
type auditState struct {
	id      string
	auditor audit.Auditor
	authed  bool
	err     error // set by writeAuditError, for the access log
	code    string
}

type auditCtxKey struct{}

func auditStateFrom(ctx context.Context) *auditState {
	if st, ok := ctx.Value(auditCtxKey{}).(*auditState); ok {
		return st
	}
	return &auditState{}
}

// scopeOf returns the merchants filter of the request's auditor (nil: all).
func scopeOf(r *http.Request) []string {
	s := auditStateFrom(r.Context()).auditor.Scope
	if s.Unlimited() {
		return nil
	}
	return s.List()
}

// statusWriter remembers the status for the access log and passes Flush on.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets a streamed export push what it has written.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// auditEnvelope gives every response a request id, panic recovery and one
// access-log line with the auditor's subject — never the token, never the
// query string (it might carry one).
func auditEnvelope(ids *requestIDs, log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			st := &auditState{id: ids.next()}
			r = r.WithContext(context.WithValue(r.Context(), auditCtxKey{}, st))
			sw := &statusWriter{ResponseWriter: w}
			sw.Header().Set("Request-ID", st.id)
			defer func() {
				p := recover()
				if p != nil && p != http.ErrAbortHandler && sw.status == 0 {
					st.err = fmt.Errorf("api: panic: %v\n%s", p, debug.Stack())
					writeAuditError(sw, r, st.err)
				}
				logAudit(log, r, st, sw, time.Since(start))
				if p == http.ErrAbortHandler {
					panic(p)
				}
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

func logAudit(log zerolog.Logger, r *http.Request, st *auditState, sw *statusWriter, took time.Duration) {
	var ev *zerolog.Event
	switch {
	case sw.status >= 500:
		ev = log.Error()
	case sw.status >= 400:
		ev = log.Warn()
	default:
		ev = log.Info()
	}
	ev = ev.Str("listener", "audit").Str("request_id", st.id).Str("method", r.Method).Str("path", r.URL.Path).
		Int("status", sw.status).Int64("bytes", sw.bytes).Dur("latency", took)
	if st.authed {
		ev = ev.Str("auditor", st.auditor.Subject)
	}
	if st.code != "" {
		ev = ev.Str("code", st.code)
	}
	if st.err != nil && sw.status >= 500 {
		ev = ev.AnErr("error", st.err)
	} else if st.err != nil {
		ev = ev.Str("reason", st.err.Error())
	}
	ev.Msg("request")
}

// queryTokenNames are parameters clients use to put tokens in URLs.
var queryTokenNames = []string{"access_token", "token", "jwt", "bearer", "id_token", "authorization"}

// refuseQueryTokens rejects a request whose query carries a token, by name or
// by shape (a JWS: "eyJ…" with two dots): URLs end up in logs and histories.
func refuseQueryTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name, vals := range r.URL.Query() {
			for _, n := range queryTokenNames {
				if strings.EqualFold(name, n) {
					writeAuditError(w, r, errTokenInQuery)
					return
				}
			}
			for _, v := range vals {
				if strings.HasPrefix(v, "eyJ") && strings.Count(v, ".") == 2 {
					writeAuditError(w, r, errTokenInQuery)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// bearer verifies the Authorization: Bearer token; anything else (no header, a
// merchant's WECHATPAY2-SHA256-RSA2048 signature, Basic…) is a 401.
func bearer(tokens AuditTokens) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := r.Header.Values("Authorization")
			scheme, tok, ok := "", "", len(h) == 1
			if ok {
				scheme, tok, ok = strings.Cut(h[0], " ")
			}
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
				writeAuditError(w, r, errNoBearer)
				return
			}
			a, err := tokens.Verify(r.Context(), strings.TrimSpace(tok))
			if err != nil {
				writeAuditError(w, r, err)
				return
			}
			st := auditStateFrom(r.Context())
			st.auditor, st.authed = a, true
			next.ServeHTTP(w, r)
		})
	}
}

func writeAuditJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own response types always marshal
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// Parameter parsing. Every parameter appears at most once.

func queryOne(r *http.Request, name string) (string, error) {
	vs := r.URL.Query()[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", &paramError{name, "given more than once"}
}

func queryTime(r *http.Request, name string) (time.Time, error) {
	v, err := queryOne(r, name)
	if err != nil || v == "" {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &paramError{name, "not an RFC 3339 time"}
	}
	return t, nil
}

func queryInt(r *http.Request, name string, lo, hi int64) (int64, error) {
	v, err := queryOne(r, name)
	if err != nil || v == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, &paramError{name, fmt.Sprintf("not an integer in [%d, %d]", lo, hi)}
	}
	return n, nil
}

func queryPeriod(r *http.Request) (ledger.Period, error) {
	var p ledger.Period
	var err error
	if p.From, err = queryTime(r, "from"); err != nil {
		return p, err
	}
	if p.To, err = queryTime(r, "to"); err != nil {
		return p, err
	}
	if p.FromEntry, err = queryInt(r, "from_entry", 1, 1<<62); err != nil {
		return p, err
	}
	if p.ToEntry, err = queryInt(r, "to_entry", 1, 1<<62); err != nil {
		return p, err
	}
	if (p.FromEntry > 0 || p.ToEntry > 0) && (!p.From.IsZero() || !p.To.IsZero()) {
		return p, &paramError{"from", "give times (from, to) or entry ids (from_entry, to_entry), not both"}
	}
	return p, nil
}

func money(minor int64, currency string) string { return policy.FormatAmount(minor, currency) }

func utcTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

type trialBalanceJSON struct {
	AsOfEntry       int64               `json:"as_of_entry"`
	AsOfTime        *string             `json:"as_of_time"`
	Scope           []string            `json:"scope"`
	Accounts        []accountTotalJSON  `json:"accounts"`
	Totals          []currencyTotalJSON `json:"totals"`
	CheckedBalances bool                `json:"checked_against_balances"`
}

type accountTotalJSON struct {
	Account  string `json:"account"`
	Currency string `json:"currency"`
	Type     string `json:"type"`
	Debit    string `json:"debit"`
	Credit   string `json:"credit"`
	Balance  string `json:"balance"`
}

type currencyTotalJSON struct {
	Currency       string `json:"currency"`
	Debit          string `json:"debit"`
	Credit         string `json:"credit"`
	DebitBalances  string `json:"debit_balances"`
	CreditBalances string `json:"credit_balances"`
	Balanced       bool   `json:"balanced"`
}

func handleTrialBalance(rep ledger.Reports) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var asOf ledger.AsOf
		var err error
		if asOf.Time, err = queryTime(r, "as_of"); err == nil {
			asOf.Entry, err = queryInt(r, "as_of_entry", 1, 1<<62)
		}
		if err == nil && !asOf.Time.IsZero() && asOf.Entry > 0 {
			err = &paramError{"as_of", "give as_of or as_of_entry, not both"}
		}
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		scope := scopeOf(r)
		tb, err := rep.TrialBalance(r.Context(), asOf, scope)
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		out := trialBalanceJSON{AsOfEntry: tb.AsOfEntry, Scope: scope, CheckedBalances: tb.CheckedBalances,
			Accounts: []accountTotalJSON{}, Totals: []currencyTotalJSON{}}
		if !tb.AsOfTime.IsZero() {
			s := utcTime(tb.AsOfTime)
			out.AsOfTime = &s
		}
		for _, a := range tb.Accounts {
			out.Accounts = append(out.Accounts, accountTotalJSON{a.Account, a.Currency, string(a.Type),
				money(a.Debit, a.Currency), money(a.Credit, a.Currency), money(a.Balance, a.Currency)})
		}
		for _, t := range tb.Totals {
			out.Totals = append(out.Totals, currencyTotalJSON{t.Currency, money(t.Debit, t.Currency), money(t.Credit, t.Currency),
				money(t.DebitBalances, t.Currency), money(t.CreditBalances, t.Currency),
				t.Debit == t.Credit && t.DebitBalances == t.CreditBalances})
		}
		writeAuditJSON(w, out)
	}
}

type statementJSON struct {
	Account   string              `json:"account"`
	Currency  string              `json:"currency"`
	Type      string              `json:"type"`
	FromEntry int64               `json:"from_entry"`
	ToEntry   int64               `json:"to_entry"`
	Opening   string              `json:"opening_balance"`
	Closing   string              `json:"closing_balance"`
	Lines     []statementLineJSON `json:"lines"`
	Next      string              `json:"next_cursor,omitempty"`
}

type statementLineJSON struct {
	EntryID   int64  `json:"entry_id"`
	Seq       int32  `json:"seq"`
	CreatedAt string `json:"created_at"`
	Kind      string `json:"kind"`
	Merchant  string `json:"merchant"`
	OrderID   string `json:"order_id"`
	Debit     string `json:"debit"`
	Credit    string `json:"credit"`
	Balance   string `json:"balance"`
}

func validCurrencyParam(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

func handleStatement(rep ledger.Reports, cursors cursorSealer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := ledger.StatementQuery{Account: chi.URLParam(r, "account"), Merchants: scopeOf(r)}
		var err error
		if q.Currency, err = queryOne(r, "currency"); err == nil {
			if q.Currency == "" {
				q.Currency = "CNY"
			} else if !validCurrencyParam(q.Currency) {
				err = &paramError{"currency", "not three upper-case letters"}
			}
		}
		var limit int64
		if err == nil {
			limit, err = queryInt(r, "limit", 1, maxStatementLimit)
		}
		if err == nil {
			q.Period, err = queryPeriod(r)
		}
		var cursor string
		if err == nil {
			cursor, err = queryOne(r, "cursor")
		}
		if err == nil && cursor != "" {
			var pos ledger.StatementPosition
			if err = cursors.open(cursorStatement, cursor, &pos); err == nil {
				q.After = &pos
			}
		}
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		q.Limit = int(limit)
		if q.Limit == 0 {
			q.Limit = defaultStatementLimit
		}
		st, err := rep.Statement(r.Context(), q)
		if errors.Is(err, ledger.ErrInvalidEntry) {
			err = errCursorInvalid // a sealed cursor of another account
		}
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		cur := st.Currency
		out := statementJSON{Account: st.Account, Currency: cur, Type: string(st.Type), FromEntry: st.FromEntry, ToEntry: st.ToEntry,
			Opening: money(st.Opening, cur), Closing: money(st.Closing, cur), Lines: []statementLineJSON{}}
		for _, l := range st.Lines {
			out.Lines = append(out.Lines, statementLineJSON{l.EntryID, l.Seq, utcTime(l.CreatedAt), string(l.Kind), l.Merchant, l.OrderID,
				money(l.Debit, cur), money(l.Credit, cur), money(l.Balance, cur)})
		}
		if st.Next != nil {
			out.Next = cursors.seal(cursorStatement, st.Next)
		}
		writeAuditJSON(w, out)
	}
}

// JournalRowJSON is one exported posting, in NDJSON; the CSV columns are the
// same, in ExportColumns order.
type JournalRowJSON struct {
	EntryID     int64  `json:"entry_id"`
	Seq         int32  `json:"seq"`
	CreatedAt   string `json:"created_at"`
	Kind        string `json:"kind"`
	Merchant    string `json:"merchant"`
	OrderID     string `json:"order_id"`
	Payer       string `json:"payer"`
	Description string `json:"description"`
	Account     string `json:"account"`
	Currency    string `json:"currency"`
	Amount      string `json:"amount"`
	AmountMinor int64  `json:"amount_minor"`
	EntryHash   string `json:"entry_hash"`
}

// ExportColumns is the CSV header of a journal export.
var ExportColumns = []string{"entry_id", "seq", "created_at", "kind", "merchant", "order_id", "payer", "description",
	"account", "currency", "amount", "amount_minor", "entry_hash"}

// Export response headers.
const (
	// HeaderExportCursor is the sealed range of the export; with after=ENTRY:SEQ
	// (the last row received) it resumes an interrupted export.
	HeaderExportCursor = "Quill-Export-Cursor"
	// HeaderExportRows is how many rows the response will carry.
	HeaderExportRows = "Quill-Export-Rows"
	// HeaderExportComplete is a trailer, present only when every row was sent.
	HeaderExportComplete = "Quill-Export-Complete"
)

func parseAfter(v string) (int64, int32, error) {
	e, s, ok := strings.Cut(v, ":")
	entry, err1 := strconv.ParseInt(e, 10, 64)
	seq, err2 := strconv.ParseInt(s, 10, 32)
	if !ok || err1 != nil || err2 != nil || entry < 0 || seq < 0 {
		return 0, 0, &paramError{"after", "not ENTRY:SEQ"}
	}
	return entry, int32(seq), nil
}

func handleExport(rep ledger.Reports, cursors cursorSealer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		format, err := queryOne(r, "format")
		if err == nil && format == "" {
			format = "ndjson"
		}
		if err == nil && format != "ndjson" && format != "csv" {
			err = &paramError{"format", "csv or ndjson"}
		}
		q := ledger.JournalQuery{Merchants: scopeOf(r)}
		if err == nil {
			q.Period, err = queryPeriod(r)
		}
		var cursor, after string
		if err == nil {
			cursor, err = queryOne(r, "cursor")
		}
		if err == nil {
			after, err = queryOne(r, "after")
		}
		if err == nil && after != "" && cursor == "" {
			err = &paramError{"after", "needs the cursor of the export it resumes"}
		}
		var orig ledger.JournalPosition
		if err == nil && cursor != "" {
			if err = cursors.open(cursorExport, cursor, &orig); err == nil {
				pos := orig
				if after != "" {
					var e int64
					var s int32
					if e, s, err = parseAfter(after); err == nil {
						// Only forward, within the sealed range.
						if e < orig.AfterEntry || (e == orig.AfterEntry && s < orig.AfterSeq) || e > orig.ToEntry {
							err = &paramError{"after", "outside the export's range"}
						}
						pos.AfterEntry, pos.AfterSeq = e, s
					}
				}
				q.Resume = &pos
			}
		}
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		pos, rows, err := rep.ExportRange(r.Context(), q)
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		if q.Resume == nil {
			orig = pos
		}
		h := w.Header()
		h.Set(HeaderExportCursor, cursors.seal(cursorExport, orig))
		h.Set(HeaderExportRows, strconv.FormatInt(rows, 10))
		h.Set("Trailer", HeaderExportComplete)
		h.Set("Cache-Control", "no-store")
		if format == "csv" {
			h.Set("Content-Type", "text/csv; charset=utf-8")
		} else {
			h.Set("Content-Type", "application/x-ndjson")
		}
		w.WriteHeader(http.StatusOK)
		flusher, _ := w.(http.Flusher)
		bw := bufio.NewWriterSize(w, 64<<10)
		enc := newExportEncoder(bw, format == "csv") // audit_export.go
		if format == "csv" && (q.Resume == nil || after == "") {
			enc.header()
		}
		var n int64
		err = rep.Export(r.Context(), pos, q.Merchants, func(j ledger.JournalRow) error {
			if err := enc.encode(j); err != nil {
				return err
			}
			if n++; n%exportFlushRows == 0 {
				if err := bw.Flush(); err != nil {
					return err
				}
				if flusher != nil {
					flusher.Flush()
				}
			}
			return nil
		})
		if err == nil {
			err = bw.Flush()
		}
		if err != nil || n != rows {
			if err == nil {
				err = fmt.Errorf("%w: export sent %d rows, counted %d", ledger.ErrIntegrity, n, rows)
			}
			st := auditStateFrom(r.Context())
			st.err = err
			// Headers are gone: cut the stream so the client sees it
			// truncated rather than a clean end.
			panic(http.ErrAbortHandler)
		}
		h.Set(HeaderExportComplete, "rows="+strconv.FormatInt(n, 10))
	}
}

// EntryJSON is an entry with its evidence, as GET /v1/audit/entries/{id} returns it.
type EntryJSON struct {
	ID            int64         `json:"id"`
	Kind          string        `json:"kind"`
	Merchant      string        `json:"merchant"`
	OrderID       string        `json:"order_id"`
	RefundID      string        `json:"refund_id,omitempty"` // refunds only: covered by the fingerprint and hash
	Payer         string        `json:"payer"`
	Currency      string        `json:"currency"`
	Amount        string        `json:"amount"`
	AmountMinor   int64         `json:"amount_minor"`
	Fee           string        `json:"fee"`
	FeeMinor      int64         `json:"fee_minor"`
	Description   string        `json:"description"`
	CreatedAt     string        `json:"created_at"`
	CreatedMicros int64         `json:"created_at_unix_micro"`
	Fingerprint   string        `json:"fingerprint"`
	PrevHash      string        `json:"prev_hash"`
	Hash          string        `json:"hash"`
	Postings      []PostingJSON `json:"postings"`
	Evidence      EvidenceJSON  `json:"evidence"`
}

// PostingJSON is one posting of an entry, in stored order.
type PostingJSON struct {
	Account     string `json:"account"`
	Currency    string `json:"currency"`
	Amount      string `json:"amount"`
	AmountMinor int64  `json:"amount_minor"`
}

// EvidenceJSON is the signed request that authorized an entry, as received.
type EvidenceJSON struct {
	Scheme        string `json:"scheme"`
	KeyID         string `json:"key_id"`
	Authorization string `json:"authorization"`
	Method        string `json:"method"`
	Target        string `json:"target"`
	Body          string `json:"body_base64"`
}

func handleEntry(rep ledger.Reports) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
		if err != nil || id < 1 {
			// Not a parameter error: every bad id reads as a missing entry.
			writeAuditError(w, r, ledger.ErrNotFound)
			return
		}
		ee, err := rep.EntryEvidence(r.Context(), id, scopeOf(r))
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		out := EntryJSON{
			ID: ee.ID, Kind: string(ee.Kind), Merchant: ee.Merchant, OrderID: ee.OrderID, RefundID: ee.RefundID, Payer: ee.Payer, Currency: ee.Currency,
			Amount: money(ee.Amount, ee.Currency), AmountMinor: ee.Amount, Fee: money(ee.Fee, ee.Currency), FeeMinor: ee.Fee,
			Description: ee.Description, CreatedAt: utcTime(ee.CreatedAt), CreatedMicros: ee.CreatedAt.UnixMicro(),
			Fingerprint: hex.EncodeToString(ee.Fingerprint[:]), PrevHash: hex.EncodeToString(ee.PrevHash[:]), Hash: hex.EncodeToString(ee.Hash[:]),
			Evidence: EvidenceJSON{ee.Evidence.Scheme, ee.Evidence.KeyID, ee.Evidence.Authorization, ee.Evidence.Method,
				ee.Evidence.Target, base64.StdEncoding.EncodeToString(ee.Evidence.Body)},
		}
		for _, p := range ee.Postings {
			out.Postings = append(out.Postings, PostingJSON{p.Account, p.Currency, money(p.Amount, p.Currency), p.Amount})
		}
		writeAuditJSON(w, out)
	}
}

// CheckpointJSON is a signed checkpoint as the auditor API lists it.
type CheckpointJSON struct {
	ID            int64  `json:"id"`
	Seq           int64  `json:"seq"`
	Head          string `json:"head_hash"`
	CreatedAt     string `json:"created_at"`
	CreatedMicros int64  `json:"created_at_unix_micro"`
	KeyID         string `json:"key_id"`
	Algorithm     string `json:"algorithm"`
	Signature     string `json:"signature_base64"`
}

type checkpointsJSON struct {
	Checkpoints []CheckpointJSON `json:"checkpoints"`
	NextAfter   int64            `json:"next_after,omitempty"`
}

func handleCheckpoints(cps ledger.Checkpoints) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		after, err := queryInt(r, "after", 0, 1<<62)
		var limit int64
		if err == nil {
			limit, err = queryInt(r, "limit", 1, 1000)
		}
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		if limit == 0 {
			limit = 100
		}
		list, err := cps.ListCheckpoints(r.Context(), after, int(limit))
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		out := checkpointsJSON{Checkpoints: []CheckpointJSON{}}
		for _, c := range list {
			out.Checkpoints = append(out.Checkpoints, CheckpointJSON{c.ID, c.Seq, hex.EncodeToString(c.Head[:]), utcTime(c.CreatedAt),
				c.CreatedAt.UnixMicro(), c.KeyID, c.Algorithm, base64.StdEncoding.EncodeToString(c.Signature)})
		}
		if int64(len(list)) == limit {
			out.NextAfter = list[len(list)-1].ID
		}
		writeAuditJSON(w, out)
	}
}

// ChainReportJSON is the answer of GET /v1/audit/chain/verify.
type ChainReportJSON struct {
	OK               bool   `json:"ok"`
	From             int64  `json:"from"`
	To               int64  `json:"to"`
	Head             int64  `json:"head"`
	Entries          int64  `json:"entries_checked"`
	FirstBad         int64  `json:"first_bad_entry,omitempty"`
	Reason           string `json:"reason,omitempty"`
	Checkpoints      int    `json:"checkpoints_checked"`
	BadCheckpoint    int64  `json:"bad_checkpoint,omitempty"`
	CheckpointReason string `json:"checkpoint_reason,omitempty"`
}

func handleVerifyChain(cps ledger.Checkpoints, keys ledger.CheckpointKeys) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		from, err := queryInt(r, "from", 1, 1<<62)
		var to int64
		if err == nil {
			to, err = queryInt(r, "to", 1, 1<<62)
		}
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		rep, err := cps.AuditChain(r.Context(), from, to, keys)
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		writeAuditJSON(w, ChainReportJSON{rep.OK(), rep.From, rep.To, rep.Head, rep.Entries, rep.FirstBad, rep.Reason,
			rep.Checkpoints, rep.BadCheckpoint, rep.CheckpointReason})
	}
}

// PlatformKeyJSON is one published platform key version.
type PlatformKeyJSON struct {
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm"`
	Status    string `json:"status"`
	PEM       string `json:"public_key_pem"`
}

func handlePlatformKeys(pk PlatformKeyHistory) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := pk.PlatformKeyHistory(r.Context())
		if err != nil {
			writeAuditError(w, r, err)
			return
		}
		out := struct {
			Keys []PlatformKeyJSON `json:"keys"`
		}{Keys: []PlatformKeyJSON{}}
		for _, k := range list {
			pemBytes, err := keys.MarshalPublicKeyPEM(k.Public)
			if err != nil {
				writeAuditError(w, r, err)
				return
			}
			out.Keys = append(out.Keys, PlatformKeyJSON{k.ID, string(k.Algorithm), string(k.Status), string(pemBytes)})
		}
		writeAuditJSON(w, out)
	}
}
