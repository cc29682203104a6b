package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/policy"
)

// options are the generator's settings; flags in main.go.
type options struct {
	URL, DataDir, PgDSN string
	Check               bool
	Scenario            string
	Merchant, TopUp     string
	Merchants           int
	MerchantPrefix      string
	FeeBps              int64
	Payers              int
	PayerPrefix         string
	Connections         int
	Requests            int
	Duration            time.Duration
	Rate                float64
	LateAfter, Grace    time.Duration
	Amount              string
	VerifyTarget        string
	IdleConns           int
	Hold                time.Duration
	ServerPID           int
	Window, Timeout     time.Duration
	JSON                string
	Quiet               bool
	Scheme              string // a (WeChat Pay style) or b (RFC 9421)
	MerchantAlg         string // algorithm of merchants the run onboards
	Crypto              string // backend verifying RSA (scheme A) response signatures
	AuditURL            string
	AuditShare          float64  // mixed: share of the connections that read as an auditor
	AuditReads          []string // mixed: which reads the auditors cycle through
	ExportEntries       int      // mixed: entries per journal export
	StatementLimit      int      // mixed: lines per statement page

	amountMinor int64 // Amount parsed

	// beforeCheck, when set (tests only), runs just before the ledger check
	// and may change what the check expects.
	beforeCheck func(want []expected) []expected
}

// Scenario names.
const (
	scenarioHot    = "hot"
	scenarioSpread = "spread"
	scenarioVerify = "verify-only"
	scenarioIdle   = "idle"
	scenarioMixed  = "mixed"
)

// Request signature schemes (--scheme).
const (
	schemeA = "a" // WeChat Pay APIv3 style: Authorization header, RSA-2048
	schemeB = "b" // RFC 9421 HTTP Message Signatures
)

// Auditor reads of the mixed scenario (--audit-reads).
const (
	readTrialBalance = "trial-balance"
	readStatement    = "statement"
	readJournal      = "journal"
)

var allReads = []string{readTrialBalance, readStatement, readJournal}

// Signature backends of --crypto, as in quill serve.
const (
	cryptoAuto    = "auto"
	cryptoGo      = "go"
	cryptoOpenSSL = "openssl"
)

func defaultOptions() options {
	return options{
		URL:            "https://127.0.0.1:8443",
		DataDir:        "var/dev",
		PgDSN:          "postgres://postgres@127.0.0.1:5432/quill?sslmode=disable",
		Check:          true,
		Scenario:       scenarioHot,
		TopUp:          "TOPUP",
		Merchants:      100,
		FeeBps:         60,
		Payers:         1000,
		Connections:    64,
		Requests:       20000,
		Duration:       20 * time.Second,
		LateAfter:      time.Millisecond,
		Grace:          10 * time.Second,
		Amount:         "10.00",
		VerifyTarget:   "/v1/certificates",
		IdleConns:      1000,
		Hold:           5 * time.Second,
		Window:         300 * time.Second,
		Timeout:        30 * time.Second,
		Scheme:         schemeA,
		Crypto:         cryptoAuto,
		AuditURL:       "https://127.0.0.1:8444",
		AuditShare:     0.25,
		AuditReads:     allReads,
		ExportEntries:  1000,
		StatementLimit: 100,
	}
}

// schemeDefaults are the merchant settings each scheme starts from: scheme A
// needs RSA (rsa-v1_5-sha256) merchants, and the dev server's M100 is one;
// scheme B runs with Ed25519 merchants of their own (onboarded on first
// use), so that neither side spends a millisecond on an RSA signature.
var schemeDefaults = map[string]struct{ merchant, prefix, alg string }{
	schemeA: {"M100", "LOAD", string(keys.RSAPKCS1SHA256)},
	schemeB: {"MB100", "LOADB", string(keys.Ed25519)},
}

// openLoop reports whether requests arrive at a fixed rate.
func (o *options) openLoop() bool { return o.Rate > 0 }

// writes reports whether the scenario writes payments.
func (o *options) writes() bool {
	return o.Scenario == scenarioHot || o.Scenario == scenarioSpread || o.Scenario == scenarioMixed
}

// auditors is how many of the connections read as an auditor (mixed).
func (o *options) auditors() int {
	if o.Scenario != scenarioMixed {
		return 0
	}
	return min(o.Connections-1, max(1, int(math.Round(o.AuditShare*float64(o.Connections)))))
}

// senders is how many connections send the scenario's signed requests.
func (o *options) senders() int { return o.Connections - o.auditors() }

// validate checks o and fills in what follows from it (the open-loop request
// count, the parsed amount).
func (o *options) validate() error {
	if err := requireLoopback(o.URL); err != nil {
		return err
	}
	switch o.Scenario {
	case scenarioHot, scenarioSpread, scenarioVerify, scenarioIdle, scenarioMixed:
	default:
		return fmt.Errorf("unknown scenario %q (hot, spread, verify-only, mixed, idle)", o.Scenario)
	}
	def, ok := schemeDefaults[o.Scheme]
	switch {
	case !ok:
		return fmt.Errorf("--scheme %q: a (WeChat Pay APIv3 style) or b (RFC 9421)", o.Scheme)
	case o.Scheme == schemeB && o.Scenario == scenarioIdle:
		return errors.New("--scheme b: the idle scenario measures connections, and its one request on each is scheme A")
	}
	if o.Merchant == "" {
		o.Merchant = def.merchant
	}
	if o.MerchantPrefix == "" {
		o.MerchantPrefix = def.prefix
	}
	if o.MerchantAlg == "" {
		o.MerchantAlg = def.alg
	}
	switch alg := keys.Algorithm(o.MerchantAlg); {
	case o.Scheme == schemeA && alg != keys.RSAPKCS1SHA256:
		return fmt.Errorf("--merchant-alg %s: scheme A signs with rsa-v1_5-sha256 only", alg)
	case alg != keys.RSAPKCS1SHA256 && alg != keys.RSAPSSSHA512 && alg != keys.ECDSAP256SHA256 && alg != keys.Ed25519:
		return fmt.Errorf("--merchant-alg %q: rsa-v1_5-sha256, rsa-pss-sha512, ecdsa-p256-sha256 or ed25519", alg)
	}
	switch o.Crypto {
	case cryptoAuto, cryptoGo, cryptoOpenSSL:
	default:
		return fmt.Errorf("--crypto %q: auto, go or openssl", o.Crypto)
	}
	if o.Scenario == scenarioMixed {
		if err := o.validateMixed(); err != nil {
			return err
		}
	}
	switch {
	case o.Connections < 1:
		return errors.New("--connections must be at least 1")
	case o.Payers < 1:
		return errors.New("--payers must be at least 1")
	case o.Duration <= 0:
		return errors.New("--duration must be positive")
	case o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0):
		return errors.New("--rate must be a non-negative number")
	case o.Scenario == scenarioSpread && o.Merchants < 1:
		return errors.New("--merchants must be at least 1")
	case o.Scenario == scenarioIdle && o.IdleConns < 1:
		return errors.New("--idle-conns must be at least 1")
	case o.Scenario == scenarioIdle && (o.Hold <= 0 || o.Hold > 100*time.Second):
		// The server closes connections idle for 120 s.
		return errors.New("--hold must be between 0 and 100s (the server drops connections idle for 120s)")
	case o.Timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	if o.openLoop() {
		n := math.Ceil(o.Rate * o.Duration.Seconds())
		if n > 50_000_000 {
			return errors.New("--rate × --duration is more than 50 million requests")
		}
		o.Requests = int(n)
	}
	if o.Requests < 1 {
		return errors.New("--requests must be at least 1")
	}
	if o.Duration+o.Grace >= o.Window {
		return fmt.Errorf("--duration %s (+ %s grace) does not fit the %s replay window that pre-signed timestamps must stay in", o.Duration, o.Grace, o.Window)
	}
	minor, err := policy.ParseAmount(o.Amount, "CNY")
	if err != nil {
		return fmt.Errorf("--amount: %w", err)
	}
	o.amountMinor = minor
	return nil
}

// validateMixed checks the auditor side of the mixed scenario.
func (o *options) validateMixed() error {
	switch {
	case o.Connections < 2:
		return errors.New("--connections: mixed needs at least 2 (payments and auditor reads)")
	case !(o.AuditShare > 0 && o.AuditShare < 1):
		return errors.New("--audit-share must be between 0 and 1 (exclusive)")
	case len(o.AuditReads) == 0:
		return errors.New("--audit-reads: name at least one read")
	case o.ExportEntries < 1:
		return errors.New("--export-entries must be at least 1")
	case o.StatementLimit < 1 || o.StatementLimit > 1000:
		return errors.New("--statement-limit must be between 1 and 1000")
	}
	for _, r := range o.AuditReads {
		if !slices.Contains(allReads, r) {
			return fmt.Errorf("--audit-reads: unknown read %q (%s)", r, strings.Join(allReads, ", "))
		}
	}
	if err := requireLoopback(o.AuditURL); err != nil {
		return fmt.Errorf("--audit-url: %w", err)
	}
	return nil
}

// requireLoopback refuses to load anything but this machine.
func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "https" {
		return fmt.Errorf("target %q: the merchant API is https (mTLS)", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("target %q is not a loopback address", host)
	}
	return nil
}
