package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func compareCmd() *cobra.Command {
	var ratios []string
	cmd := &cobra.Command{
		Use:   "compare SUMMARY.json...",
		Short: "Print the JSON summaries of several runs as one Markdown table, with throughput ratios to the first",
		Long: `Print the JSON summaries of several runs as one Markdown table. A run is
named by its file name without .json; the ratio column is each run's ok/s over
the first's, and each --ratio NUM/DEN adds a line with NUM's ok/s over DEN's.`,
		Example: `  quill-load compare var/bench/group.json var/bench/one-commit.json
  # what scripts/bench-e2e.sh prints after running its legs
  quill-load compare group.json one-commit.json group-b.json --ratio group/one-commit --ratio group-b/group`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var runs []named
			for _, path := range args {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				var s summary
				if err := json.Unmarshal(b, &s); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				runs = append(runs, named{strings.TrimSuffix(filepath.Base(path), ".json"), &s})
			}
			writeTable(os.Stdout, runs)
			return writeRatios(os.Stdout, runs, ratios)
		},
	}
	cmd.Flags().StringArrayVar(&ratios, "ratio", nil, "NUM/DEN: also print run NUM's ok/s over run DEN's (repeatable)")
	return cmd
}

// writeRatios prints one line per NUM/DEN: NUM's throughput over DEN's.
func writeRatios(w io.Writer, runs []named, ratios []string) error {
	by := map[string]*summary{}
	for _, r := range runs {
		by[r.name] = r.s
	}
	for _, q := range ratios {
		num, den, ok := strings.Cut(q, "/")
		a, b := by[num], by[den]
		switch {
		case !ok:
			return fmt.Errorf("--ratio %q: want NUM/DEN", q)
		case a == nil || b == nil:
			return fmt.Errorf("--ratio %q: no run named %q or %q", q, num, den)
		case b.Throughput <= 0:
			fmt.Fprintf(w, "%s / %s: – (%s had no successful request)\n", num, den, den)
		default:
			fmt.Fprintf(w, "%s / %s: %.2f× (%.0f / %.0f ok/s)\n", num, den, a.Throughput/b.Throughput, a.Throughput, b.Throughput)
		}
	}
	return nil
}

type named struct {
	name string
	s    *summary
}

// writeTable prints runs as a Markdown table; the ratio column is each run's
// throughput over the first's.
func writeTable(w io.Writer, runs []named) {
	idle, cpu, aud := false, false, false
	for _, r := range runs {
		idle = idle || r.s.Idle != nil
		cpu = cpu || r.s.CPU != nil
		aud = aud || r.s.Audit != nil
	}
	head := "| run | scenario | scheme | mode | conns | ok | ok/s | ratio | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | late | failed | unverified | ledger |"
	if aud {
		head += " auditor conns | auditor reads/s | auditor p50 ms | auditor p99 ms | auditor failed |"
	}
	if cpu {
		head += " server CPU µs/ok | generator CPU µs/ok | machine busy |"
	}
	head += " load avg |"
	if idle {
		head += " server RSS MB | KB/conn |"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, strings.Repeat("| --- ", strings.Count(head, "|")-1)+"|")
	base := runs[0].s.Throughput
	for _, r := range runs {
		s := r.s
		ratio := "–"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f×", s.Throughput/base)
		}
		mode := s.Mode
		if s.Mode == "open" {
			mode = fmt.Sprintf("open %.0f/s", s.TargetRate)
		}
		conns := s.Connections
		if s.Idle != nil {
			mode, conns = "idle", s.Idle.Connections
		}
		ledger := "not run"
		if s.Ledger != nil {
			ledger = "FAIL"
			if s.Ledger.Passed {
				ledger = "pass"
			}
		}
		late := "–"
		if s.Mode == "open" {
			late = fmt.Sprint(s.Late)
			if s.Unsent > 0 {
				late += fmt.Sprintf(" (+%d unsent)", s.Unsent)
			}
		}
		scheme := strings.ToUpper(s.Scheme)
		if scheme == "" {
			scheme = "A" // summaries from before --scheme
		}
		l := s.Latency
		fmt.Fprintf(w, "| %s | %s | %s | %s | %d | %d | %.0f | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %d | %d | %s |",
			r.name, s.Scenario, scheme, mode, conns, s.OK, s.Throughput, ratio, l.P50, l.P90, l.P99, l.P999, l.Max, late, s.Failed, s.Unverified, ledger)
		if aud {
			if a := s.Audit; a != nil {
				fmt.Fprintf(w, " %d | %.0f | %.1f | %.1f | %d |", a.Connections, a.Throughput, a.Latency.P50, a.Latency.P99, a.Failed)
			} else {
				fmt.Fprint(w, " – | – | – | – | – |")
			}
		}
		if cpu {
			if c := s.CPU; c != nil {
				srv := "–"
				if c.ServerSeconds > 0 {
					srv = fmt.Sprintf("%.0f", c.ServerUsPerOK)
				}
				fmt.Fprintf(w, " %s | %.0f | %.0f%% |", srv, c.GeneratorUsPerOK, 100*c.MachineBusy)
			} else {
				fmt.Fprint(w, " – | – | – |")
			}
		}
		if la := s.LoadAverage; la[0] > 0 || la[1] > 0 {
			fmt.Fprintf(w, " %.1f → %.1f |", la[0], la[1])
		} else {
			fmt.Fprint(w, " – |")
		}
		if idle {
			if i := s.Idle; i != nil && i.RSSHeldKB > 0 {
				fmt.Fprintf(w, " %.1f → %.1f | %.1f |", float64(i.RSSBeforeKB)/1024, float64(i.RSSHeldKB)/1024, i.KBPerConnection)
			} else {
				fmt.Fprint(w, " – | – |")
			}
		}
		fmt.Fprintln(w)
	}
}
