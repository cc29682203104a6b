package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// summary is the machine-readable result of a run (--json).
type summary struct {
	Scenario    string  `json:"scenario"`
	Scheme      string  `json:"scheme"` // a or b
	Mode        string  `json:"mode"`   // closed or open
	URL         string  `json:"url"`
	RunID       string  `json:"run_id"`
	StartedAt   string  `json:"started_at"`
	CPUs        int     `json:"cpus"`
	Connections int     `json:"connections"`
	TargetRate  float64 `json:"target_rate,omitempty"`
	Crypto      string  `json:"crypto"` // the backend that verified RSA response signatures

	Planned    int               `json:"requests_planned"`
	Sent       int64             `json:"requests_sent"`
	Unsent     int64             `json:"requests_unsent"` // closed loop: --duration ran out first; open loop: the server fell behind the rate
	OK         int64             `json:"ok"`
	Failed     int64             `json:"failed"`
	Unverified int64             `json:"unverified_responses"`
	Errors     map[string]int64  `json:"errors"`
	Examples   map[string]string `json:"error_examples,omitempty"`
	Seconds    float64           `json:"seconds"`
	Throughput float64           `json:"ok_per_second"`
	StoppedBy  string            `json:"stopped_by"`

	Latency  latency  `json:"latency_ms"`           // open loop: from the intended send time
	Service  *latency `json:"service_ms,omitempty"` // open loop: from the actual send
	Lateness *latency `json:"lateness_ms,omitempty"`
	Late     int64    `json:"late_sends"`
	LateMs   float64  `json:"late_after_ms,omitempty"`

	Setup struct {
		Merchants        int     `json:"merchants"`
		MerchantsCreated int     `json:"merchants_created"`
		OnboardSeconds   float64 `json:"onboard_seconds"`
		Payers           int     `json:"payers"`
		Deposits         int     `json:"deposits"`
		DepositSeconds   float64 `json:"deposit_seconds"`
		PresignSeconds   float64 `json:"presign_seconds"`
		Lanes            int     `json:"client_connections"`
		Seconds          float64 `json:"seconds"`
	} `json:"setup"`

	// Audit is the auditor side of the mixed scenario; the fields above are
	// its payments.
	Audit *auditResult `json:"audit,omitempty"`
	CPU   *cpuUse      `json:"cpu,omitempty"`
	// LoadAverage is the machine's 1-minute load average when the timed
	// phase started and when it ended.
	LoadAverage [2]float64   `json:"load_average_1m"`
	Idle        *idleResult  `json:"idle,omitempty"`
	Ledger      *checkResult `json:"ledger_check,omitempty"`

	Passed  bool   `json:"passed"`
	Failure string `json:"failure,omitempty"`
}

// latency is a histogram's summary in milliseconds.
type latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func latencyOf(h *hdrhistogram.Histogram) latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return latency{
		Count: h.TotalCount(), Mean: h.Mean() / 1000,
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()),
	}
}

// fill copies the timed phase's results into s.
func (s *summary) fill(d *drive, o options) {
	s.Planned = len(d.outcomes)
	if s.Idle != nil {
		s.Planned = s.Idle.Connections
	}
	s.Sent, s.OK, s.Unverified = d.sent, d.ok, d.unverified
	s.Unsent = int64(s.Planned) - d.sent
	s.Errors, s.Examples = d.errors, d.examples
	for _, v := range d.errors {
		s.Failed += v
	}
	s.Seconds = d.elapsed.Seconds()
	if s.Seconds > 0 {
		s.Throughput = float64(d.ok) / s.Seconds
	}
	s.StoppedBy = d.stoppedBy
	s.Latency = latencyOf(d.latency)
	if d.service != nil {
		svc, late := latencyOf(d.service), latencyOf(d.lateness)
		s.Service, s.Lateness = &svc, &late
		s.Late, s.LateMs = d.late, float64(o.LateAfter)/float64(time.Millisecond)
	}
}

// decide sets Passed: nothing failed, every response verified, the ledger
// check (if it ran) passed.
func (s *summary) decide() {
	var why []string
	if s.Failed > 0 {
		why = append(why, fmt.Sprintf("%d requests failed", s.Failed))
	}
	if s.Unverified > 0 {
		why = append(why, fmt.Sprintf("%d response signatures did not verify", s.Unverified))
	}
	if s.OK == 0 {
		why = append(why, "no request succeeded")
	}
	if a := s.Audit; a != nil {
		if a.Failed > 0 {
			why = append(why, fmt.Sprintf("%d auditor reads failed", a.Failed))
		}
		if a.OK == 0 {
			why = append(why, "no auditor read succeeded")
		}
	}
	if s.Ledger != nil && !s.Ledger.Passed {
		why = append(why, "the ledger check failed")
	}
	s.Passed, s.Failure = len(why) == 0, strings.Join(why, "; ")
}

// writeReports prints the text report and writes the JSON one: to jsonPath,
// or to stdout with jsonPath "-" (the text then goes to stderr).
func writeReports(s *summary, jsonPath string) error {
	text := io.Writer(os.Stdout)
	if jsonPath == "-" {
		text = os.Stderr
	}
	writeText(text, s)
	if jsonPath == "" {
		return nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if jsonPath == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(jsonPath, b, 0o644)
}

func writeText(w io.Writer, s *summary) {
	mode := "closed loop (max rate)"
	if s.Mode == "open" {
		mode = fmt.Sprintf("open loop at %.0f/s", s.TargetRate)
	}
	if s.Idle != nil {
		fmt.Fprintf(w, "scenario idle, %d connections opened by 32 dialers, one request each, %.1f s to open\n", s.Idle.Connections, s.Seconds)
	} else {
		fmt.Fprintf(w, "scenario %s, scheme %s, %s, %d connections, %.1f s (stopped by %s)\n", s.Scenario, strings.ToUpper(s.Scheme), mode, s.Connections, s.Seconds, s.StoppedBy)
	}
	if s.Audit != nil {
		fmt.Fprintf(w, "  payments on %d connections:\n", s.Connections-s.Audit.Connections)
	}
	fmt.Fprintf(w, "  sent %d of %d, ok %d (%.1f/s), failed %d, unverified responses %d\n", s.Sent, s.Planned, s.OK, s.Throughput, s.Failed, s.Unverified)
	if s.Mode == "open" && s.Unsent > 0 {
		fmt.Fprintf(w, "  NOT SENT: %d requests still queued when --duration + --grace ran out: the server did not keep up with %.0f/s\n", s.Unsent, s.TargetRate)
	}
	l := s.Latency
	what := "latency"
	if s.Mode == "open" {
		what = "latency from intended send"
	}
	fmt.Fprintf(w, "  %s ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", what, l.P50, l.P90, l.P99, l.P999, l.Max)
	if s.Service != nil {
		fmt.Fprintf(w, "  service time ms:  p50 %.2f  p99 %.2f  max %.2f\n", s.Service.P50, s.Service.P99, s.Service.Max)
		fmt.Fprintf(w, "  late sends (> %.1f ms after intended): %d; lateness p99 %.2f ms, max %.2f ms\n", s.LateMs, s.Late, s.Lateness.P99, s.Lateness.Max)
	}
	if c := s.CPU; c != nil {
		fmt.Fprintf(w, "  CPU per ok request: generator %.0f µs", c.GeneratorUsPerOK)
		if c.ServerSeconds > 0 {
			fmt.Fprintf(w, ", server %.0f µs", c.ServerUsPerOK)
		}
		if c.MachineSeconds > 0 {
			fmt.Fprintf(w, ", whole machine %.0f µs (all cores %.0f%% busy)", c.MachineUsPerOK, 100*c.MachineBusy)
		}
		fmt.Fprintln(w)
	}
	if s.LoadAverage[0] > 0 || s.LoadAverage[1] > 0 {
		fmt.Fprintf(w, "  machine load average (1 min): %.2f at the start, %.2f at the end\n", s.LoadAverage[0], s.LoadAverage[1])
	}
	for _, k := range sortedKeys(s.Errors) {
		fmt.Fprintf(w, "  error %-32s %d\n", k, s.Errors[k])
		if ex := s.Examples[k]; ex != "" {
			fmt.Fprintf(w, "    e.g. %s\n", ex)
		}
	}
	if a := s.Audit; a != nil {
		l := a.Latency
		fmt.Fprintf(w, "  auditor reads on %d connections, at the same time: ok %d (%.1f/s), failed %d; latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
			a.Connections, a.OK, a.Throughput, a.Failed, l.P50, l.P90, l.P99, l.Max)
		for _, k := range sortedKeys(a.ByRead) {
			r := a.ByRead[k]
			fmt.Fprintf(w, "    %-14s ok %d (%.1f/s), failed %d, %d items; p50 %.2f  p99 %.2f  max %.2f ms\n",
				k, r.OK, r.Throughput, r.Failed, r.Items, r.Latency.P50, r.Latency.P99, r.Latency.Max)
			if r.NotYet > 0 {
				fmt.Fprintf(w, "    %-14s %d reads before the account's first posting (404, not counted)\n", "", r.NotYet)
			}
		}
		fmt.Fprintf(w, "    (journal: entries %d–%d, %d rows each time)\n", a.ExportRange[0], a.ExportRange[1], a.ExportRows)
		for _, k := range sortedKeys(a.Errors) {
			fmt.Fprintf(w, "  error %-32s %d\n", k, a.Errors[k])
			if ex := a.Examples[k]; ex != "" {
				fmt.Fprintf(w, "    e.g. %s\n", ex)
			}
		}
	}
	if i := s.Idle; i != nil {
		fmt.Fprintf(w, "  idle: %d/%d connections opened in %.1f s (%.0f/s), held %.1f s, %d still open at the end\n",
			i.Opened, i.Connections, i.OpenSeconds, i.ConnectionsPerS, i.HeldSeconds, i.StillOpenAtClose)
		if i.RSSHeldKB > 0 {
			fmt.Fprintf(w, "  server RSS: %.1f MB before, %.1f MB holding them (%.1f KB per connection)\n",
				float64(i.RSSBeforeKB)/1024, float64(i.RSSHeldKB)/1024, i.KBPerConnection)
		} else {
			fmt.Fprintf(w, "  server RSS not measured: %s\n", i.RSSNotMeasured)
		}
	}
	st := s.Setup
	fmt.Fprintf(w, "  setup %.1f s: %d merchants (%d onboarded in %.1f s), %d payers funded by %d deposits in %.1f s, signing %.1f s, %d client connections\n",
		st.Seconds, st.Merchants, st.MerchantsCreated, st.OnboardSeconds, st.Payers, st.Deposits, st.DepositSeconds, st.PresignSeconds, st.Lanes)
	if c := s.Ledger; c != nil {
		verdict := "PASS"
		if !c.Passed {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "  ledger check %s: %d new entries, %d expected; missing %d, unexpected %d, mismatched %d, unbalanced %d; %d accounts, %d balance mismatches\n",
			verdict, c.NewEntries, c.Expected, c.Missing, c.Unexpected, c.Mismatched, c.Unbalanced, c.Accounts, c.BalanceDiff)
		for _, p := range c.Problems {
			fmt.Fprintf(w, "    %s\n", p)
		}
	} else {
		fmt.Fprintln(w, "  ledger check: not run (--check=false)")
	}
	if s.Passed {
		fmt.Fprintln(w, "  result: PASS")
	} else {
		fmt.Fprintf(w, "  result: FAIL (%s)\n", s.Failure)
	}
}

// bar is a progress bar on stderr, or nothing when stderr is not a terminal
// or --quiet. set may be called from many goroutines: progressbar's Set is
// a read then an add, so calls are serialized and only move forward.
type bar struct {
	p    *progressbar.ProgressBar
	mu   sync.Mutex
	last int
}

func newBar(max int, what string, quiet bool) *bar {
	if quiet || !term.IsTerminal(int(os.Stderr.Fd())) {
		return &bar{}
	}
	return &bar{p: progressbar.NewOptions(max,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("req"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

func (b *bar) set(n int) {
	if b.p == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.last {
		b.last = n
		b.p.Set(n)
	}
}

func (b *bar) finish() {
	if b.p != nil {
		b.p.Finish()
	}
}
