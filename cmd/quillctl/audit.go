package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/internal/atomicfile"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger"
	"github.com/quillpay/quill/ledger/postgres"
)

// auditFlags are how the auditor commands reach the auditor API.
type auditFlags struct {
	url   string
	token string
	ca    string
}

func (f *auditFlags) bind(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.url, "audit-url", envOr("QUILL_AUDIT_URL", "https://127.0.0.1:8444"), "auditor API base URL (env QUILL_AUDIT_URL)")
	cmd.PersistentFlags().StringVar(&f.token, "token", "", "auditor bearer token (env QUILL_AUDIT_TOKEN; default: a short-lived dev token when --data-dir holds dev material)")
	cmd.PersistentFlags().StringVar(&f.ca, "ca", "", "CA certificate that signs the server's (default <data-dir>/ca.pem)")
}

// auditClient calls the auditor API with a bearer token.
type auditClient struct {
	base  string
	token string
	http  *http.Client
}

// devAuditorToken mints a dev auditor token, refusing unless both the data
// directory holds dev material and the configuration is a dev one: with keys
// in Vault the server trusts the auditors' identity provider, not the dev key.
func (a *app) devAuditorToken(sub string, scope audit.Scope, ttl time.Duration) (string, error) {
	if addr := a.conf.get("QUILL_VAULT_ADDR"); addr != "" {
		return "", fmt.Errorf("the configuration is not a dev one (QUILL_VAULT_ADDR=%s): dev auditor tokens are refused; get a token from your auditors' identity provider and pass --token", addr)
	}
	return devenv.AuditorToken(a.dataDir, sub, scope, ttl, time.Now())
}

func newAuditClient(a *app, f *auditFlags) (*auditClient, error) {
	dir := a.dataDir
	tok := f.token
	if tok == "" {
		tok = os.Getenv("QUILL_AUDIT_TOKEN")
	}
	if tok == "" {
		if !devenv.IsDev(dir) {
			return nil, errors.New("no auditor token: pass --token or set QUILL_AUDIT_TOKEN")
		}
		var err error
		if tok, err = a.devAuditorToken("quillctl", audit.All, 15*time.Minute); err != nil {
			return nil, err
		}
	}
	ca := f.ca
	if ca == "" {
		ca = filepath.Join(dir, "ca.pem")
	}
	caPEM, err := os.ReadFile(ca)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", ca)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	return &auditClient{base: strings.TrimRight(f.url, "/"), token: tok, http: &http.Client{Transport: tr}}, nil
}

func (c *auditClient) do(ctx context.Context, target string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		var p api.Problem
		if json.Unmarshal(b, &p) == nil && p.Code != "" {
			if p.Detail != "" {
				return nil, fmt.Errorf("GET %s: %d %s: %s (%s)", target, res.StatusCode, p.Code, p.Title, p.Detail)
			}
			return nil, fmt.Errorf("GET %s: %d %s: %s", target, res.StatusCode, p.Code, p.Title)
		}
		return nil, fmt.Errorf("GET %s: %d", target, res.StatusCode)
	}
	return res, nil
}

func (c *auditClient) getJSON(ctx context.Context, target string, v any) error {
	res, err := c.do(ctx, target)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(v)
}

// periodFlags select a period by time or by entry id.
type periodFlags struct {
	from, to           string
	fromEntry, toEntry int64
}

func (p *periodFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.from, "from", "", "start of the period, RFC 3339 (inclusive)")
	cmd.Flags().StringVar(&p.to, "to", "", "end of the period, RFC 3339 (exclusive)")
	cmd.Flags().Int64Var(&p.fromEntry, "from-entry", 0, "first entry id of the period")
	cmd.Flags().Int64Var(&p.toEntry, "to-entry", 0, "last entry id of the period")
}

func (p *periodFlags) query(q url.Values) {
	if p.from != "" {
		q.Set("from", p.from)
	}
	if p.to != "" {
		q.Set("to", p.to)
	}
	if p.fromEntry > 0 {
		q.Set("from_entry", strconv.FormatInt(p.fromEntry, 10))
	}
	if p.toEntry > 0 {
		q.Set("to_entry", strconv.FormatInt(p.toEntry, 10))
	}
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func auditCmd(a *app) *cobra.Command {
	dir := &a.dataDir
	var af auditFlags
	cmd := &cobra.Command{Use: "audit", Short: "Auditor tools: tokens, chain and entry verification, checkpoints"}
	af.bind(cmd)

	var sub, scope string
	var ttl time.Duration
	token := &cobra.Command{
		Use: "token",
		Example: `  quillctl audit token
  quillctl audit token --sub alice --scope M100,M200 --ttl 5m`,
		Short: "Mint a dev auditor JWT from the dev keys (refused outside a dev data dir or with a non-dev configuration)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := audit.All
			if scope != "" {
				var ids []string
				for _, id := range strings.Split(scope, ",") {
					if id = strings.TrimSpace(id); id != "" {
						ids = append(ids, id)
					}
				}
				if len(ids) == 0 {
					return errors.New("--scope names no merchant")
				}
				s = audit.Merchants(ids...)
			}
			tok, err := a.devAuditorToken(sub, s, ttl)
			if err != nil {
				return err
			}
			fmt.Println(tok)
			return nil
		},
	}
	token.Flags().StringVar(&sub, "sub", "dev-auditor", "auditor name (sub claim)")
	token.Flags().StringVar(&scope, "scope", "", "comma-separated merchant ids the token may see (default: all)")
	token.Flags().DurationVar(&ttl, "ttl", 15*time.Minute, "token lifetime")

	var from, to int64
	verifyChain := &cobra.Command{
		Use: "verify-chain",
		Example: `  quillctl audit verify-chain
  quillctl audit verify-chain --from 1000 --to 2000`,
		Short: "Recompute the hash chain over a range on the server and check every checkpoint signature here",
		Long: `Asks the auditor API to recompute the chain over --from..--to (default: all)
and to check the checkpoints in it, then checks every listed checkpoint's
signature locally with the published platform keys. Exits 1 naming the first
entry or checkpoint that fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAuditClient(a, &af)
			if err != nil {
				return err
			}
			return verifyChain(cmd.Context(), c, from, to, os.Stdout)
		},
	}
	verifyChain.Flags().Int64Var(&from, "from", 0, "first entry id (default 1)")
	verifyChain.Flags().Int64Var(&to, "to", 0, "last entry id (default: the head)")

	verifyEntry := &cobra.Command{
		Use:     "verify-entry ID",
		Example: `  quillctl audit verify-entry 42`,
		Short:   "Fetch an entry's evidence and re-verify it offline: hash, fingerprint and the merchant's signature",
		Long: `Fetches entry ID with its evidence and, locally: recomputes its fingerprint,
evidence digest and chain hash; and verifies the scheme A signature over the
exact method, target, timestamp, nonce and body received, with the merchant's
key version named by the evidence (from the key store under --data-dir),
checking that version was valid when the entry was written. Exits 1 on any
failure.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAuditClient(a, &af)
			if err != nil {
				return err
			}
			var e api.EntryJSON
			if err := c.getJSON(cmd.Context(), "/v1/audit/entries/"+url.PathEscape(args[0]), &e); err != nil {
				return err
			}
			ks, err := keys.OpenFileStore(filepath.Join(*dir, "keys"), keys.FileOptions{})
			if err != nil {
				return err
			}
			return verifyEntry(cmd.Context(), e, ks, os.Stdout)
		},
	}

	var dsn string
	checkpoint := &cobra.Command{
		Use:     "checkpoint",
		Example: `  quillctl audit checkpoint`,
		Short:   "Sign a checkpoint of the chain head now, with the platform key (operator; needs the database)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := keys.OpenFileStore(filepath.Join(*dir, "keys"), keys.FileOptions{})
			if err != nil {
				return err
			}
			k, err := ks.PlatformKey(cmd.Context())
			if err != nil {
				return err
			}
			store, err := postgres.Open(cmd.Context(), dsn, postgres.Options{})
			if err != nil {
				return err
			}
			defer store.Close()
			cp, _, err := store.CreateCheckpoint(cmd.Context(), time.Now(), k.ID(), k.Signer(), false)
			if err != nil {
				return err
			}
			fmt.Printf("checkpoint %d: entry %d, head %x, signed by %s at %s\n", cp.ID, cp.Seq, cp.Head, cp.KeyID, cp.CreatedAt.Format(time.RFC3339Nano))
			return nil
		},
	}
	checkpoint.Flags().StringVar(&dsn, "pg-dsn", envOr("QUILL_PG_DSN", "postgres://postgres@127.0.0.1:5432/quill?sslmode=disable"), "PostgreSQL DSN (env QUILL_PG_DSN)")

	cmd.AddCommand(token, verifyChain, verifyEntry, checkpoint, auditEventsCmd(a, &af))
	return cmd
}

// verifyChain runs the server-side recomputation and checks the checkpoint
// signatures locally.
func verifyChain(ctx context.Context, c *auditClient, from, to int64, w io.Writer) error {
	q := url.Values{}
	if from > 0 {
		q.Set("from", strconv.FormatInt(from, 10))
	}
	if to > 0 {
		q.Set("to", strconv.FormatInt(to, 10))
	}
	var rep api.ChainReportJSON
	if err := c.getJSON(ctx, withQuery("/v1/audit/chain/verify", q), &rep); err != nil {
		return err
	}
	var published struct{ Keys []api.PlatformKeyJSON }
	if err := c.getJSON(ctx, "/v1/audit/platform-keys", &published); err != nil {
		return err
	}
	pubs := map[string]crypto.PublicKey{}
	for _, k := range published.Keys {
		if k.Status == string(keys.Revoked) {
			continue
		}
		pub, err := keys.ParsePublicKeyPEM([]byte(k.PEM))
		if err != nil {
			return fmt.Errorf("platform key %s: %w", k.KeyID, err)
		}
		pubs[k.KeyID] = pub
	}
	checked, badLocal := 0, ""
	for after := int64(0); ; {
		var page struct {
			Checkpoints []api.CheckpointJSON
			NextAfter   int64 `json:"next_after"`
		}
		if err := c.getJSON(ctx, fmt.Sprintf("/v1/audit/checkpoints?after=%d&limit=1000", after), &page); err != nil {
			return err
		}
		for _, cj := range page.Checkpoints {
			if cj.Seq < rep.From-1 || (cj.Seq > rep.To && rep.To != rep.Head) {
				continue
			}
			checked++
			cp, err := checkpointFromJSON(cj)
			if err == nil {
				if pub, ok := pubs[cp.KeyID]; !ok {
					err = fmt.Errorf("signed by unknown or revoked key %s", cp.KeyID)
				} else {
					err = ledger.VerifyCheckpoint(cp, pub)
				}
			}
			if err != nil && badLocal == "" {
				badLocal = fmt.Sprintf("checkpoint %d (entry %d): %v", cj.ID, cj.Seq, err)
			}
		}
		if page.NextAfter == 0 {
			break
		}
		after = page.NextAfter
	}
	fmt.Fprintf(w, "entries %d..%d (head %d): %d recomputed\n", rep.From, rep.To, rep.Head, rep.Entries)
	fmt.Fprintf(w, "checkpoints: %d checked by the server, %d signatures checked here\n", rep.Checkpoints, checked)
	var fails []string
	if rep.FirstBad != 0 {
		fails = append(fails, fmt.Sprintf("first bad entry: %d: %s", rep.FirstBad, rep.Reason))
	}
	if rep.BadCheckpoint != 0 {
		fails = append(fails, fmt.Sprintf("bad checkpoint (server): %d: %s", rep.BadCheckpoint, rep.CheckpointReason))
	}
	if badLocal != "" {
		fails = append(fails, "bad checkpoint (here): "+badLocal)
	}
	if len(fails) > 0 {
		for _, f := range fails {
			fmt.Fprintln(w, f)
		}
		return fmt.Errorf("chain verification failed: %s", fails[0])
	}
	fmt.Fprintln(w, "chain ok")
	return nil
}

func checkpointFromJSON(cj api.CheckpointJSON) (ledger.Checkpoint, error) {
	cp := ledger.Checkpoint{ID: cj.ID, Seq: cj.Seq, CreatedAt: time.UnixMicro(cj.CreatedMicros).UTC(), KeyID: cj.KeyID, Algorithm: cj.Algorithm}
	head, err := hex.DecodeString(cj.Head)
	if err != nil || len(head) != 32 {
		return cp, errors.New("malformed head hash")
	}
	copy(cp.Head[:], head)
	if cp.Signature, err = base64.StdEncoding.DecodeString(cj.Signature); err != nil {
		return cp, errors.New("malformed signature")
	}
	return cp, nil
}

// verifyEntry re-verifies an entry from its evidence alone, with the
// merchant's key from ks: the same checks as the server's
// GET /v1/audit/entries/{id}/verification (api.VerifyEntry), run here.
func verifyEntry(ctx context.Context, e api.EntryJSON, ks keys.Store, w io.Writer) error {
	v, err := api.VerifyEntry(ctx, e, ks)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "entry %d: %s %s order %s, %s %s, created %s\n", e.ID, e.Kind, e.Merchant, e.OrderID, e.Amount, e.Currency, e.CreatedAt)
	fmt.Fprintf(w, "  request: %s %s, %d-byte body, body sha256 %s\n", v.Request.Method, v.Request.Target, v.Request.BodyBytes, v.Request.BodySHA256)
	if s := v.Signature; s.KeyStatus != "" {
		fmt.Fprintf(w, "  key %s of %s: %s, registered %s\n", s.KeyID, e.Merchant, s.KeyStatus, s.KeyRegistered)
	}
	if s := v.Signature; s.SignedAt != "" {
		fmt.Fprintf(w, "  signed at %s, %s before it was recorded\n", s.SignedAt, s.SignedBefore)
	}
	if !v.OK {
		for _, f := range v.Failures {
			fmt.Fprintln(w, "  FAIL:", f)
		}
		return fmt.Errorf("entry %d: %s", e.ID, v.Failures[0])
	}
	fmt.Fprintf(w, "  hash, fingerprint and signature verify: entry %d is authentic\n", e.ID)
	return nil
}

func reportCmd(a *app) *cobra.Command {
	var af auditFlags
	cmd := &cobra.Command{Use: "report", Short: "Auditor reports over the auditor API: trial balance, statement, export"}
	af.bind(cmd)

	var asOf string
	var asOfEntry int64
	tb := &cobra.Command{
		Use: "trial-balance",
		Example: `  quillctl report trial-balance
  quillctl report trial-balance --as-of 2026-12-01T00:00:00Z`,
		Short: "Every account's debits, credits and balance as of a time or entry (default: now)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAuditClient(a, &af)
			if err != nil {
				return err
			}
			q := url.Values{}
			if asOf != "" {
				q.Set("as_of", asOf)
			}
			if asOfEntry > 0 {
				q.Set("as_of_entry", strconv.FormatInt(asOfEntry, 10))
			}
			var out struct {
				AsOfEntry int64   `json:"as_of_entry"`
				AsOfTime  *string `json:"as_of_time"`
				Accounts  []struct{ Account, Currency, Type, Debit, Credit, Balance string }
				Totals    []struct {
					Currency, Debit, Credit string
					Balanced                bool
				}
				Checked bool `json:"checked_against_balances"`
			}
			if err := c.getJSON(cmd.Context(), withQuery("/v1/audit/trial-balance", q), &out); err != nil {
				return err
			}
			at := "-"
			if out.AsOfTime != nil {
				at = *out.AsOfTime
			}
			fmt.Printf("trial balance as of entry %d (%s)\n", out.AsOfEntry, at)
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "account\tcurrency\ttype\tdebit\tcredit\tbalance\t")
			for _, a := range out.Accounts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", a.Account, a.Currency, a.Type, a.Debit, a.Credit, a.Balance)
			}
			for _, t := range out.Totals {
				fmt.Fprintf(tw, "TOTAL\t%s\t\t%s\t%s\t\t\n", t.Currency, t.Debit, t.Credit)
			}
			tw.Flush()
			for _, t := range out.Totals {
				if !t.Balanced {
					return fmt.Errorf("%s does not balance", t.Currency)
				}
			}
			if out.Checked {
				fmt.Println("stored balances agree with the postings")
			}
			return nil
		},
	}
	tb.Flags().StringVar(&asOf, "as-of", "", "RFC 3339 time: include entries created at or before it")
	tb.Flags().Int64Var(&asOfEntry, "as-of-entry", 0, "include entries up to this id")

	var currency string
	var limit int
	var sp periodFlags
	st := &cobra.Command{
		Use:     "statement ACCOUNT",
		Example: `  quillctl report statement merchant:M100 --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z`,
		Short:   "An account's statement for a period: opening balance, every posting with its running balance, closing balance",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAuditClient(a, &af)
			if err != nil {
				return err
			}
			q := url.Values{"currency": {currency}, "limit": {strconv.Itoa(limit)}}
			sp.query(q)
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			for page := 0; ; page++ {
				var out struct {
					Account, Currency string
					FromEntry         int64  `json:"from_entry"`
					ToEntry           int64  `json:"to_entry"`
					Opening           string `json:"opening_balance"`
					Closing           string `json:"closing_balance"`
					Lines             []struct {
						EntryID                int64  `json:"entry_id"`
						CreatedAt              string `json:"created_at"`
						Kind, Merchant         string
						OrderID                string `json:"order_id"`
						Debit, Credit, Balance string
					}
					Next string `json:"next_cursor"`
				}
				if err := c.getJSON(cmd.Context(), withQuery("/v1/audit/accounts/"+url.PathEscape(args[0])+"/statement", q), &out); err != nil {
					return err
				}
				if page == 0 {
					fmt.Fprintf(tw, "%s %s, entries %d..%d\nopening balance\t\t\t\t\t\t%s\n", out.Account, out.Currency, out.FromEntry, out.ToEntry, out.Opening)
					fmt.Fprintln(tw, "entry\tcreated\tkind\tmerchant\torder\tdebit\tcredit\tbalance")
				}
				for _, l := range out.Lines {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.EntryID, l.CreatedAt, l.Kind, l.Merchant, l.OrderID, l.Debit, l.Credit, l.Balance)
				}
				if out.Next == "" {
					fmt.Fprintf(tw, "closing balance\t\t\t\t\t\t\t%s\n", out.Closing)
					break
				}
				q = url.Values{"currency": {currency}, "limit": {strconv.Itoa(limit)}, "cursor": {out.Next}}
			}
			return tw.Flush()
		},
	}
	st.Flags().StringVar(&currency, "currency", "CNY", "the account's currency")
	st.Flags().IntVar(&limit, "limit", 500, "lines per page (1..1000)")
	sp.bind(st)

	var ep periodFlags
	var ex exportOptions
	export := &cobra.Command{
		Use:     "export",
		Example: `  quillctl report export --format ndjson --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z -o journal.ndjson`,
		Short:   "Export the journal for a period as CSV or NDJSON to a file, with progress; rerun to resume an interrupted export",
		Long: `Streams the journal (one row per posting) into --out. Progress (rows, bytes
and an ETA) goes to stderr. The position reached is kept in <out>.export-state,
so if the export is interrupted (Ctrl-C, a dropped connection) running the same
command again resumes where it stopped; the state file is removed when the
export completes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAuditClient(a, &af)
			if err != nil {
				return err
			}
			q := url.Values{}
			ep.query(q)
			ex.params = q
			ex.progress = os.Stderr
			return runExport(cmd.Context(), c, ex)
		},
	}
	export.Flags().StringVar(&ex.format, "format", "csv", "csv or ndjson")
	export.Flags().StringVarP(&ex.out, "out", "o", "", "output file (required)")
	export.Flags().BoolVar(&ex.force, "force", false, "overwrite --out if it exists without a resumable state")
	export.MarkFlagRequired("out")
	ep.bind(export)

	cmd.AddCommand(tb, st, export)
	return cmd
}

// exportOptions configure runExport.
type exportOptions struct {
	format   string
	out      string
	force    bool
	params   url.Values
	progress io.Writer // nil: no progress bar
}

// exportState is what <out>.export-state keeps: the sealed range, and the
// last row safely in the file with the file's length after it.
type exportState struct {
	Format string `json:"format"`
	Params string `json:"params"`
	Cursor string `json:"cursor"`
	After  string `json:"after,omitempty"` // ENTRY:SEQ of the last row written
	Offset int64  `json:"offset"`          // bytes of out holding complete rows
	Rows   int64  `json:"rows"`
}

// stateEvery is how often the export state is saved: each save is two
// fsyncs, so by time (and after an interruption), not by rows.
const stateEvery = time.Second

// barEvery is how many rows pass between progress bar updates.
const barEvery = 1000

func runExport(ctx context.Context, c *auditClient, o exportOptions) error {
	if o.format != "csv" && o.format != "ndjson" {
		return errors.New("--format must be csv or ndjson")
	}
	statePath := o.out + ".export-state"
	var st exportState
	resume := false
	if b, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("%s: %w", statePath, err)
		}
		if st.Format != o.format || st.Params != o.params.Encode() {
			return fmt.Errorf("%s is the state of another export (format %s, %s); remove it to start over", statePath, st.Format, st.Params)
		}
		resume = true
	} else if _, err := os.Stat(o.out); err == nil && !o.force {
		return fmt.Errorf("%s exists; pass --force to overwrite it", o.out)
	}

	q := url.Values{}
	for k, v := range o.params {
		q[k] = v
	}
	q.Set("format", o.format)
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if resume {
		q.Set("cursor", st.Cursor)
		if st.After != "" {
			q.Set("after", st.After)
		}
		flags = os.O_WRONLY
	}
	res, err := c.do(ctx, withQuery("/v1/audit/journal", q))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	f, err := os.OpenFile(o.out, flags, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if resume {
		// Drop whatever partial row followed the last saved position. A file
		// shorter than that (its tail lost in a system crash) cannot resume.
		if fi, err := f.Stat(); err != nil {
			return err
		} else if fi.Size() < st.Offset {
			return fmt.Errorf("%s has %d bytes but its state says %d were written: remove %s and export again", o.out, fi.Size(), st.Offset, statePath)
		}
		if err := f.Truncate(st.Offset); err != nil {
			return err
		}
		if _, err := f.Seek(st.Offset, io.SeekStart); err != nil {
			return err
		}
	} else {
		st = exportState{Format: o.format, Params: o.params.Encode(), Cursor: res.Header.Get(api.HeaderExportCursor)}
	}
	remaining, _ := strconv.ParseInt(res.Header.Get(api.HeaderExportRows), 10, 64)
	var bar *progressbar.ProgressBar
	if o.progress != nil {
		bar = progressbar.NewOptions64(remaining+st.Rows, progressbar.OptionSetWriter(o.progress),
			progressbar.OptionSetDescription("exporting"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(o.progress) }))
		bar.Set64(st.Rows)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	written := st.Offset
	save := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		b, _ := json.Marshal(st)
		return atomicfile.Write(statePath, b, 0o600)
	}
	// row reads the next row; rows are copied to the file as received (the
	// CSV reader reads through a tee into bw), and end is the input offset
	// just past the row, so the state can name the last complete row.
	var row func() (entry int64, seq int32, end int64, err error)
	base := st.Offset
	if o.format == "csv" {
		cr := csv.NewReader(io.TeeReader(bufio.NewReaderSize(res.Body, 256<<10), bw))
		cr.ReuseRecord = true
		cr.FieldsPerRecord = len(api.ExportColumns)
		first := !resume
		row = func() (int64, int32, int64, error) {
			rec, err := cr.Read()
			if err != nil {
				return 0, 0, 0, err
			}
			if first { // the header row
				first = false
				if strings.Join(rec, ",") != strings.Join(api.ExportColumns, ",") {
					return 0, 0, 0, errors.New("unexpected CSV header")
				}
				return -1, 0, cr.InputOffset(), nil
			}
			e, err1 := strconv.ParseInt(rec[0], 10, 64)
			s, err2 := strconv.ParseInt(rec[1], 10, 32)
			if err1 != nil || err2 != nil {
				return 0, 0, 0, errors.New("malformed row")
			}
			return e, int32(s), cr.InputOffset(), nil
		}
	} else {
		br := bufio.NewReaderSize(res.Body, 256<<10)
		var off int64
		row = func() (int64, int32, int64, error) {
			line, err := br.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				var long []byte
				long, err = br.ReadBytes('\n')
				line = append(append([]byte(nil), line...), long...)
			}
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF // a row without its newline was cut
			}
			if err != nil {
				return 0, 0, 0, err
			}
			e, s, ok := ndjsonPosition(line)
			if !ok {
				return 0, 0, 0, errors.New("malformed row")
			}
			if _, err := bw.Write(line); err != nil {
				return 0, 0, 0, err
			}
			off += int64(len(line))
			return e, s, off, nil
		}
	}
	lastSave := time.Now()
	pending := 0 // rows not yet shown on the bar
	for {
		e, s, end, err := row()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if serr := save(); serr != nil {
				return serr
			}
			return fmt.Errorf("export interrupted after %d rows (rerun to resume): %w", st.Rows, err)
		}
		written = base + end
		st.Offset = written
		if e < 0 {
			continue
		}
		st.Rows++
		st.After = strconv.FormatInt(e, 10) + ":" + strconv.Itoa(int(s))
		if pending++; bar != nil && pending == barEvery {
			bar.Add(pending)
			pending = 0
			bar.Describe(fmt.Sprintf("exporting (%.1f MB)", float64(written)/1e6))
		}
		if st.Rows%barEvery == 0 && time.Since(lastSave) >= stateEvery {
			if err := save(); err != nil {
				return err
			}
			lastSave = time.Now()
		}
	}
	if bar != nil && pending > 0 {
		bar.Add(pending)
	}
	if res.Trailer.Get(api.HeaderExportComplete) == "" {
		if err := save(); err != nil {
			return err
		}
		return fmt.Errorf("export interrupted after %d rows: the server did not confirm completion (rerun to resume)", st.Rows)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if bar != nil {
		bar.Finish()
	}
	if o.progress != nil {
		fmt.Fprintf(o.progress, "%d rows, %d bytes written to %s\n", st.Rows, written, o.out)
	}
	if err := os.Remove(statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ndjsonPosition reads entry_id and seq from an exported NDJSON row. Rows
// start {"entry_id":N,"seq":M, as the server writes them; anything else goes
// through the JSON decoder.
func ndjsonPosition(line []byte) (int64, int32, bool) {
	const p1, p2 = `{"entry_id":`, `,"seq":`
	if rest, ok := bytes.CutPrefix(line, []byte(p1)); ok {
		if i := bytes.IndexByte(rest, ','); i > 0 {
			if after, ok := bytes.CutPrefix(rest[i:], []byte(p2)); ok {
				if j := bytes.IndexByte(after, ','); j > 0 {
					e, err1 := strconv.ParseInt(string(rest[:i]), 10, 64)
					s, err2 := strconv.ParseInt(string(after[:j]), 10, 32)
					if err1 == nil && err2 == nil && bytes.HasSuffix(line, []byte("}\n")) {
						return e, int32(s), true
					}
				}
			}
		}
	}
	var pos struct {
		EntryID *int64 `json:"entry_id"`
		Seq     *int32 `json:"seq"`
	}
	if json.Unmarshal(line, &pos) != nil || pos.EntryID == nil || pos.Seq == nil {
		return 0, 0, false
	}
	return *pos.EntryID, *pos.Seq, true
}
