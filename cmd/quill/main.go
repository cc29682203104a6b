// Command quill is the Quill payment API server.
//
//	quill serve        run the merchant API (mTLS) and the ops listener
//	quill migrate      apply database migrations and exit
//	quill import-keys  copy the dev file store's key rings into Vault
//
// Every setting is a flag with a QUILL_ env var; see config.go and the README.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/ledger/postgres"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "quill:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "quill",
		Short:         "Quill payment API server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), migrateCmd(), importKeysCmd())
	return root
}

func serveCmd() *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the merchant API (mTLS) and the loopback ops listener",
		Long: `Run the merchant API over mutual TLS and the plain-HTTP ops listener
(/healthz, /readyz). SIGINT or SIGTERM drains in-flight requests, then exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, c, newLogger(c.LogLevel), runOptions{})
		},
	}
	bindServe(cmd.Flags(), &c)
	return cmd
}

func migrateCmd() *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded database migrations and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := postgres.Migrate(context.Background(), c.migrateDSN()); err != nil {
				return err
			}
			fmt.Println("migrations applied")
			return nil
		},
	}
	bindStorage(cmd.Flags(), &c)
	return cmd
}
