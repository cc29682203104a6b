package signing_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quillpay/quill/signing"
)

// npmDir holds the cross-implementation script and its locked dependency, the
// http-message-signatures package (an RFC 9421 implementation unrelated to
// Quill's).
var npmDir = filepath.Join("testdata", "npm-httpsig")

func nodeForHTTPSig(t *testing.T) string {
	t.Helper()
	const how = "run `npm ci --prefix signing/testdata/npm-httpsig` from the repository root (Node.js 18+ and npm needed), or set QUILL_SKIP_NODE_COMPAT=1 to skip"
	if os.Getenv("QUILL_SKIP_NODE_COMPAT") == "1" {
		t.Skip("QUILL_SKIP_NODE_COMPAT=1: skipping the RFC 9421 cross-implementation test; " + how)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: skipping the RFC 9421 cross-implementation test; " + how)
	}
	if _, err := os.Stat(filepath.Join(npmDir, "node_modules", "http-message-signatures", "package.json")); err != nil {
		t.Fatal("signing/testdata/npm-httpsig/node_modules is missing: " + how)
	}
	return node
}

type nodeMsg struct {
	Method  string              `json:"method,omitempty"`
	URL     string              `json:"url,omitempty"`
	Status  int                 `json:"status,omitempty"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body,omitempty"`
}

type nodeCase struct {
	Op       string   `json:"op"`
	Alg      string   `json:"alg"`
	KeyPEM   string   `json:"keyPem,omitempty"`
	PubPEM   string   `json:"pubPem,omitempty"`
	KeyID    string   `json:"keyid,omitempty"`
	Created  int64    `json:"created,omitempty"`
	Nonce    string   `json:"nonce,omitempty"`
	Fields   []string `json:"fields,omitempty"`
	Request  *nodeMsg `json:"request,omitempty"`
	Response *nodeMsg `json:"response,omitempty"`
}

type nodeResult struct {
	Headers  map[string]any `json:"headers"`
	OK       bool           `json:"ok"`
	DigestOK bool           `json:"digestOk"`
	Error    string         `json:"error"`
}

func runNode(t *testing.T, node string, cases []nodeCase) []nodeResult {
	t.Helper()
	in, err := json.Marshal(map[string]any{"cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "httpsig.mjs")
	cmd.Dir = npmDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("httpsig.mjs: %v\n%s", err, stderr.String())
	}
	var res struct{ Results []nodeResult }
	if err := json.Unmarshal(out, &res); err != nil || len(res.Results) != len(cases) {
		t.Fatalf("httpsig.mjs output %q: %v", out, err)
	}
	return res.Results
}

func pemFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func pubPEM(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// headerStrings turns the package's header object back into field lines.
func headerStrings(t *testing.T, h map[string]any) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for k, v := range h {
		switch v := v.(type) {
		case string:
			out[k] = []string{v}
		case []any:
			for _, s := range v {
				out[k] = append(out[k], s.(string))
			}
		default:
			t.Fatalf("header %s: %T", k, v)
		}
	}
	return out
}

// TestHTTPSigNodeCompat: requests signed by http-message-signatures verify in
// Quill for every algorithm, and the package verifies Quill's Ed25519 and
// P-256 response signatures (and refuses a tampered one); Quill's own client
// signer is accepted by the package too.
func TestHTTPSigNodeCompat(t *testing.T) {
	node := nodeForHTTPSig(t)
	f := newBFixture(t)
	files := map[signing.Algorithm]string{
		signing.RSAPKCS1SHA256:  "test-key-rsa.key.pem",
		signing.RSAPSSSHA512:    "other-rsa.key.pem",
		signing.ECDSAP256SHA256: "test-key-ecc-p256.key.pem",
		signing.Ed25519:         "test-key-ed25519.key.pem",
	}
	const target = "/v1/payments?x=1&note=a%20b"
	algs := []signing.Algorithm{signing.RSAPKCS1SHA256, signing.RSAPSSSHA512, signing.ECDSAP256SHA256, signing.Ed25519}
	var cases []nodeCase
	for i, alg := range algs {
		fields := []string{"@method", "@target-uri", "content-type", "content-digest"}
		if i%2 == 1 {
			fields = []string{"@method", "@authority", "@path", "@query", "@query-param;name=\"note\"", "content-type", "content-digest"}
		}
		cases = append(cases, nodeCase{Op: "sign-request", Alg: string(alg), KeyPEM: pemFile(t, files[alg]), KeyID: "K-" + string(alg),
			Created: now.Unix(), Nonce: "npm-nonce-" + string(alg), Fields: fields,
			Request: &nodeMsg{Method: "POST", URL: "https://api.quill.test" + target,
				Headers: map[string][]string{"Content-Type": {"application/json"}}, Body: string(payBody)}})
	}
	// Quill's client signer, verified by the package.
	goSigned := make([]signing.MessageRequest, len(algs))
	for i, alg := range algs {
		r := bRequest(payBody)
		r.Target = target
		goSigned[i] = f.signed(t, alg, r, byte(0x40+i))
		cases = append(cases, nodeCase{Op: "verify-request", Alg: string(alg), PubPEM: pubPEM(t, f.keys[alg].Public()),
			Request: &nodeMsg{Method: "POST", URL: "https://api.quill.test" + target, Headers: goSigned[i].Header, Body: string(payBody)}})
	}
	results := runNode(t, node, cases)

	var verified signing.Verified
	for i, alg := range algs {
		t.Run("npm signs "+string(alg), func(t *testing.T) {
			res := results[i]
			r := bRequest(payBody)
			r.Target = target
			r.Header = headerStrings(t, res.Headers)
			r.Header["Host"] = []string{"api.quill.test"}
			v, err := f.v.Verify(context.Background(), r)
			if err != nil {
				t.Fatalf("Quill refused the package's signature: %v\nheaders %v", err, r.Header)
			}
			if v.Algorithm != alg || v.Nonce != "npm-nonce-"+string(alg) {
				t.Fatalf("Verified %+v", v)
			}
			r.Body = []byte(`{"amount":"99.99"}`)
			if _, err := f.v.Verify(context.Background(), r); err == nil {
				t.Fatal("tampered body accepted")
			}
			verified = v
		})
	}
	for i, alg := range algs {
		t.Run("npm verifies Quill's request "+string(alg), func(t *testing.T) {
			if res := results[len(algs)+i]; !res.OK {
				t.Fatalf("package refused Quill's signature: %+v\n%v", res, goSigned[i].Header)
			}
		})
	}
	if verified.Label == "" {
		t.Fatal("no request verified")
	}

	// Quill's response signatures, verified by the package. The request the
	// package sees is the last one it signed (under its default label "sig"),
	// whose Verified the response signer binds.
	req := cases[len(algs)-1].Request
	req.Headers = headerStrings(t, results[len(algs)-1].Headers)
	body := []byte(`{"order_id":"ORD000000000001","status":"succeeded"}`)
	var respCases []nodeCase
	for _, k := range []struct {
		file string
		alg  signing.Algorithm
	}{{"test-key-ed25519.key.pem", signing.Ed25519}, {"test-key-ecc-p256.key.pem", signing.ECDSAP256SHA256}} {
		key := loadKey(t, k.file)
		s := &signing.MessageResponseSigner{Keys: platformKeys{"PB-" + string(k.alg), key}, Now: clock}
		mh, err := s.Sign(context.Background(), signing.MessageResponse{Status: 201,
			Header: map[string][]string{"Content-Type": {"application/json"}}, Body: body}, verified)
		if err != nil {
			t.Fatal(err)
		}
		h := map[string][]string{"Content-Type": {"application/json"}, "Content-Digest": {mh.ContentDigest},
			"Signature-Input": {mh.SignatureInput}, "Signature": {mh.Signature}}
		good := &nodeMsg{Status: 201, Headers: h, Body: string(body)}
		bad := &nodeMsg{Status: 200, Headers: h, Body: string(body)}
		respCases = append(respCases,
			nodeCase{Op: "verify-response", Alg: string(k.alg), PubPEM: pubPEM(t, key.Public()), Request: req, Response: good},
			nodeCase{Op: "verify-response", Alg: string(k.alg), PubPEM: pubPEM(t, key.Public()), Request: req, Response: bad})
	}
	for i, res := range runNode(t, node, respCases) {
		name := respCases[i].Alg
		if i%2 == 0 {
			if !res.OK || !res.DigestOK {
				t.Errorf("%s: package refused Quill's response signature: %+v", name, res)
			}
		} else if res.OK {
			t.Errorf("%s: package accepted a response whose status was changed", name)
		}
	}
	if verified.Label != "sig" || !strings.Contains(respCases[0].Response.Headers["Signature-Input"][0], `"signature";key="sig";req`) {
		t.Fatal("response does not bind the request's signature")
	}
}
