package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/signing"
)

// statementQuill answers GET /v1/statements/DATE like Quill, signed with the
// dev platform key: 2026-12-04 a statement, 2026-12-05 a statement altered
// after signing, anything else a 400 problem; and the platform keys.
func statementQuill(t *testing.T, dir string) (url, statement string) {
	t.Helper()
	ks := fileStore(t, dir)
	pk, err := ks.PlatformKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	signer := &signing.ResponseSigner{Keys: platformKey{pk}}
	pubPEM, _ := keys.MarshalPublicKeyPEM(pk.Signer().Public())
	pubJSON, _ := json.Marshal(string(pubPEM))
	statement = "order_id,refund_id,entry_id,kind,amount,fee,net,currency,time\n" +
		strings.Repeat("ORD000000000001,,1,payment,12.34,0.07,12.27,CNY,2026-12-04T10:00:00+08:00\n", 3000) +
		"\ndate,time_zone,currency,kind,count,amount,fee,net\n2026-12-04,+08:00,CNY,payment,3000,37020.00,210.00,36810.00\n"
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body, ctype := http.StatusBadRequest, `{"code":"malformed_request","reason":"malformed_request","detail":"date: a calendar date YYYY-MM-DD"}`, "application/problem+json"
		switch r.URL.Path {
		case "/v1/certificates":
			status, body, ctype = http.StatusOK, `{"data":[{"serial_no":"`+pk.ID()+`","algorithm":"`+string(pk.Algorithm())+`","public_key":`+string(pubJSON)+`}]}`, "application/json"
		case "/v1/statements/2026-12-04", "/v1/statements/2026-12-05":
			status, body, ctype = http.StatusOK, statement, "text/csv; charset=utf-8"
			if got := r.URL.Query().Get("tz"); got != "Z" {
				t.Errorf("tz %q, want Z", got)
			}
		}
		sig, err := signer.Sign(r.Context(), []byte(body))
		if err != nil {
			t.Error(err)
		}
		if r.URL.Path == "/v1/statements/2026-12-05" {
			body = strings.Replace(body, "36810.00", "99999.00", 1)
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Wechatpay-Timestamp", sig.Timestamp)
		w.Header().Set("Wechatpay-Nonce", sig.Nonce)
		w.Header().Set("Wechatpay-Serial", sig.Serial)
		w.Header().Set("Wechatpay-Signature", sig.Signature)
		w.WriteHeader(status)
		w.Write([]byte(body))
	})
	item, err := ks.TLSItem(context.Background(), keys.TLSServer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(item.CertificatePEM, item.PrivateKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, statement
}

func TestStatementCommand(t *testing.T) {
	dir, _ := setup(t)
	if _, err := quillctl(t, dir, "merchant", "add", "M100"); err != nil {
		t.Fatal(err)
	}
	url, statement := statementQuill(t, dir)
	file := filepath.Join(t.TempDir(), "st.csv")

	out, err := quillctl(t, dir, "statement", "2026-12-04", "--tz", "Z", "--url", url, "--out", file)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got, err := os.ReadFile(file); err != nil || string(got) != statement {
		t.Fatalf("the file holds %d bytes (%v), want the %d-byte statement", len(got), err, len(statement))
	}
	if !strings.Contains(out, "signature verified") {
		t.Errorf("output: %s", out)
	}
	out, err = quillctl(t, dir, "statement", "2026-12-04", "--tz", "Z", "--url", url)
	if err != nil || !strings.Contains(out, statement) {
		t.Fatalf("to standard output: %v\n%.300s", err, out)
	}

	// An altered statement never becomes the file, nor replaces one.
	out, err = quillctl(t, dir, "statement", "2026-12-05", "--tz", "Z", "--url", url, "--out", file)
	var ee *exitError
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), "not verified") {
		t.Fatalf("an altered statement: %v (exit 1 wanted)\n%s", err, out)
	}
	if got, _ := os.ReadFile(file); string(got) != statement {
		t.Error("the verified file was replaced by an unverified statement")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".st.csv.*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	// A verified refusal exits 2 and writes nothing.
	other := filepath.Join(t.TempDir(), "bad.csv")
	_, err = quillctl(t, dir, "statement", "2026-02-30", "--url", url, "--out", other)
	if !errors.As(err, &ee) || ee.code != exitNon2xx || !strings.Contains(err.Error(), "malformed_request") {
		t.Fatalf("a refusal: %v, want exit %d", err, exitNon2xx)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("a refused statement left %s: %v", other, err)
	}
}
