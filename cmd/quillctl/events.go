package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/merchant"
)

func eventsCmd(a *app) *cobra.Command {
	var f merchant.EventFilter
	var action string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List the operator audit log (append-only): who did what, when, with which key ids",
		Example: `  quillctl events
  quillctl events --subject M100 --action key.rotated --json
  quillctl events --after 120 --limit 50`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			reg, err := a.conf.registry(ctx)
			if err != nil {
				return err
			}
			defer reg.Close()
			f.Action = merchant.Action(action)
			evs, err := reg.Events(ctx, f)
			if err != nil {
				return err
			}
			if evs == nil {
				evs = []merchant.Event{}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), evs)
			}
			var rows [][]string
			for _, e := range evs {
				rows = append(rows, []string{strconv.FormatInt(e.Seq, 10), ts(e.At), e.Actor, string(e.Action), e.Subject, dash(e.OldKeyID), dash(e.NewKeyID), e.Detail})
			}
			return table(cmd.OutOrStdout(), []string{"SEQ", "AT", "ACTOR", "ACTION", "SUBJECT", "OLD_KEY", "NEW_KEY", "DETAIL"}, rows)
		},
	}
	cmd.Flags().StringVar(&f.Subject, "subject", "", "only events about this merchant or ring owner (_platform, _payer, _auditor)")
	cmd.Flags().StringVar(&action, "action", "", "only this action (merchant.added, key.rotated, …)")
	cmd.Flags().Int64Var(&f.After, "after", 0, "only events with a sequence number above this")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many events")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// recordEvent appends ev to the audit log as the configured operator, for
// commands that change something outside the registry (the certificate
// commands: merchant.CertIssued, CertRotated, CertRevoked). A failure is
// exit status 3: the change was made but not recorded.
func (a *app) recordEvent(ctx context.Context, ev merchant.Event) error {
	reg, err := a.conf.registry(ctx)
	if err == nil {
		defer reg.Close()
		ev.Actor = a.conf.operator()
		_, err = reg.Record(ctx, ev)
	}
	if err != nil {
		return &exitError{code: 3, err: fmt.Errorf("the change WAS made but could not be recorded in the audit log; record it by hand: %w", err)}
	}
	return nil
}
