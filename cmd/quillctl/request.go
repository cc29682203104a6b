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

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/quillclient"
)

// Exit statuses of quillctl request.
const (
	exitUnverified = 1 // not sent, or the response signature did not verify
	exitNon2xx     = 2 // a verified response that is not 2xx
)

func requestCmd(a *app) *cobra.Command {
	var merchantID, baseURL, data string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "request METHOD PATH",
		Short: "Send a scheme-A signed request over mTLS and verify the response signature; exit non-zero unless 2xx",
		Long: `Send a request signed like a WeChat Pay APIv3 merchant SDK would, over mutual
TLS with the merchant's dev client certificate (quillclient, the Go client
library), then verify the response's Wechatpay-Signature with the platform
key it names, fetched from GET /v1/certificates.

Exit status:
  0  a 2xx response whose signature verified
  1  the request could not be sent, or the response signature did not
     verify (the response is then not printed as if it were Quill's)
  2  a verified response that is not 2xx (404, 422, 5xx, ...)`,
		Example: `  quillctl request GET /v1/certificates
  quillctl request POST /v1/payments --data @payment.json
  quillctl request POST /v1/payments --merchant M100 --data '{"order_id":"ORD000000000001",...}'
  quillctl request GET /v1/payments/ORD000000000001 -q || echo "not found or not verified"
  quillctl request GET '/v1/payments?limit=20&from=2026-12-04T00:00:00%2B08:00'
  quillctl request GET '/v1/payments?cursor=<next_cursor of the previous page>'
  quillctl request GET '/v1/statements/2026-12-04?tz=Z' -q   # small days; large ones: quillctl statement`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if merchantID == "" {
				merchantID = a.conf.get("QUILL_MERCHANT")
			}
			if baseURL == "" {
				baseURL = a.conf.get("QUILL_URL")
			}
			body, err := readData(data)
			if err != nil {
				return err
			}
			hc, err := newClient(a.dataDir, merchantID)
			if err != nil {
				return err
			}
			method, target := strings.ToUpper(args[0]), args[1]
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			var rd io.Reader
			if body != nil {
				rd = bytes.NewReader(body)
			}
			req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(baseURL, "/")+target, rd)
			if err != nil {
				return err
			}
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			w := cmd.OutOrStdout()
			if !quiet {
				fmt.Fprintf(w, "> %s %s  (merchant %s)\n", method, target, merchantID)
			}
			res, err := hc.Do(req)
			var re *quillclient.ResponseError
			if errors.As(err, &re) {
				fmt.Fprintf(w, "< %d %s\nresponse signature: NOT verified: %v\n", re.StatusCode, http.StatusText(re.StatusCode), re.Err)
				return &exitError{code: exitUnverified, err: err}
			}
			if err != nil {
				return err
			}
			defer res.Body.Close()
			rb, err := io.ReadAll(res.Body)
			if err != nil {
				return err
			}
			printResponse(w, res, rb, quiet)
			fmt.Fprintf(w, "response signature: verified (platform serial %s)\n", res.Header.Get("Wechatpay-Serial"))
			if res.StatusCode < 200 || res.StatusCode > 299 {
				return &exitError{code: exitNon2xx, err: fmt.Errorf("server answered %d %s", res.StatusCode, http.StatusText(res.StatusCode))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&merchantID, "merchant", "", "merchant id whose dev key and certificate sign the request (env QUILL_MERCHANT, default M100)")
	cmd.Flags().StringVar(&baseURL, "url", "", "server base URL (env QUILL_URL, default https://127.0.0.1:8443)")
	cmd.Flags().StringVarP(&data, "data", "d", "", "request body: a literal, @file, or @- for stdin")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the body and the signature verdict")
	return cmd
}

func readData(data string) ([]byte, error) {
	switch {
	case data == "":
		return nil, nil
	case data == "@-":
		return io.ReadAll(os.Stdin)
	case strings.HasPrefix(data, "@"):
		return os.ReadFile(data[1:])
	}
	return []byte(data), nil
}

// newClient builds a signing, verifying mTLS client for merchant from the
// dev material.
func newClient(dir, merchantID string) (*http.Client, error) {
	tr, err := newTransport(dir, merchantID)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// newTransport is newClient's signing, verifying transport.
func newTransport(dir, merchantID string) (*quillclient.Transport, error) {
	mc, err := devenv.LoadMerchant(dir, merchantID)
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
	base := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{mc.TLS}, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}
	return quillclient.NewTransport(
		quillclient.WithBase(base),
		quillclient.WithMerchant(mc.ID),
		quillclient.WithKeyID(mc.KeyID),
		quillclient.WithPrivateKey(mc.SigningKey),
	)
}

func printResponse(w io.Writer, r *http.Response, body []byte, quiet bool) {
	if !quiet {
		fmt.Fprintf(w, "< %d %s\n", r.StatusCode, http.StatusText(r.StatusCode))
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
	if json.Indent(&pretty, body, "", "  ") == nil {
		fmt.Fprintln(w, pretty.String())
	} else {
		fmt.Fprintln(w, string(body))
	}
}
