package quillclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/internal/testenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/signing"
)

// jsDir is clients/js seen from this package's directory.
var jsDir = filepath.Join("..", "clients", "js")

// jsScheme is a scheme the JavaScript client's live tests run in:
// QUILL_SCHEME for test/live.test.js, and the platform public key file (in
// the dev directory) that verifies that scheme's responses.
type jsScheme struct {
	scheme      string
	platformPub string
}

var jsSchemes = []jsScheme{{"A", "platform.pub.pem"}, {"B", "platform-ed25519.pub.pem"}}

// TestJSClientAgainstQuill runs the JavaScript client's tests (node --test in
// clients/js: the cross-language vectors and test/live.test.js) against a real
// running Quill in each scheme, then checks from Go that the payment the JS
// client made is recorded once. It is skipped only when node is missing or
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
	for _, sc := range jsSchemes {
		t.Run("scheme "+sc.scheme, func(t *testing.T) { testJSClientAgainstQuill(t, q, node, sc) })
	}
}

func testJSClientAgainstQuill(t *testing.T, q *liveQuill, node string, sc jsScheme) {
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
		"QUILL_PLATFORM_PUB":  filepath.Join(q.dir, sc.platformPub),
		"QUILL_SCHEME":        sc.scheme,
		"QUILL_ORDER_ID":      order,
		"QUILL_PAYMENT_BODY":  body,
		"QUILL_LIVE_REQUIRED": "1",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Every test file but fake-b.test.js, which TestJSSchemeBAgainstFakeQuill
	// runs against its own server.
	files, err := filepath.Glob(filepath.Join(jsDir, "test", "*.test.js"))
	if err != nil || len(files) < 4 {
		t.Fatalf("JS test files %v (%v)", files, err)
	}
	args := []string{"--test", "--test-reporter=tap"}
	for _, f := range files {
		if filepath.Base(f) != "fake-b.test.js" {
			args = append(args, filepath.Join("test", filepath.Base(f)))
		}
	}
	cmd := exec.CommandContext(ctx, node, args...)
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

// TestJSSchemeBAgainstFakeQuill runs the JavaScript scheme B client
// (clients/js/test/fake-b.test.js) against fakeQuillB, the httptest server
// that verifies with signing.MessageVerifier and signs with
// signing.MessageResponseSigner: a JS-signed request in each of the four
// algorithms must verify in Go, and Go's responses, bound to the request's
// signature, must verify in JS. Go then checks what the server accepted.
func TestJSSchemeBAgainstFakeQuill(t *testing.T) {
	if os.Getenv("QUILL_SKIP_NODE_COMPAT") == "1" {
		t.Skip("QUILL_SKIP_NODE_COMPAT=1")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH (Node.js 20+ runs clients/js)")
	}
	f := newFakeQuillB(t, edKey(t, 1))
	f.clock.Set(time.Now()) // the JS client runs on the real clock
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}))
	platformPub, err := keys.MarshalPublicKeyPEM(edKey(t, 1).Public())
	if err != nil {
		t.Fatal(err)
	}
	type jsKey struct {
		ID        string `json:"id"`
		Algorithm string `json:"algorithm"`
		File      string `json:"file"`
	}
	var ks []jsKey
	for _, k := range merchantKeysB(t) {
		p, err := keys.MarshalPrivateKeyPEM(k.key)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, jsKey{k.id, string(k.alg), write(k.id+".pem", p)})
	}
	keysJSON, _ := json.Marshal(ks)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=tap", "test/fake-b.test.js")
	cmd.Dir = jsDir
	cmd.Env = append(os.Environ(), "QUILL_FAKE_B_URL="+f.srv.URL, "QUILL_FAKE_B_CA="+ca,
		"QUILL_FAKE_B_KEYS="+string(keysJSON), "QUILL_FAKE_B_PLATFORM_ID=PLAT-B1",
		"QUILL_FAKE_B_PLATFORM_PUB="+write("platform.pub.pem", platformPub))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node --test: %v\n%s", err, out.Bytes())
	}
	if !strings.Contains(out.String(), "# fail 0") || !strings.Contains(out.String(), "# skipped 0") {
		t.Fatalf("node --test:\n%s", out.Bytes())
	}

	// Every algorithm was accepted by Quill's verifier for the payment, and
	// the PSS key signed with the wrong algorithm was refused for it.
	f.mu.Lock()
	defer f.mu.Unlock()
	accepted := map[signing.Algorithm]int{}
	var refusedAlg int
	for _, r := range f.received {
		switch {
		case r.err == nil:
			accepted[r.verified.Algorithm]++
			if r.verified.KeyID == "" || (len(r.body) > 0 && !strings.Contains(r.verified.SignatureInput, `"content-digest"`)) {
				t.Fatalf("verified %+v", r.verified)
			}
		case errors.Is(r.err, signing.ErrAlgorithm):
			refusedAlg++
		default:
			t.Fatalf("the server refused a JS request: %v", r.err)
		}
	}
	for _, k := range merchantKeysB(t) {
		if accepted[k.alg] < 2 {
			t.Fatalf("%d %s requests accepted, want 2: %v", accepted[k.alg], k.alg, accepted)
		}
	}
	if refusedAlg != 1 {
		t.Fatalf("%d algorithm refusals, want 1", refusedAlg)
	}
}
