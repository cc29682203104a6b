package quillclient_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/testenv"
)

// jsDir is clients/js seen from this package's directory.
var jsDir = filepath.Join("..", "clients", "js")

// TestJSClientAgainstQuill runs the JavaScript client's tests (node --test in
// clients/js: the cross-language vectors and test/live.test.js) against a real
// running Quill, then checks from Go that the payment the JS client made is
// recorded once. It is skipped only when node is missing or
// QUILL_SKIP_NODE_COMPAT=1.
func TestJSClientAgainstQuill(t *testing.T) {
	if os.Getenv("QUILL_SKIP_NODE_COMPAT") == "1" {
		t.Skip("QUILL_SKIP_NODE_COMPAT=1")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH (Node.js 20+ runs clients/js)")
	}
	q := startQuill(t)
	user := "qcjs-" + testenv.Random(4)
	q.deposit(user, "10.00")
	order := orderID()
	body := fmt.Sprintf("{ \"order_id\":%q,  \"amount\":\"2.34\", \"currency\":\"CNY\",\n \"payer_token\":%q, \"description\":\"咖啡 ☕\" }", order, q.token(user))
	md := devenv.MerchantDir(q.dir, "M100")
	mc, err := devenv.LoadMerchant(q.dir, "M100")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"QUILL_BASE_URL":      q.base,
		"QUILL_CA":            filepath.Join(q.dir, "ca.pem"),
		"QUILL_CLIENT_CERT":   filepath.Join(md, "client.pem"),
		"QUILL_CLIENT_KEY":    filepath.Join(md, "client.key.pem"),
		"QUILL_MCHID":         "M100",
		"QUILL_KEY_ID":        mc.KeyID,
		"QUILL_SIGNING_KEY":   filepath.Join(md, "signing.key.pem"),
		"QUILL_PLATFORM_PUB":  filepath.Join(q.dir, "platform.pub.pem"),
		"QUILL_ORDER_ID":      order,
		"QUILL_PAYMENT_BODY":  body,
		"QUILL_LIVE_REQUIRED": "1",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=tap", "test/")
	cmd.Dir = jsDir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node --test: %v\n%s", err, out.Bytes())
	}
	for _, want := range []string{"# fail 0", "# skipped 0", "ok 1 - payment"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("node --test output lacks %q:\n%s", want, out.Bytes())
		}
	}

	res, got, err := send(q.client("M100", nil), "GET", q.base+"/v1/payments/"+order, nil)
	if err != nil || res.StatusCode != 200 || !strings.Contains(string(got), `"amount":"2.34"`) {
		t.Fatalf("the JS payment from Go: %v %s", err, got)
	}
	var n int
	if err := queryRow(t, q.dsn, `SELECT count(*) FROM entries WHERE order_id = $1`, order, &n); err != nil || n != 1 {
		t.Fatalf("%d ledger entries for the JS order (%v), want 1", n, err)
	}
	var stored []byte
	if err := queryRow(t, q.dsn, `SELECT evidence_body FROM entries WHERE order_id = $1`, order, &stored); err != nil || string(stored) != body {
		t.Fatalf("stored evidence %q (%v), the JS client was given %q", stored, err, body)
	}
}
