// Command quill-load is Quill's load generator. It drives the real server end
// to end — mTLS, request signature (scheme A, or RFC 9421 scheme B with
// --scheme b), nonce, field rules, durable ledger write, signed response —
// and then checks the ledger the run left behind.
//
// Setup comes before the clock starts: it onboards (or reuses) the merchants
// of the scenario, funds fresh payer wallets through the API with the TOPUP
// client (as the dev demo does), signs every request in advance (RSA-2048
// signing costs the client about 1 ms each: pre-signing keeps that out of the
// server's figure) and opens the keep-alive connections. Then it runs
// closed-loop (each connection sends as fast as it is answered) or open-loop
// (--rate: a fixed arrival rate, latency measured from each request's intended
// send time, so a stalled server cannot hide its queue — coordinated omission),
// verifies every response's platform signature (RSA ones with the --crypto
// backend, OpenSSL when it loads), and reports throughput, an HDR
// latency histogram and errors by problem code. Afterwards it reads the ledger
// in PostgreSQL: every 2xx has exactly one entry, nothing else was written,
// every entry balances, and each merchant's balance moved by exactly the
// accepted amounts minus fees. The mixed scenario runs auditor reads over the
// auditor API next to the payments and reports both sides. Any error,
// unverified response, failed auditor read or failed check is a non-zero
// exit.
//
// It refuses any target that is not a loopback address and stops by itself.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "quill-load:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

const examples = `  # against the dev server of scripts/dev.sh: 64 connections, max rate, 20 s
  quill-load --scenario hot -c 64 -n 40000 --duration 20s

  # open loop: 500 payments/s for 20 s; latency from the intended send time
  quill-load --scenario hot -c 64 --rate 500 --duration 20s

  # 1,000 payers paying 100 merchants (onboarded on first use, then reused)
  quill-load --scenario spread --merchants 100 -c 64 -n 20000

  # signed GETs only: signature and replay checks, no ledger write
  quill-load --scenario verify-only -c 64 -n 40000

  # scheme B (RFC 9421): an Ed25519 merchant MB100 (onboarded on first use),
  # Ed25519 response signatures
  quill-load --scheme b --scenario hot -c 64 -n 40000

  # payments on 48 connections while 16 read as an auditor (trial balance,
  # statement pages, journal export) over the auditor listener
  quill-load --scenario mixed -c 64 --audit-share 0.25 -n 20000

  # hold 1,000 idle mTLS connections and report the server's RSS
  quill-load --scenario idle --idle-conns 1000 --server-pid "$(cat var/dev/quill.pid)"

  # machine-readable summary (the human one goes to stderr with --json -)
  quill-load --scenario hot --json result.json`

func rootCmd() *cobra.Command {
	o := defaultOptions()
	cmd := &cobra.Command{
		Use:   "quill-load",
		Short: "Load Quill end to end over mTLS and check the ledger afterwards (loopback only)",
		Long: `quill-load sends pre-signed requests (scheme A, or RFC 9421 with --scheme b)
to a Quill server on this machine over mTLS keep-alive connections, verifies
every response signature, reports throughput and latency percentiles, and
then checks the ledger.

Scenarios:
  hot          --payers wallets pay one merchant (--merchant)
  spread       --payers wallets pay --merchants merchants
  verify-only  signed GETs of --verify-target: signature and replay checks, no write
  mixed        hot, while --audit-share of the connections read as an auditor:
               trial balance, statement pages of the merchant's account, a journal
               export (--audit-reads), over --audit-url with a dev auditor token
               (or QUILL_AUDIT_TOKEN); both sides reported apart
  idle         opens --idle-conns connections, one request on each, holds them for
               --hold, reports the server's RSS (needs --server-pid; scheme A)

Schemes:
  a  WeChat Pay APIv3 style, RSA-2048 merchants (default merchant M100),
     RSA-2048 response signatures
  b  RFC 9421 HTTP Message Signatures, merchants of --merchant-alg (default
     ed25519; merchant MB100, spread prefix LOADB), Ed25519 response signatures

Merchants without dev material in --data-dir are onboarded first; ones whose
profile the server's database lacks are registered for the key they have.
The ledger check needs read access to the server's database (--pg-dsn).
Exit status 1 if any request or auditor read failed, any response signature
did not verify, or the ledger check failed.`,
		Example:       examples,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			sum, err := run(ctx, o, newLogf(o.Quiet))
			if sum != nil {
				if werr := writeReports(sum, o.JSON); werr != nil && err == nil {
					err = werr
				}
			}
			if err == nil && sum != nil && !sum.Passed {
				err = fmt.Errorf("run failed: %s", sum.Failure)
			}
			return err
		},
	}
	cmd.AddCommand(compareCmd())
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", envOr("QUILL_URL", o.URL), "server base URL, loopback only (env QUILL_URL)")
	f.StringVar(&o.DataDir, "data-dir", envOr("QUILL_DATA_DIR", o.DataDir), "dev material directory (env QUILL_DATA_DIR)")
	f.StringVar(&o.PgDSN, "pg-dsn", envOr("QUILL_PG_DSN", o.PgDSN), "the server's PostgreSQL database, for the ledger check (env QUILL_PG_DSN)")
	f.BoolVar(&o.Check, "check", o.Check, "check the ledger after the run (--check=false to skip)")
	f.StringVar(&o.Scenario, "scenario", o.Scenario, "hot, spread, verify-only, mixed or idle")
	f.StringVar(&o.Scheme, "scheme", o.Scheme, "request signatures: a (WeChat Pay APIv3 style) or b (RFC 9421)")
	f.StringVar(&o.Merchant, "merchant", o.Merchant, "the merchant of hot, verify-only and mixed (default M100 for scheme a, MB100 for b)")
	f.StringVar(&o.TopUp, "topup", o.TopUp, "the client allowed to deposit; it funds the wallets")
	f.IntVar(&o.Merchants, "merchants", o.Merchants, "spread: how many merchants the payments are spread over")
	f.StringVar(&o.MerchantPrefix, "merchant-prefix", o.MerchantPrefix, "spread: merchant ids are this prefix and a number (default LOAD for scheme a, LOADB for b)")
	f.StringVar(&o.MerchantAlg, "merchant-alg", o.MerchantAlg, "key algorithm of merchants it onboards: rsa-v1_5-sha256 (scheme a's only one, its default), rsa-pss-sha512, ecdsa-p256-sha256, ed25519 (scheme b's default)")
	f.Int64Var(&o.FeeBps, "fee-bps", o.FeeBps, "fee of merchants it onboards, in basis points")
	f.IntVar(&o.Payers, "payers", o.Payers, "distinct payer wallets, funded before the run")
	f.StringVar(&o.PayerPrefix, "payer-prefix", o.PayerPrefix, "payer user ids are this prefix and a number (default: fresh ids per run); reused wallets are topped up")
	f.IntVarP(&o.Connections, "connections", "c", o.Connections, "concurrent mTLS keep-alive connections (requests in flight)")
	f.IntVarP(&o.Requests, "requests", "n", o.Requests, "closed loop: requests signed in advance (the run ends when they are sent or --duration passes)")
	f.DurationVarP(&o.Duration, "duration", "d", o.Duration, "run length bound; open loop: sends --rate × --duration requests")
	f.Float64Var(&o.Rate, "rate", o.Rate, "open loop: arrival rate in requests/s (0: closed loop, max rate)")
	f.DurationVar(&o.LateAfter, "late-after", o.LateAfter, "open loop: a send this much after its intended time counts as late")
	f.DurationVar(&o.Grace, "grace", o.Grace, "open loop: stop sending this long after --duration if the server has fallen behind")
	f.StringVar(&o.Amount, "amount", o.Amount, "amount of each payment, CNY")
	f.StringVar(&o.VerifyTarget, "verify-target", o.VerifyTarget, "verify-only: the signed GET target")
	f.IntVar(&o.IdleConns, "idle-conns", o.IdleConns, "idle: connections to open and hold")
	f.DurationVar(&o.Hold, "hold", o.Hold, "idle: how long to hold the connections before reading the server's RSS")
	f.IntVar(&o.ServerPID, "server-pid", o.ServerPID, "idle: the server's process id, to read its RSS from /proc/<pid>/status")
	f.DurationVar(&o.Window, "replay-window", o.Window, "the server's replay window: pre-signed timestamps must stay inside it for the whole run")
	f.StringVar(&o.Crypto, "crypto", o.Crypto, "backend verifying RSA response signatures (scheme a): auto (OpenSSL when libcrypto.so.3 loads, else Go), go or openssl")
	f.StringVar(&o.AuditURL, "audit-url", envOr("QUILL_AUDIT_URL", o.AuditURL), "mixed: the auditor API base URL, loopback only (env QUILL_AUDIT_URL)")
	f.Float64Var(&o.AuditShare, "audit-share", o.AuditShare, "mixed: share of --connections that read as an auditor (at least one, and one left for payments)")
	f.StringSliceVar(&o.AuditReads, "audit-reads", o.AuditReads, "mixed: the reads each auditor connection cycles through")
	f.IntVar(&o.ExportEntries, "export-entries", o.ExportEntries, "mixed: entries of each journal export (the last ones before the run)")
	f.IntVar(&o.StatementLimit, "statement-limit", o.StatementLimit, "mixed: lines per statement page (1-1000)")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "per-request timeout")
	f.StringVar(&o.JSON, "json", o.JSON, "write the JSON summary to this file (- for stdout; the text report then goes to stderr)")
	f.BoolVarP(&o.Quiet, "quiet", "q", o.Quiet, "no progress bar or setup messages")
	return cmd
}

// newLogf prints setup progress to stderr unless quiet.
func newLogf(quiet bool) func(string, ...any) {
	if quiet {
		return func(string, ...any) {}
	}
	return func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "quill-load: "+format+"\n", a...)
	}
}

// runContext bounds the whole run, setup included, so it always stops.
func runContext(ctx context.Context, o options) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, o.Duration+o.Grace+o.Hold+30*time.Minute)
}
