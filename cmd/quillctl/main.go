// Command quillctl is Quill's operator, developer and signing CLI:
//
//	quillctl dev init                 create the dev CA, server certificate, platform and payer-token keys
//	quillctl merchant add|update|disable|enable|list   the merchant registry
//	quillctl keys list|show|rotate|retire|revoke       key rings (merchant, platform, payer, auditor)
//	quillctl events                   the operator audit log
//	quillctl token --sub ID           issue a dev payer JWT
//	quillctl request METHOD PATH      send a signed request over mTLS; exit non-zero unless a verified 2xx
//	quillctl statement DATE           a merchant's daily statement (CSV), streamed and verified
//	quillctl migrate                  apply database migrations
//	quillctl certs issue|rotate-server|revoke|list   client and server certificates
//	quillctl audit …                  auditor tokens (dev), verify-chain, verify-entry, checkpoint, events
//	quillctl report …                 trial-balance, statement, export (over the auditor API)
//
// Configuration: one config file (--config or QUILL_CONFIG) and QUILL_
// environment variables with the server's names; `quillctl config` lists
// them. Every change is recorded in the audit log with the operator's
// identity (QUILL_OPERATOR).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/internal/buildinfo"
)

// exitError carries a process exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "quillctl:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// app is what every command shares: the configuration and the data dir.
type app struct {
	configPath string
	dataDir    string
	conf       *cliConfig
}

func (a *app) load() error {
	c, err := loadConfig(a.configPath)
	if err != nil {
		return err
	}
	a.conf = c
	if a.dataDir == "" {
		a.dataDir = c.get("QUILL_DATA_DIR")
	}
	return nil
}

func rootCmd() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "quillctl",
		Short:         "Operate Quill and send signed requests to it",
		Version:       buildinfo.Version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Example: `  quillctl merchant add M300 --name "Tea House" --fee-bps 45
  quillctl keys rotate M300 --overlap 24h
  quillctl events --subject M300`,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.load() },
	}
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "config file of NAME=value lines (env QUILL_CONFIG); see `quillctl config`")
	root.PersistentFlags().StringVar(&a.dataDir, "data-dir", "", "dev material directory (env QUILL_DATA_DIR, default var/dev)")
	root.AddCommand(devCmd(a), merchantCmd(a), keysCmd(a), eventsCmd(a), tokenCmd(a), requestCmd(a), migrateCmd(a), configCmd(a))
	root.AddCommand(auditCmd(a), reportCmd(a), certsCmd(a)) // audit.go, audit_events.go, certs.go
	root.AddCommand(statementCmd(a))
	return root
}
