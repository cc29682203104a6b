// Command quillctl is Quill's operator, developer and signing CLI:
//
//	quillctl dev init           create the dev CA, server certificate, platform and payer-token keys
//	quillctl merchant add ID    onboard a merchant: signing key, key id, client certificate, profile
//	quillctl merchant list      list merchants and their keys
//	quillctl token --sub ID     issue a dev payer JWT
//	quillctl request M PATH     send a signed request over mTLS and check the response signature
//	quillctl migrate            apply database migrations
//	quillctl audit …            auditor tokens (dev), verify-chain, verify-entry, checkpoint
//	quillctl report …           trial-balance, statement, export (over the auditor API)
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/policy"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "quillctl:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func rootCmd() *cobra.Command {
	var dir string
	root := &cobra.Command{
		Use:           "quillctl",
		Short:         "Operate Quill and send signed requests to it",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&dir, "data-dir", envOr("QUILL_DATA_DIR", "var/dev"), "dev material directory (env QUILL_DATA_DIR)")
	root.AddCommand(devCmd(&dir), merchantCmd(&dir), tokenCmd(&dir), requestCmd(&dir), migrateCmd())
	root.AddCommand(auditCmd(&dir), reportCmd(&dir))
	root.AddCommand(certsCmd(&dir)) // certs.go
	return root
}

func devCmd(dir *string) *cobra.Command {
	dev := &cobra.Command{Use: "dev", Short: "Dev environment material"}
	dev.AddCommand(&cobra.Command{
		Use:   "init",
		Short: "Create the dev CA, server certificate, platform key and payer-token key (missing ones only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := devenv.Init(*dir, time.Now()); err != nil {
				return err
			}
			fmt.Printf("dev material ready in %s\n", *dir)
			return nil
		},
	})
	return dev
}

func merchantCmd(dir *string) *cobra.Command {
	m := &cobra.Command{Use: "merchant", Short: "Onboard and list merchants"}
	var profile policy.Merchant
	var ifMissing bool
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Onboard a merchant: RSA-2048 signing key, key id, client certificate from the dev CA, profile",
		Long: `Onboard a merchant in the dev store. Writes the merchant's files under
<data-dir>/merchants/<ID>/ (client.pem, client.key.pem, signing.key.pem, key_id),
registers the public key in the key store and the profile in merchants.json.
A running server picks the merchant up without a restart.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			profile.ID = args[0]
			if profile.Name == "" {
				profile.Name = profile.ID
			}
			if ifMissing && devenv.MerchantExists(*dir, profile.ID) {
				fmt.Printf("merchant %s exists\n", profile.ID)
				return nil
			}
			mc, err := devenv.AddMerchant(*dir, profile, time.Now())
			if err != nil {
				return err
			}
			fmt.Printf("merchant %s onboarded\n  key id (serial_no): %s\n  files: %s\n", mc.ID, mc.KeyID, devenv.MerchantDir(*dir, mc.ID))
			return nil
		},
	}
	add.Flags().StringVar(&profile.Name, "name", "", "display name")
	add.Flags().BoolVar(&profile.CanDeposit, "can-deposit", false, "allow this client to top up user wallets (POST /v1/deposits)")
	add.Flags().Int64Var(&profile.FeeBps, "fee-bps", 60, "platform fee in basis points of each payment")
	add.Flags().BoolVar(&ifMissing, "if-missing", false, "succeed without change if the merchant exists")

	list := &cobra.Command{
		Use:   "list",
		Short: "List merchants with their keys and statuses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := policy.LoadDirectory(filepath.Join(*dir, "merchants.json"))
			if err != nil {
				return err
			}
			ks, err := keys.OpenFileStore(filepath.Join(*dir, "keys"), keys.FileOptions{})
			if err != nil {
				return err
			}
			ms := d.Merchants()
			sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
			for _, m := range ms {
				fmt.Printf("%s\tfee_bps=%d can_deposit=%t\n", m.ID, m.FeeBps, m.CanDeposit)
				pubs, err := ks.PublicKeys(cmd.Context(), m.ID)
				if err != nil && !errors.Is(err, keys.ErrNotFound) {
					return err
				}
				for _, k := range pubs {
					fmt.Printf("  key %s\t%s\t%s\n", k.ID, k.Algorithm, k.Status)
				}
			}
			return nil
		},
	}
	m.AddCommand(add, list)
	return m
}

func tokenCmd(dir *string) *cobra.Command {
	var sub string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue a dev payer JWT (as the platform's login service would) and print it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := devenv.PayerToken(*dir, sub, ttl, time.Now())
			if err != nil {
				return err
			}
			fmt.Println(tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&sub, "sub", "42", "payer user id (the wallet is user:<sub>)")
	cmd.Flags().DurationVar(&ttl, "ttl", 15*time.Minute, "token lifetime")
	return cmd
}

func requestCmd(dir *string) *cobra.Command {
	var merchant, baseURL, data string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "request METHOD PATH",
		Short: "Send a scheme-A signed request over mTLS; print the response and whether its signature verified",
		Long: `Send a request signed like a WeChat Pay APIv3 merchant SDK would, over mutual
TLS with the merchant's client certificate, then verify the response's
Wechatpay-Signature with the platform key named by Wechatpay-Serial.

  quillctl request GET /v1/certificates
  quillctl request POST /v1/payments --data @payment.json
  quillctl request POST /v1/payments --data '{"order_id":"ORD000000000001",...}'

Exits 1 if the response signature does not verify.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readData(data)
			if err != nil {
				return err
			}
			c, err := newClient(*dir, merchant, baseURL)
			if err != nil {
				return err
			}
			method, target := strings.ToUpper(args[0]), args[1]
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			resp, err := c.Do(ctx, method, target, body)
			if err != nil {
				return err
			}
			printResponse(os.Stdout, method, target, c, resp, quiet)
			if resp.Verified != nil {
				return resp.Verified
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&merchant, "merchant", envOr("QUILL_MERCHANT", "M100"), "merchant id whose key and certificate sign the request (env QUILL_MERCHANT)")
	cmd.Flags().StringVar(&baseURL, "url", envOr("QUILL_URL", "https://127.0.0.1:8443"), "server base URL (env QUILL_URL)")
	cmd.Flags().StringVarP(&data, "data", "d", "", "request body: a literal, @file, or @- for stdin")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the body and the signature verdict")
	return cmd
}

func readData(data string) ([]byte, error) {
	switch {
	case data == "@-":
		return io.ReadAll(os.Stdin)
	case strings.HasPrefix(data, "@"):
		return os.ReadFile(data[1:])
	}
	return []byte(data), nil
}

// newClient builds a signing mTLS client for merchant from the dev material.
func newClient(dir, merchant, baseURL string) (*client.Client, error) {
	mc, err := devenv.LoadMerchant(dir, merchant)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificate in ca.pem")
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{mc.TLS}, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}
	return &client.Client{
		BaseURL:  strings.TrimRight(baseURL, "/"),
		Merchant: mc.ID,
		KeyID:    mc.KeyID,
		Key:      mc.SigningKey,
		HTTP:     &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}, nil
}

func printResponse(w io.Writer, method, target string, c *client.Client, r *client.Response, quiet bool) {
	if !quiet {
		fmt.Fprintf(w, "> %s %s  (merchant %s, key %s)\n", method, target, c.Merchant, c.KeyID)
		fmt.Fprintf(w, "< %d %s\n", r.Status, http.StatusText(r.Status))
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			v := strings.Join(r.Header[k], ", ")
			if k == "Wechatpay-Signature" && len(v) > 16 {
				v = v[:16] + "…" // enough to recognise, not to replay
			}
			fmt.Fprintf(w, "< %s: %s\n", k, v)
		}
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, r.Body, "", "  ") == nil {
		fmt.Fprintln(w, pretty.String())
	} else {
		fmt.Fprintln(w, string(r.Body))
	}
	if r.Verified == nil {
		fmt.Fprintf(w, "response signature: verified (platform serial %s)\n", r.Header.Get("Wechatpay-Serial"))
	} else {
		fmt.Fprintf(w, "response signature: NOT verified: %v\n", r.Verified)
	}
}

func migrateCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded database migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := postgres.Migrate(cmd.Context(), dsn); err != nil {
				return err
			}
			fmt.Println("migrations applied")
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "pg-dsn", envOr("QUILL_PG_DSN", "postgres://postgres@127.0.0.1:5432/quill?sslmode=disable"), "PostgreSQL DSN (env QUILL_PG_DSN)")
	return cmd
}
