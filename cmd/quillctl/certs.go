package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/certs"
	"github.com/quillpay/quill/internal/tlsadmin"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/keys/vault"
)

// openTLSStore opens the store the server reads its TLS material from:
// Vault when QUILL_VAULT_ADDR is set (token from QUILL_VAULT_TOKEN or the
// file in QUILL_VAULT_TOKEN_FILE; QUILL_VAULT_MOUNT, QUILL_VAULT_PREFIX),
// else the dev file store in <data-dir>/keys.
func openTLSStore(dir string) (keys.TLSStore, func(), error) {
	addr := os.Getenv("QUILL_VAULT_ADDR")
	if addr == "" {
		fs, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
		return fs, func() {}, err
	}
	token := os.Getenv("QUILL_VAULT_TOKEN")
	if f := os.Getenv("QUILL_VAULT_TOKEN_FILE"); token == "" && f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("vault token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	vs, err := vault.Open(vault.Config{Address: addr, Token: token, Mount: os.Getenv("QUILL_VAULT_MOUNT"), Prefix: os.Getenv("QUILL_VAULT_PREFIX")})
	if err != nil {
		return nil, nil, err
	}
	return vs, vs.Close, nil
}

// writeOnce writes a file that must not exist yet (a private key is
// written once, never overwritten by accident).
func writeOnce(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func certsCmd(dir *string) *cobra.Command {
	c := &cobra.Command{
		Use:   "certs",
		Short: "Issue, rotate, revoke and list TLS certificates in the key store",
		Long: `Certificates live in the key store the server reads (Vault with
QUILL_VAULT_ADDR, else <data-dir>/keys/tls/): the server certificate and key
(tls/server), the client CA bundle (tls/client-ca), the CRL (tls/crl) and the
client CA that issues certificates and signs the CRL (tls/issuer). A running
server picks changes up within one refresh interval, or at once on SIGHUP.`,
	}
	c.AddCommand(certsIssueCmd(dir), certsRotateServerCmd(dir), certsRevokeCmd(dir), certsListCmd(dir))
	return c
}

func certsIssueCmd(dir *string) *cobra.Command {
	var csrFile, out, keyOut string
	var validity time.Duration
	cmd := &cobra.Command{
		Use:   "issue MERCHANT",
		Short: "Issue a merchant's mTLS client certificate from the client CA",
		Long: `Issue a client certificate naming MERCHANT (CN and SAN URI
quill://merchant/MERCHANT), clientAuth only. With --csr it certifies the key in
the request (its signature is checked; its subject is ignored); without, it
makes a P-256 key and writes it once, 0600, to --key-out.

Example:
  quillctl certs issue M100 --csr m100.csr.pem --out m100.pem
  quillctl certs issue M100 --out m100.pem --key-out m100.key.pem`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var csr []byte
			if csrFile != "" {
				b, err := os.ReadFile(csrFile)
				if err != nil {
					return err
				}
				csr = b
			} else if keyOut == "" {
				return errors.New("give --csr FILE, or --key-out FILE for a new key")
			}
			s, closeStore, err := openTLSStore(*dir)
			if err != nil {
				return err
			}
			defer closeStore()
			certPEM, keyPEM, err := tlsadmin.IssueClient(cmd.Context(), s, args[0], csr, validity, time.Now())
			if err != nil {
				return err
			}
			if keyPEM != nil {
				if err := writeOnce(keyOut, keyPEM, 0o600); err != nil {
					return fmt.Errorf("private key: %w", err)
				}
			}
			if err := writeOnce(out, certPEM, 0o644); err != nil {
				return err
			}
			fmt.Printf("client certificate for %s written to %s\n", args[0], out)
			return nil
		},
	}
	cmd.Flags().StringVar(&csrFile, "csr", "", "PEM certificate request holding the merchant's own key")
	cmd.Flags().StringVar(&out, "out", "client.pem", "where to write the certificate (must not exist)")
	cmd.Flags().StringVar(&keyOut, "key-out", "", "where to write a new private key, 0600 (must not exist); without --csr only")
	cmd.Flags().DurationVar(&validity, "validity", 365*24*time.Hour, "certificate lifetime")
	return cmd
}

func certsRotateServerCmd(dir *string) *cobra.Command {
	var hosts []string
	var certFile, keyFile string
	var validity time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-server",
		Short: "Replace the server certificate (issued by the client CA, or imported)",
		Long: `Replace the server certificate and key in the key store. Without --cert
the issuer signs a new one for --host. Connections already open keep working;
new handshakes get the new certificate after the server's next refresh.

Example:
  quillctl certs rotate-server --host api.quill.example --host 10.0.0.5
  quillctl certs rotate-server --cert server.pem --key server.key.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var certPEM, keyPEM []byte
			if (certFile == "") != (keyFile == "") {
				return errors.New("--cert and --key go together")
			}
			if certFile != "" {
				var err error
				if certPEM, err = os.ReadFile(certFile); err != nil {
					return err
				}
				if keyPEM, err = os.ReadFile(keyFile); err != nil {
					return err
				}
			} else if len(hosts) == 0 {
				return errors.New("give --host (one or more), or --cert and --key")
			}
			s, closeStore, err := openTLSStore(*dir)
			if err != nil {
				return err
			}
			defer closeStore()
			leaf, err := tlsadmin.RotateServer(cmd.Context(), s, hosts, certPEM, keyPEM, validity, time.Now())
			if err != nil {
				return err
			}
			fmt.Printf("server certificate rotated: serial %X, valid until %s\n", leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "DNS name or IP address of the server (repeatable)")
	cmd.Flags().StringVar(&certFile, "cert", "", "import this certificate chain (PEM) instead of issuing one")
	cmd.Flags().StringVar(&keyFile, "key", "", "the imported certificate's private key (PEM)")
	cmd.Flags().DurationVar(&validity, "validity", 90*24*time.Hour, "lifetime of an issued certificate")
	return cmd
}

func certsRevokeCmd(dir *string) *cobra.Command {
	var certFile string
	cmd := &cobra.Command{
		Use:   "revoke [SERIAL]",
		Short: "Revoke a client certificate: add its serial to the CRL in the key store",
		Long: `Add a client certificate's serial (hex, as "certs list" and openssl print
it) to the CRL, signed again by the issuer. The server refuses the certificate
within one refresh interval, on new and on open connections alike.
Revocation is final.

Example:
  quillctl certs revoke 3A:F2:9C:01
  quillctl certs revoke --cert var/dev/merchants/M100/client.pem`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var serialText string
			switch {
			case certFile != "" && len(args) == 0:
				b, err := os.ReadFile(certFile)
				if err != nil {
					return err
				}
				c, err := parseCertPEM(b)
				if err != nil {
					return err
				}
				serialText = fmt.Sprintf("%X", c)
			case certFile == "" && len(args) == 1:
				serialText = args[0]
			default:
				return errors.New("give a SERIAL or --cert FILE")
			}
			serial, err := tlsadmin.ParseSerial(serialText)
			if err != nil {
				return err
			}
			s, closeStore, err := openTLSStore(*dir)
			if err != nil {
				return err
			}
			defer closeStore()
			if err := tlsadmin.Revoke(cmd.Context(), s, serial, time.Now()); err != nil {
				return err
			}
			fmt.Printf("serial %X revoked\n", serial)
			return nil
		},
	}
	cmd.Flags().StringVar(&certFile, "cert", "", "revoke the certificate in this PEM file")
	return cmd
}

func certsListCmd(dir *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the server certificate, the client CAs and the revoked serials",
		Long: `List the TLS material in the key store, without private keys.

Example:
  quillctl certs list
  quillctl certs list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, closeStore, err := openTLSStore(*dir)
			if err != nil {
				return err
			}
			defer closeStore()
			l, err := tlsadmin.List(cmd.Context(), s)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(l)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ITEM\tSERIAL\tSUBJECT\tNOT AFTER")
			for _, c := range l.Certificates {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Item, c.Serial, c.Subject, c.NotAfter.Format(time.RFC3339))
			}
			fmt.Fprintf(w, "\nREVOKED SERIAL\tREVOKED AT\t(CRL number %s, next update %s)\t\n", l.CRLNumber, l.CRLNext.Format(time.RFC3339))
			for _, r := range l.Revoked {
				fmt.Fprintf(w, "%s\t%s\t\t\n", r.Serial, r.RevokedAt.Format(time.RFC3339))
			}
			for _, p := range l.Problems {
				fmt.Fprintf(w, "\nPROBLEM\t%s\t\t\n", p)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	return cmd
}

// parseCertPEM returns the serial of the PEM certificate in b.
func parseCertPEM(b []byte) (*big.Int, error) {
	c, err := certs.ParseCertificate(b)
	if err != nil {
		return nil, err
	}
	return c.SerialNumber, nil
}
