package main

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/keys/vault"
)

// importKeysCmd copies the dev file store into Vault, so the dev stack
// (scripts/dev.sh --vault) reads its keys from Vault exactly as production does.
func importKeysCmd() *cobra.Command {
	var c config
	var from string
	cmd := &cobra.Command{
		Use:   "import-keys",
		Short: "Copy every key ring of a dev file store into Vault",
		Long: `Copy every key ring of a dev file store (<data-dir>/keys) into Vault's KV v2
mount, one secret per ring (see docs/OPERATIONS.md "Vault layout"). A ring that
already exists in Vault is left alone and reported; nothing is overwritten.

Example:
  QUILL_VAULT_TOKEN=... quill import-keys --vault-addr http://127.0.0.1:8200 --from var/dev/keys`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c.Keys.VaultAddr == "" {
				return errors.New("--vault-addr (or QUILL_VAULT_ADDR) is required")
			}
			fs, err := keys.OpenFileStore(from, keys.FileOptions{})
			if err != nil {
				return err
			}
			rings, err := fs.LoadRings(cmd.Context())
			if err != nil {
				return err
			}
			vc, err := c.Keys.vaultConfig(nil)
			if err != nil {
				return err
			}
			vs, err := vault.Open(vc)
			if err != nil {
				return err
			}
			defer vs.Close()
			sort.Slice(rings, func(i, j int) bool { return rings[i].Owner() < rings[j].Owner() })
			m := keys.Manager{Rings: vs}
			for _, r := range rings {
				err := m.Import(context.WithoutCancel(cmd.Context()), r)
				switch {
				case errors.Is(err, keys.ErrExists):
					fmt.Printf("%-12s already in vault, left alone\n", r.Owner())
				case err != nil:
					return fmt.Errorf("%s: %w", r.Owner(), err)
				default:
					fmt.Printf("%-12s imported (versions %d..%d)\n", r.Owner(), r.MinVersion(), r.Latest())
				}
			}
			copied, err := keys.ImportTLS(context.WithoutCancel(cmd.Context()), fs, vs)
			for _, name := range copied {
				fmt.Printf("tls/%-8s imported\n", name)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "var/dev/keys", "directory of the dev file store to copy")
	bindKeys(cmd.Flags(), &c.Keys)
	return cmd
}
