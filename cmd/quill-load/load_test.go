package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/policy"
)

// server is a real quill serve subprocess on free loopback ports, with its
// own dev material, a fresh database and a unique Redis prefix.
type server struct {
	url, ops, audit, dir, dsn string
	pid                       int
}

// startQuill builds bin/quill into a temporary directory and runs it.
func startQuill(t *testing.T, extra ...string) *server {
	t.Helper()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "quill")
	build := exec.Command("go", "build", "-o", bin, "github.com/quillpay/quill/cmd/quill")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build quill: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "dev")
	now := time.Now()
	if err := devenv.Init(dir, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	s := &server{dir: dir, dsn: testenv.Postgres(t)}
	reg, err := devenv.OpenRegistry(context.Background(), s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, m := range []policy.Merchant{
		{ID: "M100", Name: "demo", FeeBps: 60},
		{ID: "TOPUP", Name: "top-up", CanDeposit: true},
	} {
		if _, err := devenv.AddMerchant(context.Background(), dir, reg, m, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	apiAddr, opsAddr, auditAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	s.url, s.ops, s.audit = "https://"+apiAddr, "http://"+opsAddr, "https://"+auditAddr
	logf, err := os.Create(filepath.Join(tmp, "quill.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--addr", apiAddr, "--ops-addr", opsAddr, "--audit-addr", auditAddr, "--data-dir", dir,
		"--pg-dsn", s.dsn, "--redis-addr", testenv.RedisAddr(t),
		"--redis-prefix", "quilltest:load:" + testenv.Random(4) + ":", "--redis-timeout", "2s", "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.pid = cmd.Process.Pid
	// exited is closed once the process is gone, so the ready loop and the
	// cleanup can both see it (a value sent once could be taken by only one).
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("server log:\n%s", b)
			}
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(s.ops + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("quill exited: %v\n%s", waitErr, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("quill not ready in 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *server) options(scenario string) options {
	o := defaultOptions()
	o.URL, o.AuditURL, o.DataDir, o.PgDSN, o.Scenario = s.url, s.audit, s.dir, s.dsn, scenario
	o.Connections, o.Payers, o.Requests, o.Duration, o.Quiet = 8, 20, 300, time.Minute, true
	return o
}

func mustPass(t *testing.T, sum *summary, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if sum == nil {
		t.Fatal("no summary")
	}
	var b strings.Builder
	writeText(&b, sum)
	if !sum.Passed || sum.Failed != 0 || sum.Unverified != 0 || sum.OK != int64(sum.Planned) {
		t.Fatalf("run did not pass:\n%s", b.String())
	}
	t.Logf("\n%s", b.String())
}

// TestSmoke runs the generator against the real server: a few hundred
// payments, signed GETs and idle connections, in scheme A and B, and
// payments beside auditor reads, each with the ledger check; then shows that
// the check catches what it is there to catch.
func TestSmoke(t *testing.T) {
	s := startQuill(t)
	ctx := context.Background()

	t.Run("hot", func(t *testing.T) {
		sum, err := run(ctx, s.options(scenarioHot), t.Logf)
		mustPass(t, sum, err)
		c := sum.Ledger
		if c == nil || !c.Passed || c.NewEntries != 300+sum.Setup.Deposits || c.Expected != c.NewEntries || c.Accounts != 2+20 {
			t.Fatalf("ledger check %+v", c)
		}
		if sum.Latency.Count != 300 || sum.Latency.P50 <= 0 || sum.Latency.Max < sum.Latency.P99 {
			t.Fatalf("latency %+v", sum.Latency)
		}
		if c := sum.CPU; c == nil || c.GeneratorSeconds <= 0 || c.MachineSeconds < c.GeneratorSeconds {
			t.Fatalf("cpu %+v", sum.CPU)
		}
		if la := sum.LoadAverage; la[0] < 0 || la[1] < 0 {
			t.Fatalf("load average %v", la)
		}
	})

	t.Run("server cpu", func(t *testing.T) {
		o := s.options(scenarioVerify)
		o.Requests, o.ServerPID = 100, s.pid
		sum, err := run(ctx, o, t.Logf)
		mustPass(t, sum, err)
		// Each response is an RSA-2048 signature: well over 100 µs of server CPU.
		if c := sum.CPU; c == nil || c.ServerUsPerOK < 100 || c.ServerSeconds > c.MachineSeconds {
			t.Fatalf("cpu %+v", sum.CPU)
		}
	})

	t.Run("open-loop", func(t *testing.T) {
		o := s.options(scenarioHot)
		o.Rate, o.Duration = 100, 2*time.Second
		sum, err := run(ctx, o, t.Logf)
		mustPass(t, sum, err)
		if sum.Planned != 200 || sum.Mode != "open" || sum.Service == nil || sum.Lateness == nil {
			t.Fatalf("open loop summary %+v", sum)
		}
		// 200 requests at 100/s cannot finish before their last due time.
		if sum.Seconds < 1.98 {
			t.Fatalf("open loop took %.2f s, want ≥ 1.99", sum.Seconds)
		}
	})

	t.Run("spread", func(t *testing.T) {
		o := s.options(scenarioSpread)
		o.Merchants, o.Requests, o.Payers, o.Connections = 2, 40, 10, 4
		sum, err := run(ctx, o, t.Logf)
		mustPass(t, sum, err)
		if sum.Setup.MerchantsCreated != 2 || sum.Setup.Lanes != 2 || sum.Ledger.Accounts != 1+2+10 {
			t.Fatalf("spread setup %+v, ledger %+v", sum.Setup, sum.Ledger)
		}
		// Run again: the merchants are reused.
		sum, err = run(ctx, o, t.Logf)
		mustPass(t, sum, err)
		if sum.Setup.MerchantsCreated != 0 {
			t.Fatalf("second spread run onboarded %d merchants", sum.Setup.MerchantsCreated)
		}
	})

	t.Run("verify-only", func(t *testing.T) {
		o := s.options(scenarioVerify)
		o.Requests = 150
		sum, err := run(ctx, o, t.Logf)
		mustPass(t, sum, err)
		if sum.Ledger.NewEntries != 0 || sum.Setup.Deposits != 0 {
			t.Fatalf("verify-only wrote: %+v", sum.Ledger)
		}
	})

	t.Run("hot scheme B", func(t *testing.T) {
		o := s.options(scenarioHot)
		o.Scheme = schemeB
		sum, err := run(ctx, o, t.Logf)
		mustPass(t, sum, err)
		// MB100 is onboarded with an Ed25519 key on first use.
		if sum.Scheme != schemeB || sum.Setup.MerchantsCreated != 1 || sum.Ledger.NewEntries != 300+sum.Setup.Deposits || sum.Ledger.Accounts != 2+20 {
			t.Fatalf("scheme B: scheme %q, setup %+v, ledger %+v", sum.Scheme, sum.Setup, sum.Ledger)
		}
		mb, err := devenv.LoadMerchant(s.dir, "MB100")
		if err != nil || mb.Algorithm != keys.Ed25519 {
			t.Fatalf("MB100: %v, algorithm %q", err, mb.Algorithm)
		}
	})

	t.Run("verify-only scheme B", func(t *testing.T) {
		o := s.options(scenarioVerify)
		o.Scheme, o.Requests = schemeB, 100
		sum, err := run(ctx, o, t.Logf)
		mustPass(t, sum, err)
		if sum.Setup.MerchantsCreated != 0 || sum.Ledger.NewEntries != 0 {
			t.Fatalf("verify-only scheme B: setup %+v, ledger %+v", sum.Setup, sum.Ledger)
		}
	})

	t.Run("spread scheme B", func(t *testing.T) {
		o := s.options(scenarioSpread)
		o.Scheme, o.Merchants, o.Requests, o.Payers, o.Connections = schemeB, 2, 40, 10, 4
		sum, err := run(ctx, o, t.Logf)
		mustPass(t, sum, err)
		if sum.Setup.MerchantsCreated != 2 || sum.Ledger.Accounts != 1+2+10 {
			t.Fatalf("spread scheme B setup %+v, ledger %+v", sum.Setup, sum.Ledger)
		}
		for _, id := range []string{"LOADB00001", "LOADB00002"} {
			if m, err := devenv.LoadMerchant(s.dir, id); err != nil || m.Algorithm != keys.Ed25519 {
				t.Fatalf("%s: %v, algorithm %q", id, err, m.Algorithm)
			}
		}
	})

	t.Run("mixed", func(t *testing.T) {
		o := s.options(scenarioMixed)
		o.Scheme, o.AuditShare, o.ExportEntries, o.StatementLimit, o.Requests = schemeB, 0.375, 50, 20, 150
		sum, err := run(ctx, o, t.Logf)
		mustPass(t, sum, err)
		a := sum.Audit
		// 8 connections: 3 read as an auditor, each starting its cycle at
		// another read, so every read ran at least once.
		if a == nil || a.Connections != 3 || sum.Setup.Lanes != 5 || a.Failed != 0 || len(a.ByRead) != 3 {
			t.Fatalf("mixed: lanes %d, audit %+v", sum.Setup.Lanes, a)
		}
		for _, k := range allReads {
			if r := a.ByRead[k]; r.OK < 1 || r.Items < 1 || r.Latency.Count != r.OK {
				t.Errorf("read %s: %+v", k, r)
			}
		}
		// The export covers the 50 entries before the run (deposits of
		// earlier subtests included), 2 or 3 postings each.
		if a.ExportRange[1]-a.ExportRange[0] != 49 || a.ExportRows < 100 || a.ExportRows > 150 {
			t.Errorf("export range %v, %d rows", a.ExportRange, a.ExportRows)
		}
		if sum.Ledger.NewEntries != 150+sum.Setup.Deposits {
			t.Errorf("ledger %+v", sum.Ledger)
		}
	})

	t.Run("statement before the account exists", func(t *testing.T) {
		o := s.options(scenarioMixed)
		if err := o.validate(); err != nil {
			t.Fatal(err)
		}
		g, err := newGen(o, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		g.merchants = []merchant{{Merchant: devenv.Merchant{ID: "NOPOSTING"}}}
		if err := g.setupAudit(ctx); err != nil {
			t.Fatal(err)
		}
		var cursor string
		if _, err := g.audit.statement(ctx, &cursor); !errors.Is(err, errNotYet) {
			t.Fatalf("statement of an account not seen yet: %v, want errNotYet", err)
		}
		// Once the account was seen, a 404 is a failure.
		g.audit.noAccount.Store(false)
		if _, err := g.audit.statement(ctx, &cursor); errors.Is(err, errNotYet) || err == nil {
			t.Fatalf("statement of an account seen before: %v, want a not_found failure", err)
		} else if class, _ := readClass(err); class != "audit: not_found" {
			t.Fatalf("class %q", class)
		}
	})

	t.Run("idle", func(t *testing.T) {
		o := s.options(scenarioIdle)
		o.IdleConns, o.Hold, o.ServerPID = 50, 500*time.Millisecond, s.pid
		sum, err := run(ctx, o, t.Logf)
		mustPass(t, sum, err)
		i := sum.Idle
		if i.Opened != 50 || i.StillOpenAtClose != 50 || i.RSSBeforeKB <= 0 || i.RSSHeldKB <= 0 {
			t.Fatalf("idle %+v", i)
		}
	})

	// The check must fail when the ledger and the answers disagree.
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, want []expected) []expected
		check  func(c *checkResult) bool
	}{
		{"entry nobody was answered for", func(t *testing.T, want []expected) []expected {
			return want[:len(want)-1]
		}, func(c *checkResult) bool { return c.Unexpected == 1 && c.Missing == 0 && c.BalanceDiff > 0 }},
		{"2xx without an entry", func(t *testing.T, want []expected) []expected {
			extra := want[len(want)-1]
			extra.OrderID += "9"
			return append(want, extra)
		}, func(c *checkResult) bool { return c.Missing == 1 && c.Unexpected == 0 }},
		{"fee differs", func(t *testing.T, want []expected) []expected {
			want[len(want)-1].Fee++
			return want
		}, func(c *checkResult) bool { return c.Mismatched == 1 && c.BalanceDiff == 2 }},
		{"write outside the run", func(t *testing.T, want []expected) []expected {
			o := s.options(scenarioHot)
			g, err := newGen(o, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			top, err := devenv.LoadMerchant(s.dir, "TOPUP")
			if err != nil {
				t.Fatal(err)
			}
			body := fmt.Sprintf(`{"order_id":"ORD%s1999999999","user_id":"stranger","amount":"1.00","currency":"CNY"}`, g.runID)
			c, err := g.newClient(top, 1, schemeA)
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Do(context.Background(), http.MethodPost, "/v1/deposits", []byte(body))
			if err != nil || r.Status != http.StatusOK {
				t.Fatalf("foreign deposit: %v %v", err, r)
			}
			return want
		}, func(c *checkResult) bool { return c.Unexpected == 1 && c.Missing == 0 && c.BalanceDiff == 0 }},
	} {
		t.Run("check catches "+tc.name, func(t *testing.T) {
			o := s.options(scenarioHot)
			o.Requests, o.Payers = 20, 5
			o.beforeCheck = func(want []expected) []expected { return tc.tamper(t, want) }
			sum, err := run(ctx, o, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Passed || sum.Ledger == nil || sum.Ledger.Passed || !tc.check(sum.Ledger) {
				var b strings.Builder
				writeText(&b, sum)
				t.Fatalf("check did not catch it:\n%s", b.String())
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(o *options)
		want   string
	}{
		{"remote target", func(o *options) { o.URL = "https://10.0.0.1:8443" }, "not a loopback"},
		{"plain http", func(o *options) { o.URL = "http://127.0.0.1:8443" }, "https"},
		{"unknown scenario", func(o *options) { o.Scenario = "burst" }, "unknown scenario"},
		{"mixed share", func(o *options) { o.Scenario, o.AuditShare = scenarioMixed, 1 }, "--audit-share"},
		{"mixed needs two connections", func(o *options) { o.Scenario, o.Connections = scenarioMixed, 1 }, "at least 2"},
		{"mixed unknown read", func(o *options) { o.Scenario, o.AuditReads = scenarioMixed, []string{"balance-sheet"} }, "unknown read"},
		{"mixed remote auditor API", func(o *options) { o.Scenario, o.AuditURL = scenarioMixed, "https://10.0.0.1:8444" }, "--audit-url"},
		{"unknown scheme", func(o *options) { o.Scheme = "c" }, "--scheme"},
		{"scheme A with an Ed25519 merchant", func(o *options) { o.MerchantAlg = "ed25519" }, "rsa-v1_5-sha256 only"},
		{"idle is scheme A", func(o *options) { o.Scenario, o.Scheme = scenarioIdle, schemeB }, "idle"},
		{"unknown backend", func(o *options) { o.Crypto = "boringssl" }, "--crypto"},
		{"no connections", func(o *options) { o.Connections = 0 }, "--connections"},
		{"run outlives the window", func(o *options) { o.Duration = 295 * time.Second }, "replay window"},
		{"float amount", func(o *options) { o.Amount = "1e3" }, "--amount"},
		{"idle hold too long", func(o *options) { o.Scenario, o.Hold = scenarioIdle, 2*time.Minute }, "--hold"},
		{"negative rate", func(o *options) { o.Rate = -1 }, "--rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOptions()
			tc.change(&o)
			err := o.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	o := defaultOptions()
	o.Scheme = schemeB
	if err := o.validate(); err != nil || o.Merchant != "MB100" || o.MerchantPrefix != "LOADB" || o.MerchantAlg != "ed25519" {
		t.Fatalf("scheme B defaults: %v, %q %q %q", err, o.Merchant, o.MerchantPrefix, o.MerchantAlg)
	}
	o = defaultOptions()
	o.Scenario, o.Connections, o.AuditShare = scenarioMixed, 8, 0.25
	if err := o.validate(); err != nil || o.auditors() != 2 || o.senders() != 6 || o.Merchant != "M100" {
		t.Fatalf("mixed: %v, %d auditors, %d senders, merchant %q", err, o.auditors(), o.senders(), o.Merchant)
	}
	o.Connections, o.AuditShare = 2, 0.9 // one connection is always left for the payments
	if o.auditors() != 1 || o.senders() != 1 {
		t.Fatalf("mixed with 2 connections: %d auditors", o.auditors())
	}
	o = defaultOptions()
	o.Rate, o.Duration = 250, 4*time.Second
	if err := o.validate(); err != nil || o.Requests != 1000 || o.amountMinor != 1000 {
		t.Fatalf("open loop: %v, requests %d, amount %d", err, o.Requests, o.amountMinor)
	}
}

func TestCompareTable(t *testing.T) {
	group := &summary{Scenario: "hot", Scheme: schemeA, Mode: "closed", Connections: 64, OK: 8000, Throughput: 400, Ledger: &checkResult{Passed: true}}
	one := &summary{Scenario: "hot", Mode: "closed", Connections: 64, OK: 2000, Throughput: 100, Ledger: &checkResult{}}
	open := &summary{Scenario: "hot", Scheme: schemeA, Mode: "open", TargetRate: 200, Connections: 64, OK: 1500, Throughput: 50, Late: 7, Unsent: 500}
	group.LoadAverage = [2]float64{3.5, 12.25}
	b := &summary{Scenario: "mixed", Scheme: schemeB, Mode: "closed", Connections: 64, OK: 9000, Throughput: 900,
		Audit: &auditResult{Connections: 16, OK: 300, Throughput: 30, Latency: latency{P50: 12.34, P99: 56.78}, Failed: 1}}
	runs := []named{{"group", group}, {"one-commit", one}, {"open", open}, {"group-b", b}}
	var w strings.Builder
	writeTable(&w, runs)
	lines := strings.Split(strings.TrimSpace(w.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("want header, rule and 4 rows:\n%s", w.String())
	}
	for i, want := range []string{"| group | hot | A | closed | 64 | 8000 | 400 | 1.00× |", "| one-commit | hot | A | closed | 64 | 2000 | 100 | 0.25× |",
		"| open | hot | A | open 200/s | 64 | 1500 | 50 | 0.12× |", "| group-b | mixed | B | closed | 64 | 9000 | 900 | 2.25× |"} {
		if !strings.HasPrefix(lines[i+2], want) {
			t.Errorf("row %d = %q, want prefix %q", i, lines[i+2], want)
		}
	}
	if !strings.Contains(lines[2], "| pass | – | – | – | – | – | 3.5 → 12.2 |") || !strings.Contains(lines[3], "| FAIL |") || !strings.Contains(lines[4], "7 (+500 unsent)") ||
		!strings.HasSuffix(lines[5], "| not run | 16 | 30 | 12.3 | 56.8 | 1 | – |") {
		t.Errorf("table:\n%s", w.String())
	}

	w.Reset()
	if err := writeRatios(&w, runs, []string{"group/one-commit", "group-b/group"}); err != nil {
		t.Fatal(err)
	}
	if want := "group / one-commit: 4.00× (400 / 100 ok/s)\ngroup-b / group: 2.25× (900 / 400 ok/s)\n"; w.String() != want {
		t.Errorf("ratios:\n%s\nwant:\n%s", w.String(), want)
	}
	if err := writeRatios(&w, runs, []string{"group/missing"}); err == nil {
		t.Error("ratio of an unknown run: no error")
	}
}
