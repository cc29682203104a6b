package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/ledger/postgres"
)

func devCmd(a *app) *cobra.Command {
	dev := &cobra.Command{Use: "dev", Short: "Dev environment material"}
	dev.AddCommand(&cobra.Command{
		Use:     "init",
		Short:   "Create the dev CA, server certificate, platform key and payer-token key (missing ones only)",
		Example: "  quillctl dev init --data-dir var/dev",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := devenv.Init(a.dataDir, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dev material ready in %s\n", a.dataDir)
			return nil
		},
	})
	return dev
}

func tokenCmd(a *app) *cobra.Command {
	var sub string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:     "token",
		Short:   "Issue a dev payer JWT (as the platform's login service would) and print it",
		Example: "  quillctl token --sub 42 --ttl 5m",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := devenv.PayerToken(a.dataDir, sub, ttl, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&sub, "sub", "42", "payer user id (the wallet is user:<sub>)")
	cmd.Flags().DurationVar(&ttl, "ttl", 15*time.Minute, "token lifetime")
	return cmd
}

func migrateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "migrate",
		Short:   "Apply the embedded database migrations (ledger, merchant registry, audit log)",
		Example: "  QUILL_PG_DSN_FILE=/etc/quill/dsn quillctl migrate",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dsn, err := a.conf.dsn()
			if err != nil {
				return err
			}
			if err := postgres.Migrate(cmd.Context(), dsn); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "migrations applied")
			return nil
		},
	}
}

func configCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "List the settings quillctl reads and where each value comes from (secrets hidden)",
		Long: `quillctl reads its settings from QUILL_ environment variables and, below
them, from one config file (--config FILE or QUILL_CONFIG) of NAME=value
lines with the same names. A flag wins over both. A secret may sit in the
file only if the file is not readable by group or others.`,
		Example: "  quillctl --config /etc/quill/quillctl.conf config",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tVALUE\tFROM\tMEANING")
			for _, s := range settings {
				from := "default"
				if _, ok := a.conf.file[s.name]; ok {
					from = a.conf.source
				}
				if _, ok := os.LookupEnv(s.name); ok {
					from = "environment"
				}
				v := a.conf.get(s.name)
				if s.secret && v != "" {
					v = "(set, hidden)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.name, v, from, s.help)
			}
			return w.Flush()
		},
	}
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows under header, aligned.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
