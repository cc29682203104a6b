package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/devenv"
)

// compatNodeDir is compat/node seen from this package's directory.
var compatNodeDir = filepath.Join("..", "..", "compat", "node")

// TestWeChatPayNodeSDKCompat pays through wechatpay-axios-plugin, the WeChat
// Pay APIv3 Node SDK, unmodified: Quill must accept the SDK's signed requests
// (a POST with a body, a GET with a query) and the SDK must accept Quill's
// signed responses, and refuse them under the wrong platform key.
func TestWeChatPayNodeSDKCompat(t *testing.T) {
	node := nodeForCompat(t)
	h := server(t)
	h.wallClock()
	user := "u-node-" + fmt.Sprint(time.Now().UnixNano())
	h.deposit(user, "10.00")
	order := newOrderID()
	env := h.sdkEnv(demoMerchant, string(paymentBody(order, "1.23", h.token(user))))

	out, stderr, err := runPayScript(t, node, env)
	if err != nil {
		t.Fatalf("pay.mjs: %v\nstderr: %s\nstdout: %s", err, stderr, out)
	}
	var got struct {
		Payment, Query struct {
			Status int            `json:"status"`
			Body   map[string]any `json:"body"`
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("pay.mjs output %q: %v", out, err)
	}
	p := got.Payment.Body
	if got.Payment.Status != http.StatusOK || p["order_id"] != order || p["amount"] != "1.23" ||
		p["currency"] != "CNY" || p["status"] != "succeeded" || p["merchant_id"] != demoMerchant {
		t.Fatalf("payment: %d %v", got.Payment.Status, p)
	}
	if got.Query.Status != http.StatusOK || !reflect.DeepEqual(got.Query.Body, p) {
		t.Fatalf("query: %d %v, want the payment %v", got.Query.Status, got.Query.Body, p)
	}
	if n := h.entries(order); n != 1 {
		t.Fatalf("%d ledger entries for %s, want 1", n, order)
	}
	var auth string
	if err := h.db.QueryRow(context.Background(),
		`SELECT authorization_header FROM entries WHERE order_id = $1`, order).Scan(&auth); err != nil {
		t.Fatal(err)
	}
	keyID := strings.TrimSpace(env["QUILL_KEY_ID"])
	if !strings.HasPrefix(auth, "WECHATPAY2-SHA256-RSA2048 ") ||
		!strings.Contains(auth, `mchid="`+demoMerchant+`"`) || !strings.Contains(auth, `serial_no="`+keyID+`"`) {
		t.Fatalf("stored evidence is not the SDK's header: %q", auth)
	}

	t.Run("wrong platform key refused by the SDK", func(t *testing.T) {
		// Same request again (an idempotent replay, so no money moves), but
		// the SDK trusts another key under the platform serial: its response
		// verification must throw.
		bad := filepath.Join(t.TempDir(), "other.pub.pem")
		der, err := x509.MarshalPKIXPublicKey(&rsaKey(t).PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bad, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		env["QUILL_PLATFORM_PUB"] = bad
		out, stderr, err := runPayScript(t, node, env)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !bytes.Contains(stderr, []byte("EV3_RES_HEADER_SIGNATURE_DIGEST")) {
			t.Fatalf("SDK accepted a response under the wrong key: err %v\nstderr: %s\nstdout: %s", err, stderr, out)
		}
		if n := h.entries(order); n != 1 {
			t.Fatalf("%d ledger entries for %s after the replay, want 1", n, order)
		}
	})
}

// nodeForCompat returns the node binary, failing the test (skipping it when
// QUILL_SKIP_NODE_COMPAT=1) if node or the SDK is not installed.
func nodeForCompat(t testing.TB) string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		msg := what + ": run `npm ci --prefix compat/node` from the repository root (Node.js 18+ and npm needed), or set QUILL_SKIP_NODE_COMPAT=1 to skip"
		if os.Getenv("QUILL_SKIP_NODE_COMPAT") == "1" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(compatNodeDir, "node_modules", "wechatpay-axios-plugin", "package.json")); err != nil {
		missing("compat/node/node_modules is missing")
	}
	return node
}

// wallClock sets the server's clock to the wall clock: the SDK stamps its
// requests with real time and checks Quill's response timestamps against it,
// both within ±300 s.
func (h *harness) wallClock() {
	if now := time.Now().Truncate(time.Second); now.After(h.clock.Now()) {
		h.clock.Set(now) // forward only; tests run one at a time
	}
}

// sdkEnv is pay.mjs's input for merchant, from the dev material.
func (h *harness) sdkEnv(merchant, payment string) map[string]string {
	h.t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(h.dir, name))
		if err != nil {
			h.t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	md := devenv.MerchantDir(h.dir, merchant)
	return map[string]string{
		"QUILL_BASE_URL":        h.base,
		"QUILL_CA":              filepath.Join(h.dir, "ca.pem"),
		"QUILL_CLIENT_CERT":     filepath.Join(md, "client.pem"),
		"QUILL_CLIENT_KEY":      filepath.Join(md, "client.key.pem"),
		"QUILL_MCHID":           merchant,
		"QUILL_KEY_ID":          read(filepath.Join("merchants", merchant, "key_id")),
		"QUILL_SIGNING_KEY":     filepath.Join(md, "signing.key.pem"),
		"QUILL_PLATFORM_SERIAL": read("platform.serial"),
		"QUILL_PLATFORM_PUB":    filepath.Join(h.dir, "platform.pub.pem"),
		"QUILL_PAYMENT":         payment,
	}
}

// runPayScript runs compat/node/pay.mjs with env and returns its stdout and stderr.
func runPayScript(t testing.TB, node string, env map[string]string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "pay.mjs")
	cmd.Dir = compatNodeDir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}
