package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"time"

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
)

func defaultOptions() options {
	return options{
		URL:            "https://127.0.0.1:8443",
		DataDir:        "var/dev",
		PgDSN:          "postgres://postgres@127.0.0.1:5432/quill?sslmode=disable",
		Check:          true,
		Scenario:       scenarioHot,
		Merchant:       "M100",
		TopUp:          "TOPUP",
		Merchants:      100,
		MerchantPrefix: "LOAD",
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
	}
}

// openLoop reports whether requests arrive at a fixed rate.
func (o *options) openLoop() bool { return o.Rate > 0 }

// writes reports whether the scenario writes payments.
func (o *options) writes() bool { return o.Scenario == scenarioHot || o.Scenario == scenarioSpread }

// validate checks o and fills in what follows from it (the open-loop request
// count, the parsed amount).
func (o *options) validate() error {
	if err := requireLoopback(o.URL); err != nil {
		return err
	}
	switch o.Scenario {
	case scenarioHot, scenarioSpread, scenarioVerify, scenarioIdle:
	case "mixed":
		return errors.New("scenario mixed needs the auditor reports, which do not exist yet")
	default:
		return fmt.Errorf("unknown scenario %q (hot, spread, verify-only, idle)", o.Scenario)
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
