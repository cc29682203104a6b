package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/api"
)

// auditEventsOptions select the events runAuditEvents lists.
type auditEventsOptions struct {
	subject, action, from, to string
	pageSize                  int
	max                       int // stop after this many (0: all)
	json                      bool
}

func auditEventsCmd(a *app, af *auditFlags) *cobra.Command {
	var o auditEventsOptions
	cmd := &cobra.Command{
		Use: "events",
		Example: `  quillctl audit events
  quillctl audit events --action key --from 2026-12-01T00:00:00Z
  quillctl audit events --subject M100 --action key.rotated,key.revoked --json`,
		Short: "List the operator audit log (key rotations and revocations, merchant and certificate changes) over the auditor API",
		Long: `Lists the operator audit log, oldest first, through the auditor API: every
page, following its cursor. A scoped token sees the events about its merchants
and about the platform keys only. --action takes actions (key.rotated) or
families (key, merchant, cert), comma-separated; --from is inclusive, --to
exclusive.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAuditClient(a, af)
			if err != nil {
				return err
			}
			return runAuditEvents(cmd.Context(), c, o, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.subject, "subject", "", "only events about this merchant or key ring owner (_platform, _payer, _auditor)")
	cmd.Flags().StringVar(&o.action, "action", "", "only these actions or families, comma-separated (key.rotated, key, merchant, cert)")
	cmd.Flags().StringVar(&o.from, "from", "", "only events at or after this RFC 3339 time")
	cmd.Flags().StringVar(&o.to, "to", "", "only events before this RFC 3339 time")
	cmd.Flags().IntVar(&o.max, "max", 0, "stop after this many events (default: all)")
	cmd.Flags().IntVar(&o.pageSize, "page-size", 500, "events per request (1..1000)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print a JSON array instead of a table")
	return cmd
}

func runAuditEvents(ctx context.Context, c *auditClient, o auditEventsOptions, w io.Writer) error {
	if o.pageSize < 1 || o.pageSize > 1000 {
		return fmt.Errorf("--page-size %d: want 1..1000", o.pageSize)
	}
	q := url.Values{"limit": {strconv.Itoa(o.pageSize)}}
	for k, v := range map[string]string{"subject": o.subject, "action": o.action, "from": o.from, "to": o.to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	evs := []api.AuditEventJSON{}
	for {
		var page api.AuditEventsJSON
		if err := c.getJSON(ctx, withQuery("/v1/audit/events", q), &page); err != nil {
			return err
		}
		evs = append(evs, page.Events...)
		if o.max > 0 && len(evs) >= o.max {
			evs = evs[:o.max]
			break
		}
		if page.Next == "" {
			break
		}
		q = url.Values{"limit": {strconv.Itoa(o.pageSize)}, "cursor": {page.Next}}
	}
	if o.json {
		return printJSON(w, evs)
	}
	var rows [][]string
	for _, e := range evs {
		rows = append(rows, []string{strconv.FormatInt(e.Seq, 10), e.At, e.Actor, e.Action, e.Subject, dash(e.OldKeyID), dash(e.NewKeyID), e.Detail})
	}
	return table(w, []string{"SEQ", "AT", "ACTOR", "ACTION", "SUBJECT", "OLD_KEY", "NEW_KEY", "DETAIL"}, rows)
}
