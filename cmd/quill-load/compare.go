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
	return &cobra.Command{
		Use:   "compare SUMMARY.json...",
		Short: "Print the JSON summaries of several runs as one Markdown table, with throughput ratios to the first",
		Example: `  quill-load compare var/bench/group.json var/bench/one-commit.json
  # what scripts/bench-e2e.sh prints after running both legs`,
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
			return nil
		},
	}
}

type named struct {
	name string
	s    *summary
}

// writeTable prints runs as a Markdown table; the ratio column is each run's
// throughput over the first's.
func writeTable(w io.Writer, runs []named) {
	idle, cpu := false, false
	for _, r := range runs {
		idle = idle || r.s.Idle != nil
		cpu = cpu || r.s.CPU != nil
	}
	head := "| run | scenario | mode | conns | ok | ok/s | ratio | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | late | failed | unverified | ledger |"
	if cpu {
		head += " server CPU µs/ok | generator CPU µs/ok | machine busy |"
	}
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
		l := s.Latency
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %.0f | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %d | %d | %s |",
			r.name, s.Scenario, mode, conns, s.OK, s.Throughput, ratio, l.P50, l.P90, l.P99, l.P999, l.Max, late, s.Failed, s.Unverified, ledger)
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
