package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/quillpay/quill/quillclient"
)

func statementCmd(a *app) *cobra.Command {
	var merchantID, baseURL, out, tz string
	cmd := &cobra.Command{
		Use:   "statement DATE",
		Short: "Download a merchant's daily statement (CSV), streamed, and verify its signature",
		Long: `Download the merchant's statement of DATE (YYYY-MM-DD): one CSV row per
payment, refund and deposit it recorded that day in the time zone --tz (a UTC offset;
the server's default is +08:00), then a blank line and the summary (counts and
totals per currency and kind). The body streams in constant memory and its
platform signature is checked over every byte (docs/PROTOCOL.md "Statements").

With --out the CSV goes to a temporary file next to FILE, renamed to FILE only
once the signature verified: FILE is never an unverified or partial
statement. To standard output, the bytes arrive before the verdict: trust them
only if the exit status is 0.

Exit status:
  0  the statement arrived and its signature verified
  1  it could not be fetched, or its signature did not verify
  2  a verified refusal (a bad date or time zone: 400, ...)`,
		Example: `  quillctl statement 2026-12-04 --out statement-2026-12-04.csv
  quillctl statement 2026-12-04 --tz Z --merchant M100 | tail -n 4`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if merchantID == "" {
				merchantID = a.conf.get("QUILL_MERCHANT")
			}
			if baseURL == "" {
				baseURL = a.conf.get("QUILL_URL")
			}
			tr, err := newTransport(a.dataDir, merchantID)
			if err != nil {
				return err
			}
			c, err := quillclient.NewClient(baseURL, tr)
			if err != nil {
				return err
			}
			w, commit, abort := io.Writer(cmd.OutOrStdout()), func() error { return nil }, func() {}
			if out != "" {
				f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.partial")
				if err != nil {
					return err
				}
				w = f
				abort = func() { f.Close(); os.Remove(f.Name()) }
				commit = func() error {
					if err := f.Sync(); err != nil {
						return err
					}
					if err := f.Close(); err != nil {
						return err
					}
					return os.Rename(f.Name(), out)
				}
			}
			n, err := c.Statement(cmd.Context(), args[0], tz, w)
			if err == nil {
				err = commit()
			}
			if err != nil {
				abort()
				var apiErr *quillclient.APIError
				if errors.As(err, &apiErr) {
					return &exitError{code: exitNon2xx, err: err}
				}
				return err
			}
			if out != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d bytes, signature verified\n", out, n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&merchantID, "merchant", "", "merchant id whose dev key and certificate sign the request (env QUILL_MERCHANT, default M100)")
	cmd.Flags().StringVar(&baseURL, "url", "", "server base URL (env QUILL_URL, default https://127.0.0.1:8443)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the statement to this file, only once verified (default: standard output)")
	cmd.Flags().StringVar(&tz, "tz", "", "the day's time zone, a UTC offset such as +08:00 or Z (default: the server's, +08:00)")
	return cmd
}
