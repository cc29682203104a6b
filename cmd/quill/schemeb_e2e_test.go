package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quillpay/quill/internal/client"
	"github.com/quillpay/quill/internal/devenv"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/policy"
	"github.com/quillpay/quill/signing"
)

// Scheme B merchants, one per algorithm besides M100's rsa-v1_5-sha256.
var schemeBMerchants = map[signing.Algorithm]string{
	signing.RSAPKCS1SHA256:  demoMerchant,
	signing.RSAPSSSHA512:    "BPSS",
	signing.ECDSAP256SHA256: "BEC",
	signing.Ed25519:         "BED",
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// schemeBServer is a server with a merchant for each scheme B algorithm and
// its log captured.
func schemeBServer(t testing.TB) (*harness, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	h := startServerWith(t, serverOptions{logs: logs, tweaks: []func(*harness, *config){func(h *harness, _ *config) {
		for alg, id := range schemeBMerchants {
			if id == demoMerchant {
				continue
			}
			if _, err := devenv.AddMerchantWithAlgorithm(h.dir, policy.Merchant{ID: id, Name: id, FeeBps: 50}, keys.Algorithm(alg), time.Now().Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}}})
	return h, logs
}

// bResponse is a scheme B exchange: the request as sent and the response.
type bResponse struct {
	status int
	header http.Header
	body   []byte
	req    signing.MessageRequest // as sent, for the response's req binding
}

// sendB signs method target body as merchant with scheme B (alg overrides the
// registered algorithm when set), lets tamper change the request after
// signing, and sends it.
func (h *harness) sendB(merchant string, alg signing.Algorithm, method, target string, body []byte, tamper func(r *http.Request, body *[]byte)) bResponse {
	h.t.Helper()
	mc, err := devenv.LoadMerchant(h.dir, merchant)
	if err != nil {
		h.t.Fatal(err)
	}
	if alg == "" {
		alg = signing.Algorithm(mc.Algorithm)
	}
	host := strings.TrimPrefix(h.base, "https://")
	hdr := http.Header{}
	if body != nil {
		hdr.Set("Content-Type", "application/json")
	}
	rs := signing.RequestSigner{Key: mc.SigningKey, KeyID: mc.KeyID, Algorithm: alg, Now: h.clock.Now}
	mh, err := rs.Sign(signing.MessageRequest{Method: method, Scheme: "https", Authority: host, Target: target, Header: hdr, Body: body})
	if err != nil {
		h.t.Fatal(err)
	}
	if mh.ContentDigest != "" {
		hdr.Set("Content-Digest", mh.ContentDigest)
	}
	hdr.Set("Signature-Input", mh.SignatureInput)
	hdr.Set("Signature", mh.Signature)
	return h.rawB(&mc.TLS, method, target, body, hdr, tamper)
}

// rawB sends exactly the given headers and body.
func (h *harness) rawB(cert *tls.Certificate, method, target string, body []byte, hdr http.Header, tamper func(r *http.Request, body *[]byte)) bResponse {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+target, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header = hdr
	if tamper != nil {
		tamper(req, &body)
	}
	if body != nil {
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	hc := h.httpClient(cert)
	defer hc.CloseIdleConnections()
	res, err := hc.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return bResponse{status: res.StatusCode, header: res.Header, body: b,
		req: signing.MessageRequest{Method: method, Scheme: "https", Authority: req.Host, Target: target, Header: req.Header}}
}

// verifyB checks the response's RFC 9421 signature with the Ed25519
// platform key from the store, as a scheme B client does.
func (h *harness) verifyB(r bResponse) error {
	ks, err := keys.OpenFileStore(filepath.Join(h.dir, "keys"), keys.FileOptions{})
	if err != nil {
		return err
	}
	_, err = signing.VerifyMessageResponse(signing.MessageResponse{Status: r.status, Header: r.header, Body: r.body}, r.req,
		func(id string) (signing.RegisteredKey, error) {
			k, err := ks.PublicKey(context.Background(), keys.PlatformEd25519Owner, id)
			if err != nil {
				return signing.RegisteredKey{}, fmt.Errorf("%w: %v", signing.ErrUnknownKey, err)
			}
			return signing.RegisteredKey{Public: k.Public, Algorithm: signing.Algorithm(k.Algorithm)}, nil
		})
	return err
}

func bProblem(t *testing.T, r bResponse) map[string]any {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("%d %s: %v", r.status, r.body, err)
	}
	return p
}

// TestSchemeBEndToEnd pays with RFC 9421 in each of the four algorithms and
// checks the refusals a scheme B client meets, each answered with an
// RFC 9421 signature bound to the request.
func TestSchemeBEndToEnd(t *testing.T) {
	h, logs := schemeBServer(t)
	user := fmt.Sprint(time.Now().UnixNano() % 1e6)
	h.deposit(user, "100.00")
	tok := h.token(user)

	for _, alg := range []signing.Algorithm{signing.RSAPKCS1SHA256, signing.RSAPSSSHA512, signing.ECDSAP256SHA256, signing.Ed25519} {
		merchant := schemeBMerchants[alg]
		t.Run("payment "+string(alg), func(t *testing.T) {
			order := newOrderID()
			r := h.sendB(merchant, "", "POST", "/v1/payments", paymentBody(order, "1.00", tok), nil)
			if r.status != 200 || !bytes.Contains(r.body, []byte(`"status":"succeeded"`)) {
				t.Fatalf("payment: %d %s", r.status, r.body)
			}
			if err := h.verifyB(r); err != nil {
				t.Fatalf("response signature: %v", err)
			}
			if r.header.Get("Wechatpay-Signature") != "" {
				t.Fatal("a scheme B answer carries a scheme A signature too")
			}
			if !strings.Contains(r.header.Get("Signature-Input"), `alg="ed25519"`) {
				t.Fatalf("response not signed with the Ed25519 platform key: %s", r.header.Get("Signature-Input"))
			}
			// The evidence lets an auditor re-verify offline.
			var scheme, keyID, auth string
			if err := h.db.QueryRow(context.Background(),
				`SELECT evidence_scheme, evidence_key_id, authorization_header FROM entries WHERE order_id = $1`, order).Scan(&scheme, &keyID, &auth); err != nil {
				t.Fatal(err)
			}
			mc, _ := devenv.LoadMerchant(h.dir, merchant)
			if scheme != signing.SchemeHTTPSig || keyID != mc.KeyID ||
				!strings.HasPrefix(auth, "Signature-Input: sig1=(") || !strings.Contains(auth, "\nSignature: sig1=:") {
				t.Fatalf("evidence %q %q %q", scheme, keyID, auth)
			}
			// GET works too, and is answered in scheme B.
			g := h.sendB(merchant, "", "GET", "/v1/payments/"+order, nil, nil)
			if g.status != 200 || h.verifyB(g) != nil {
				t.Fatalf("GET: %d %s %v", g.status, g.body, h.verifyB(g))
			}
		})
	}

	refusal := func(t *testing.T, r bResponse, status int, reason string) map[string]any {
		t.Helper()
		if r.status != status {
			t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
		}
		if err := h.verifyB(r); err != nil {
			t.Fatalf("refusal not verifiable by a scheme B client: %v\n%s", err, r.header)
		}
		p := bProblem(t, r)
		if p["reason"] != reason {
			t.Fatalf("reason %v, want %s: %s", p["reason"], reason, r.body)
		}
		return p
	}

	t.Run("replay", func(t *testing.T) {
		var sent http.Header
		var sentBody []byte
		order := newOrderID()
		first := h.sendB("BED", "", "POST", "/v1/payments", paymentBody(order, "1.00", tok), func(r *http.Request, b *[]byte) {
			sent, sentBody = r.Header.Clone(), *b
		})
		if first.status != 200 {
			t.Fatalf("first: %d %s", first.status, first.body)
		}
		mc, _ := devenv.LoadMerchant(h.dir, "BED")
		again := h.rawB(&mc.TLS, "POST", "/v1/payments", sentBody, sent, nil)
		refusal(t, again, 401, "nonce_replayed")
		if n := h.entries(order); n != 1 {
			t.Fatalf("%d entries", n)
		}
	})
	t.Run("wrong digest", func(t *testing.T) {
		order := newOrderID()
		r := h.sendB("BEC", "", "POST", "/v1/payments", paymentBody(order, "1.00", tok), func(_ *http.Request, b *[]byte) {
			*b = bytes.Replace(*b, []byte(`"1.00"`), []byte(`"9.00"`), 1)
		})
		p := refusal(t, r, 401, "content_digest_mismatch")
		if !strings.Contains(fmt.Sprint(p["hint"]), "the body is the likely cause") {
			t.Fatalf("hint %v", p["hint"])
		}
		if h.entries(order) != 0 {
			t.Fatal("recorded")
		}
	})
	t.Run("alg mismatch", func(t *testing.T) {
		r := h.sendB(demoMerchant, signing.RSAPSSSHA512, "GET", "/v1/payments/ORD999999999999", nil, nil)
		p := refusal(t, r, 401, "algorithm_mismatch")
		if !strings.Contains(fmt.Sprint(p["hint"]), `registered algorithm "rsa-v1_5-sha256"`) {
			t.Fatalf("hint %v", p["hint"])
		}
	})
	t.Run("both schemes", func(t *testing.T) {
		target := "/v1/payments/ORD999999999999"
		r := h.sendB(demoMerchant, "", "GET", target, nil, func(r *http.Request, _ *[]byte) {
			r.Header.Set("Authorization", h.sign(demoMerchant, nil, "", "GET", target, nil, h.clock.Now()))
		})
		p := refusal(t, r, 400, "signature_scheme_ambiguous")
		if p["code"] != "signature_scheme_ambiguous" {
			t.Fatalf("code %v", p["code"])
		}
		// Whichever scheme the client meant, it can verify the refusal.
		if err := h.verifyResponse(&client.Response{Status: r.status, Header: r.header, Body: r.body}); err != nil {
			t.Fatalf("scheme A signature of the ambiguous refusal: %v", err)
		}
	})
	t.Run("malformed Signature-Input is refused signed and bound", func(t *testing.T) {
		r := h.sendB("BED", "", "GET", "/v1/payments/ORD999999999999", nil, func(r *http.Request, _ *[]byte) {
			r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `("@method"`, `("@method`, 1))
		})
		refusal(t, r, 401, "signature_malformed")
		if !strings.Contains(r.header.Get("Signature-Input"), `"signature";key="sig1";req`) {
			t.Fatalf("refusal not bound to the request's signature: %s", r.header.Get("Signature-Input"))
		}
	})
	t.Run("no signature at all", func(t *testing.T) {
		mc, _ := devenv.LoadMerchant(h.dir, "BED")
		r := h.raw(&mc.TLS, "GET", "/v1/payments/ORD999999999999", nil, "")
		if p := problem(t, r); r.Status != 401 || p["reason"] != "signature_missing" {
			t.Fatalf("%d %v", r.Status, p)
		}
	})

	// A live payer token never appears in a refusal or the log, in either
	// scheme, even when the body is echoed back.
	t.Run("no token in responses or logs", func(t *testing.T) {
		order := newOrderID()
		body := paymentBody(order, "1.00", tok)
		pretty := bytes.ReplaceAll(body, []byte(`":"`), []byte(`": "`))
		var outs [][]byte
		// Scheme A: signed over the compact body, sent pretty (re-serialized).
		ra := h.raw(ptr(h.certs[demoMerchant]), "POST", "/v1/payments", pretty, h.sign(demoMerchant, nil, "", "POST", "/v1/payments", body, h.clock.Now()))
		if p := problem(t, ra); ra.Status != 401 || !strings.Contains(fmt.Sprint(p["hint"]), "the body is the likely cause") {
			t.Fatalf("scheme A re-serialized: %d %v", ra.Status, p)
		}
		outs = append(outs, ra.Body, []byte(fmt.Sprint(ra.Header)))
		// Scheme B: a bad signature echoes the signature base.
		rb := h.sendB("BED", "", "POST", "/v1/payments", body, func(r *http.Request, _ *[]byte) {
			r.Header.Set("Signature", "sig1=:"+strings.Repeat("A", 86)+"==:")
		})
		refusal(t, rb, 401, "signature_mismatch")
		outs = append(outs, rb.body, []byte(fmt.Sprint(rb.header)))
		segments := strings.Split(tok, ".")
		for _, out := range append(outs, []byte(logs.String())) {
			for _, s := range append(segments, tok) {
				if bytes.Contains(out, []byte(s)) {
					t.Fatalf("token segment %q leaked in:\n%s", s, out)
				}
			}
		}
		if !strings.Contains(string(ra.Body), `\"payer_token\": \"[redacted]\"`) {
			t.Fatalf("the echo should show the redaction: %s", ra.Body)
		}
	})
}
