package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/policy"
)

// run is the whole generator: setup, the timed phase, the ledger check. The
// summary is returned whenever the timed phase ran, with the error of what
// could not be done after it.
func run(ctx context.Context, o options, logf func(string, ...any)) (*summary, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := runContext(ctx, o)
	defer cancel()
	g, err := newGen(o, logf)
	if err != nil {
		return nil, err
	}
	sum := &summary{
		Scenario: o.Scenario, Scheme: o.Scheme, Mode: "closed", URL: o.URL, Connections: o.Connections,
		StartedAt: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(), RunID: g.runID,
		Crypto: g.crypto.Name() + " (" + g.crypto.Version() + ")",
	}
	if o.openLoop() {
		sum.Mode, sum.TargetRate = "open", o.Rate
	}

	setupStart := time.Now()
	created, took, err := g.loadMerchants()
	if err != nil {
		return nil, err
	}
	sum.Setup.MerchantsCreated, sum.Setup.OnboardSeconds = created, took.Seconds()
	sum.Setup.Merchants = len(g.merchants)
	probe, err := g.newClient(g.merchants[0].Merchant, 1, o.Scheme)
	if err != nil {
		return nil, err
	}
	err = waitReady(ctx, probe)
	probe.http.CloseIdleConnections()
	if err != nil {
		return nil, err
	}

	var db *pgx.Conn
	var before snapshot
	codes := []string{}
	if o.Check {
		if db, err = pgx.Connect(ctx, o.PgDSN); err != nil {
			return nil, fmt.Errorf("ledger check: connect (--pg-dsn, or --check=false): %w", err)
		}
		defer db.Close(context.Background())
	}
	// The snapshot comes before any write of the run, deposits included.
	snap := func() error {
		if db == nil {
			return nil
		}
		codes = g.accountCodes()
		before, err = takeSnapshot(ctx, db, codes)
		return err
	}

	if o.Scenario == scenarioIdle {
		if err := snap(); err != nil {
			return nil, err
		}
		load0 := loadAverage()
		if err := g.idle(ctx, sum); err != nil {
			return sum, err
		}
		sum.LoadAverage = [2]float64{load0, loadAverage()}
		return sum, g.finishCheck(ctx, db, before, codes, nil, sum)
	}

	if o.writes() {
		g.payerIDs()
		if err := snap(); err != nil {
			return nil, err
		}
		t := time.Now()
		if err := g.fundPayers(ctx); err != nil {
			return nil, err
		}
		sum.Setup.Payers, sum.Setup.Deposits, sum.Setup.DepositSeconds = len(g.payers), len(g.deposits), time.Since(t).Seconds()
	} else if err := snap(); err != nil {
		return nil, err
	}
	t := time.Now()
	logf("signing %d requests in advance on %d cores…", o.Requests, runtime.NumCPU())
	if err := g.presign(); err != nil {
		return nil, err
	}
	sum.Setup.PresignSeconds = time.Since(t).Seconds()
	if err := g.openLanes(ctx); err != nil {
		return nil, err
	}
	sum.Setup.Lanes = len(g.lanes)
	if o.Scenario == scenarioMixed {
		if err := g.setupAudit(ctx); err != nil {
			return nil, err
		}
	}
	// Every pre-signed timestamp is g.signedAt: the last send must still be
	// inside the replay window.
	lastSend := time.Now().Add(o.Duration)
	if o.openLoop() {
		lastSend = lastSend.Add(o.Grace)
	}
	if lastSend.Sub(g.signedAt) > o.Window-10*time.Second {
		return nil, fmt.Errorf("setup took %s: the run would outlive the %s replay window of its pre-signed timestamps; use fewer --requests or a shorter --duration",
			time.Since(setupStart).Round(time.Second), o.Window)
	}
	sum.Setup.Seconds = time.Since(setupStart).Seconds()

	if o.openLoop() {
		logf("sending %d requests at %.0f/s on %d connections…", len(g.reqs), o.Rate, o.senders())
	} else {
		logf("sending up to %d requests on %d connections for at most %s…", len(g.reqs), o.senders(), o.Duration)
	}
	var audited chan *auditResult
	stopAudit := make(chan struct{})
	if g.audit != nil {
		logf("and auditor reads (%s) on %d connections…", strings.Join(o.AuditReads, ", "), o.auditors())
		audited = make(chan *auditResult, 1)
		go func() { audited <- g.audit.run(ctx, o.auditors(), stopAudit) }()
	}
	load0 := loadAverage()
	c0 := sampleCPU(o.ServerPID)
	d := g.run(ctx)
	close(stopAudit)
	if audited != nil {
		sum.Audit = <-audited
	}
	sum.CPU = cpuBetween(c0, sampleCPU(o.ServerPID), d.ok)
	sum.LoadAverage = [2]float64{load0, loadAverage()}
	sum.fill(d, o)

	var want []expected
	if o.writes() {
		want, err = g.expectations(d)
		if err != nil {
			return sum, err
		}
	}
	return sum, g.finishCheck(ctx, db, before, codes, want, sum)
}

// payerIDs names the payers (fundPayers funds them).
func (g *gen) payerIDs() {
	prefix := g.o.PayerPrefix
	if prefix == "" {
		prefix = "L" + g.runID + "_"
	}
	g.payers = make([]string, g.o.Payers)
	for i := range g.payers {
		g.payers[i] = fmt.Sprintf("%s%d", prefix, i)
	}
}

// accountCodes are the accounts the run may move.
func (g *gen) accountCodes() []string {
	var codes []string
	if !g.o.writes() {
		return codes
	}
	codes = append(codes, ledger.FeesAccount)
	for _, m := range g.merchants {
		codes = append(codes, ledger.MerchantAccount(m.ID))
	}
	for _, p := range g.payers {
		codes = append(codes, ledger.UserAccount(p))
	}
	return codes
}

// expectations are the entries the run's 2xx answers promise: the deposits
// of the setup and every accepted payment, with the fee the merchant's
// profile implies.
func (g *gen) expectations(d *drive) ([]expected, error) {
	want := make([]expected, 0, len(g.deposits)+int(d.ok))
	for _, dep := range g.deposits {
		want = append(want, expected{Kind: ledger.KindDeposit, Merchant: g.o.TopUp, OrderID: dep.orderID, Payer: dep.user, Amount: dep.amount, EntryID: dep.entryID})
	}
	for i, out := range d.outcomes {
		if out.status/100 != 2 {
			continue
		}
		r := &g.reqs[i]
		m := g.merchants[r.merchant]
		var rec struct {
			EntryID int64  `json:"entry_id"`
			OrderID string `json:"order_id"`
			Amount  string `json:"amount"`
		}
		if err := json.Unmarshal(out.body, &rec); err != nil {
			return nil, fmt.Errorf("response to %s: %w", r.orderID, err)
		}
		if a, err := policy.ParseAmount(rec.Amount, "CNY"); rec.OrderID != r.orderID || err != nil || a != g.o.amountMinor {
			return nil, fmt.Errorf("response to %s names order %q amount %q", r.orderID, rec.OrderID, rec.Amount)
		}
		want = append(want, expected{Kind: ledger.KindPayment, Merchant: m.ID, OrderID: r.orderID, Payer: g.payers[r.payer],
			Amount: g.o.amountMinor, Fee: policy.ComputeFee(g.o.amountMinor, m.FeeBps), EntryID: rec.EntryID})
	}
	return want, nil
}

// finishCheck runs the ledger check (if enabled) and decides pass or fail.
func (g *gen) finishCheck(ctx context.Context, db *pgx.Conn, before snapshot, codes []string, want []expected, sum *summary) error {
	if g.o.beforeCheck != nil {
		want = g.o.beforeCheck(want)
	}
	if db != nil {
		g.logf("checking the ledger…")
		res, err := checkLedger(ctx, db, before, want, codes)
		if err != nil {
			sum.decide()
			return err
		}
		sum.Ledger = res
	}
	sum.decide()
	return nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
