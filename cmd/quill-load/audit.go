package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/ledger"
)

// auditor is the auditor side of the mixed scenario: connections that read
// the auditor API (server TLS, bearer token) while the payments run, each
// cycling through --audit-reads:
//
//   - trial-balance: the whole ledger's trial balance as of now, which must
//     balance in every currency;
//   - statement: the next page (--statement-limit lines) of the paying
//     merchant's account statement, from the first page again after the last
//     (on a fresh ledger the account only exists from the run's first
//     payment: until then a 404 is counted as "not yet", not as a failure);
//   - journal: an NDJSON export of the --export-entries entries before the
//     run, which must hold every row it announced (Quill-Export-Rows, the
//     Quill-Export-Complete trailer) and the same rows each time: the range
//     is in the past, and entries are append-only.
type auditor struct {
	base    string
	token   string
	http    *http.Client
	reads   []string
	account string // the statement's account
	limit   int
	// noAccount is set while the statement's account has not been seen:
	// it did not exist at setup and no statement read has found it since.
	noAccount atomic.Bool
	// The journal export's entry range and its row count at setup.
	from, to, rows int64
}

// auditResult is the auditor side's report.
type auditResult struct {
	Connections int                    `json:"connections"`
	Reads       int64                  `json:"reads"`
	OK          int64                  `json:"ok"`
	Failed      int64                  `json:"failed"`
	Errors      map[string]int64       `json:"errors"`
	Examples    map[string]string      `json:"error_examples,omitempty"`
	Seconds     float64                `json:"seconds"`
	Throughput  float64                `json:"ok_per_second"`
	Latency     latency                `json:"latency_ms"`
	ByRead      map[string]*readResult `json:"by_read"`
	ExportRange [2]int64               `json:"export_entries"` // first and last entry id exported
	ExportRows  int64                  `json:"export_rows"`    // rows of each export
}

// readResult is one kind of read's share.
type readResult struct {
	OK         int64   `json:"ok"`
	Failed     int64   `json:"failed"`
	NotYet     int64   `json:"not_yet,omitempty"` // statement reads before the account's first posting
	Throughput float64 `json:"ok_per_second"`
	Latency    latency `json:"latency_ms"`
	Items      int64   `json:"items"` // accounts, statement lines or journal rows received
}

// setupAudit mints (or takes from QUILL_AUDIT_TOKEN) an auditor token,
// reads the trial balance once (the chain head, and that the auditor API
// answers) and fixes the journal export's range before the clock starts.
func (g *gen) setupAudit(ctx context.Context) error {
	tok := os.Getenv("QUILL_AUDIT_TOKEN")
	if tok == "" {
		var err error
		ttl := g.o.Duration + g.o.Grace + 30*time.Minute
		if tok, err = devenv.AuditorToken(g.o.DataDir, "quill-load", audit.All, ttl, time.Now()); err != nil {
			return fmt.Errorf("auditor token (or set QUILL_AUDIT_TOKEN): %w", err)
		}
	}
	n := g.o.auditors()
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: g.roots, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        n,
		MaxIdleConnsPerHost: n,
		MaxConnsPerHost:     n,
		IdleConnTimeout:     5 * time.Minute,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1, like the merchants
	}
	a := &auditor{
		base: strings.TrimRight(g.o.AuditURL, "/"), token: tok,
		http:  &http.Client{Transport: tr, Timeout: g.o.Timeout},
		reads: g.o.AuditReads, account: ledger.MerchantAccount(g.merchants[0].ID), limit: g.o.StatementLimit,
	}
	head, _, err := a.trialBalance(ctx)
	if err != nil {
		return fmt.Errorf("auditor API (--audit-url): %w", err)
	}
	if head < 1 {
		return errors.New("auditor API: the ledger has no entry to export")
	}
	a.from, a.to = max(1, head-int64(g.o.ExportEntries)+1), head
	if a.rows, err = a.journal(ctx); err != nil {
		return fmt.Errorf("auditor API: %w", err)
	}
	var cursor string
	a.noAccount.Store(true)
	if _, err := a.statement(ctx, &cursor); err != nil && !errors.Is(err, errNotYet) {
		return fmt.Errorf("auditor API: %w", err)
	}
	g.audit = a
	return nil
}

// get sends an auditor GET and returns the response if it is a 200; any
// other status is an error named by its problem code.
func (a *auditor) get(ctx context.Context, target string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	res, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		var p api.Problem
		if json.Unmarshal(b, &p) == nil && p.Code != "" {
			return nil, &readError{class: "audit: " + p.Code, detail: string(b)}
		}
		return nil, &readError{class: "audit: http " + strconv.Itoa(res.StatusCode), detail: string(b)}
	}
	return res, nil
}

// readError is a failed read, classed for the report.
type readError struct{ class, detail string }

func (e *readError) Error() string { return e.class + ": " + e.detail }

func readClass(err error) (class, detail string) {
	var re *readError
	if errors.As(err, &re) {
		return re.class, re.detail
	}
	return transportClass(err), err.Error()
}

// trialBalance reads the trial balance as of now and checks that every
// currency balances; it returns the chain position it is as of and the
// number of accounts.
func (a *auditor) trialBalance(ctx context.Context) (asOf, accounts int64, err error) {
	res, err := a.get(ctx, "/v1/audit/trial-balance")
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	var tb struct {
		AsOfEntry int64             `json:"as_of_entry"`
		Accounts  []json.RawMessage `json:"accounts"`
		Totals    []struct {
			Currency string `json:"currency"`
			Balanced bool   `json:"balanced"`
		} `json:"totals"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tb); err != nil {
		return 0, 0, &readError{"audit: trial balance unreadable", err.Error()}
	}
	for _, t := range tb.Totals {
		if !t.Balanced {
			return 0, 0, &readError{"audit: trial balance does not balance", fmt.Sprintf("%s as of entry %d", t.Currency, tb.AsOfEntry)}
		}
	}
	return tb.AsOfEntry, int64(len(tb.Accounts)), nil
}

// errNotYet is a statement read of an account that did not exist yet.
var errNotYet = errors.New("the account has no posting yet")

// statement reads the statement page after *cursor (the first page when it
// is empty) and leaves the next page's cursor there (empty after the last).
// It returns errNotYet for a 404 not_found sent while the account had not
// been seen.
func (a *auditor) statement(ctx context.Context, cursor *string) (int64, error) {
	target := "/v1/audit/accounts/" + url.PathEscape(a.account) + "/statement?limit=" + strconv.Itoa(a.limit)
	if *cursor != "" {
		target += "&cursor=" + url.QueryEscape(*cursor)
	}
	missing := a.noAccount.Load()
	res, err := a.get(ctx, target)
	var re *readError
	if missing && errors.As(err, &re) && re.class == "audit: not_found" {
		return 0, errNotYet
	}
	if err != nil {
		*cursor = "" // start over rather than repeat a refused cursor
		return 0, err
	}
	a.noAccount.Store(false)
	defer res.Body.Close()
	var st struct {
		Lines []json.RawMessage `json:"lines"`
		Next  string            `json:"next_cursor"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		*cursor = ""
		return 0, &readError{"audit: statement unreadable", err.Error()}
	}
	if len(st.Lines) > a.limit {
		return 0, &readError{"audit: statement page over its limit", fmt.Sprintf("%d lines, limit %d", len(st.Lines), a.limit)}
	}
	*cursor = st.Next
	return int64(len(st.Lines)), nil
}

// journal exports the fixed entry range as NDJSON and checks that every row
// announced arrived, the export said it was complete, and (after setup) that
// it is as many rows as at setup.
func (a *auditor) journal(ctx context.Context) (int64, error) {
	res, err := a.get(ctx, fmt.Sprintf("/v1/audit/journal?format=ndjson&from_entry=%d&to_entry=%d", a.from, a.to))
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var n int64
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return n, &readError{"audit: journal export cut", err.Error()}
	}
	announced := res.Header.Get(api.HeaderExportRows)
	complete := res.Trailer.Get(api.HeaderExportComplete)
	switch {
	case announced != strconv.FormatInt(n, 10) || complete != "rows="+strconv.FormatInt(n, 10):
		return n, &readError{"audit: journal export incomplete", fmt.Sprintf("%d rows received, %s announced, trailer %q", n, announced, complete)}
	case a.rows > 0 && n != a.rows:
		return n, &readError{"audit: journal of past entries changed", fmt.Sprintf("entries %d–%d: %d rows, %d at setup", a.from, a.to, n, a.rows)}
	}
	return n, nil
}

// run reads with workers connections until stop is closed (or ctx ends),
// each starting its cycle of reads at a different one.
func (a *auditor) run(ctx context.Context, workers int, stop <-chan struct{}) *auditResult {
	res := &auditResult{Connections: workers, Errors: map[string]int64{}, Examples: map[string]string{}, ByRead: map[string]*readResult{},
		ExportRange: [2]int64{a.from, a.to}, ExportRows: a.rows}
	type stats struct {
		ok, failed, notYet, items int64
		hist                      *hdrhistogram.Histogram
	}
	all := newHist()
	by := map[string]*stats{}
	for _, r := range a.reads {
		by[r] = &stats{hist: newHist()}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := map[string]*stats{}
			for _, r := range a.reads {
				mine[r] = &stats{hist: newHist()}
			}
			errs, examples := map[string]int64{}, map[string]string{}
			var cursor string
			// Every connection reads at least once, however short the run.
			for i := w; i == w || !stopped(ctx, stop); i++ {
				kind := a.reads[i%len(a.reads)]
				t0 := time.Now()
				var n int64
				var err error
				switch kind {
				case readTrialBalance:
					_, n, err = a.trialBalance(ctx)
				case readStatement:
					n, err = a.statement(ctx, &cursor)
				case readJournal:
					n, err = a.journal(ctx)
				}
				s := mine[kind]
				if errors.Is(err, errNotYet) {
					s.notYet++
					time.Sleep(10 * time.Millisecond) // the first payments are on their way
					continue
				}
				s.hist.RecordValue(max(1, time.Since(t0).Microseconds()))
				if err != nil {
					s.failed++
					class, detail := readClass(err)
					errs[class]++
					if _, ok := examples[class]; !ok {
						examples[class] = truncate(detail, 300)
					}
					continue
				}
				s.ok++
				s.items += n
			}
			mu.Lock()
			defer mu.Unlock()
			for k, s := range mine {
				t := by[k]
				t.ok, t.failed, t.notYet, t.items = t.ok+s.ok, t.failed+s.failed, t.notYet+s.notYet, t.items+s.items
				t.hist.Merge(s.hist)
				all.Merge(s.hist)
			}
			for k, v := range errs {
				res.Errors[k] += v
			}
			for k, v := range examples {
				if _, ok := res.Examples[k]; !ok {
					res.Examples[k] = v
				}
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	for k, s := range by {
		r := &readResult{OK: s.ok, Failed: s.failed, NotYet: s.notYet, Items: s.items, Latency: latencyOf(s.hist)}
		if res.Seconds > 0 {
			r.Throughput = float64(s.ok) / res.Seconds
		}
		res.ByRead[k] = r
		res.OK += s.ok
		res.Failed += s.failed
	}
	res.Reads = res.OK + res.Failed
	if res.Seconds > 0 {
		res.Throughput = float64(res.OK) / res.Seconds
	}
	res.Latency = latencyOf(all)
	return res
}

func stopped(ctx context.Context, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}
