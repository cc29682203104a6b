package quillclient_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/quillclient"
	"github.com/quillpay/quill/signing"
)

// The scheme B (RFC 9421) cross-language vectors, testdata/vectors/scheme-b.json,
// checked here against signing and SchemeB and by clients/js.
type vectorFileB struct {
	Description string                `json:"description"`
	GeneratedBy string                `json:"generated_by"`
	Keys        map[string]vectorKeyB `json:"keys"`
	Requests    []requestVectorB      `json:"requests"`
	Responses   []responseVectorB     `json:"responses"`
}

type vectorKeyB struct {
	ID            string            `json:"id"`
	Algorithm     signing.Algorithm `json:"algorithm"`
	PrivateKeyPEM string            `json:"private_key_pem"`
	PublicKeyPEM  string            `json:"public_key_pem"`
}

type requestVectorB struct {
	Name      string `json:"name"`
	Key       string `json:"key"` // name in Keys
	Method    string `json:"method"`
	Scheme    string `json:"scheme"`
	Authority string `json:"authority"` // the Host header as sent
	Target    string `json:"target"`    // the raw request-target
	// Headers are the other header fields sent (lower-case names).
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body,omitempty"`
	BodyBase64 string            `json:"body_base64,omitempty"` // instead of Body, for bytes that are not UTF-8
	Created    int64             `json:"created"`
	Nonce      string            `json:"nonce"` // 32 hex digits: the 16 bytes the nonce source yields
	// What the signer adds: Content-Digest (for a body), Signature-Input,
	// Signature; and the signature base they come from.
	ContentDigest  string `json:"content_digest,omitempty"`
	SignatureInput string `json:"signature_input"`
	SignatureBase  string `json:"signature_base"`
	Signature      string `json:"signature"`
	// Deterministic algorithms (rsa-v1_5-sha256, ed25519) reproduce Signature
	// byte for byte; for rsa-pss-sha512 and ecdsa-p256-sha256 it can only be
	// verified.
	Deterministic bool `json:"deterministic"`
}

type responseVectorB struct {
	Name    string            `json:"name"`
	Key     string            `json:"key"`     // the key that really made Signature
	Request int               `json:"request"` // index in Requests of the request it is checked as the answer to
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"` // as received, Content-Digest and the signature fields included
	Body    string            `json:"body"`
	Created int64             `json:"created"`
	// SignatureBase is the base a verifier builds from this response and
	// request; for an invalid vector it is not what was signed.
	SignatureBase string `json:"signature_base"`
	Valid         bool   `json:"valid"`
	Deterministic bool   `json:"deterministic"`
	Note          string `json:"note,omitempty"`
}

const vectorMerchantB = "M100"

func (r requestVectorB) body(tb testing.TB) []byte {
	if r.BodyBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(r.BodyBase64)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	if r.Body == "" {
		return nil
	}
	return []byte(r.Body)
}

// message is the request as sent, signature fields included when signed.
func (r requestVectorB) message(tb testing.TB, signed bool) signing.MessageRequest {
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	if signed {
		if r.ContentDigest != "" {
			h.Set("Content-Digest", r.ContentDigest)
		}
		h.Set("Signature-Input", r.SignatureInput)
		h.Set("Signature", r.Signature)
	}
	return signing.MessageRequest{Method: r.Method, Scheme: r.Scheme, Authority: r.Authority, Target: r.Target,
		Header: h, Body: r.body(tb), Merchant: vectorMerchantB}
}

func (r responseVectorB) message() signing.MessageResponse {
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	return signing.MessageResponse{Status: r.Status, Header: h, Body: []byte(r.Body)}
}

func loadKeyFile(tb testing.TB, path string) (crypto.Signer, string, string) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := keys.ParsePrivateKeyPEM(b)
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := keys.MarshalPublicKeyPEM(k.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return k, string(b), string(pub)
}

func vectorKeysB(t *testing.T) (map[string]vectorKeyB, map[string]crypto.Signer) {
	rfc := filepath.Join("..", "signing", "testdata", "rfc9421")
	specs := []struct {
		name, path string
		alg        signing.Algorithm
	}{
		{"test-key-rsa", filepath.Join(rfc, "test-key-rsa.key.pem"), signing.RSAPKCS1SHA256},
		{"test-key-rsa-pss", filepath.Join(rfc, "test-key-rsa-pss.key.pem"), signing.RSAPSSSHA512},
		{"test-key-ecc-p256", filepath.Join(rfc, "test-key-ecc-p256.key.pem"), signing.ECDSAP256SHA256},
		{"test-key-ed25519", filepath.Join(rfc, "test-key-ed25519.key.pem"), signing.Ed25519},
		{"platform-ed25519", filepath.Join(vectorDir, "platform-ed25519.key.pem"), signing.Ed25519},
		{"platform-p256", filepath.Join(vectorDir, "platform-p256.key.pem"), signing.ECDSAP256SHA256},
	}
	out, signers := map[string]vectorKeyB{}, map[string]crypto.Signer{}
	for _, s := range specs {
		k, priv, pub := loadKeyFile(t, s.path)
		id := s.name
		if strings.HasPrefix(s.name, "platform-") {
			id = "PLATFORM-" + strings.ToUpper(strings.TrimPrefix(s.name, "platform-")) + "-1"
		}
		out[s.name] = vectorKeyB{ID: id, Algorithm: s.alg, PrivateKeyPEM: priv, PublicKeyPEM: pub}
		signers[s.name] = k
	}
	return out, signers
}

// merchantResolver resolves the vector keys as the merchant's registered keys.
func merchantResolver(t *testing.T, ks map[string]vectorKeyB) regKeys {
	reg := regKeys{}
	for _, k := range ks {
		if !strings.HasPrefix(k.ID, "PLATFORM-") {
			reg[vectorMerchantB+"/"+k.ID] = signing.RegisteredKey{Public: vectorPublic(t, vectorKey{PublicKeyPEM: k.PublicKeyPEM}), Algorithm: k.Algorithm}
		}
	}
	return reg
}

// verifyRequestB runs Quill's verifier over a signed request at its created time.
func verifyRequestB(t *testing.T, reg regKeys, m signing.MessageRequest, created int64) error {
	v := &signing.MessageVerifier{Keys: reg, Nonces: &memNonces{seen: map[string]bool{}},
		Now: func() time.Time { return time.Unix(created, 0) }}
	_, err := v.Verify(context.Background(), m)
	return err
}

// platformLookup finds the vector's platform keys by id.
func platformLookup(t *testing.T, ks map[string]vectorKeyB) func(string) (signing.RegisteredKey, error) {
	return func(id string) (signing.RegisteredKey, error) {
		for _, k := range ks {
			if k.ID == id && strings.HasPrefix(id, "PLATFORM-") {
				return signing.RegisteredKey{Public: vectorPublic(t, vectorKey{PublicKeyPEM: k.PublicKeyPEM}), Algorithm: k.Algorithm}, nil
			}
		}
		return signing.RegisteredKey{}, signing.ErrUnknownKey
	}
}

// buildVectorsB computes every vector with the signing package. A
// non-deterministic signature (PSS, ECDSA) is kept from prev when its vector is
// otherwise unchanged and it still verifies, so regenerating is stable.
func buildVectorsB(t *testing.T, prev *vectorFileB) []byte {
	ks, signers := vectorKeysB(t)
	reg := merchantResolver(t, ks)
	v := vectorFileB{
		Description: "Quill scheme B (RFC 9421 HTTP Message Signatures) vectors: requests signed with the merchant keys of " +
			"RFC 9421 Appendix B.1 (all four algorithms; signatures reproducible for rsa-v1_5-sha256 and ed25519, verification-only " +
			"for rsa-pss-sha512 and ecdsa-p256-sha256) and responses signed with Quill's Ed25519 or P-256 platform key, bound to the " +
			"request's signature (\"signature\";key=\"sig1\";req). Nonces are the hex of the 16 bytes the nonce source yields. " +
			"Checked by quillclient (Go: signing and SchemeB) and clients/js (node --test).",
		GeneratedBy: "go test ./quillclient -run TestGenerateVectors -update",
		Keys:        ks,
	}
	const authority = "quill.example:8443"
	jsonType := map[string]string{"content-type": "application/json"}
	reqs := []requestVectorB{
		{Name: "POST payment, rsa-v1_5-sha256", Key: "test-key-rsa", Method: "POST", Target: "/v1/payments", Headers: jsonType,
			Body: `{"order_id":"ORD000000000001","amount":"12.34","currency":"CNY"}`, Created: 1700000000, Nonce: "593BEC0C930BF1AFEB40B4A08C8FB242"},
		{Name: "GET with a query string signed as sent, rsa-v1_5-sha256", Key: "test-key-rsa", Method: "GET",
			Target: "/v1/payments/ORD000000000001?mchid=M100&x=a%20b&y=%E4%B8%AD&z=", Created: 1700000001, Nonce: "0123456789ABCDEF0123456789ABCDEF"},
		{Name: "POST with UTF-8 text, ed25519", Key: "test-key-ed25519", Method: "POST", Target: "/v1/payments", Headers: jsonType,
			Body: `{"order_id":"ORD000000000002","amount":"0.01","currency":"CNY","description":"咖啡 ☕ café"}`, Created: 1700000002, Nonce: "00000000000000000000000000000001"},
		{Name: "GET without body: no content-digest, ed25519", Key: "test-key-ed25519", Method: "GET", Target: "/v1/payments/ORD000000000002",
			Created: 1700000003, Nonce: "FEDCBA9876543210FEDCBA9876543210"},
		{Name: "POST with bytes that are not UTF-8 and no content type, ed25519", Key: "test-key-ed25519", Method: "POST", Target: "/v1/payments",
			BodyBase64: base64.StdEncoding.EncodeToString([]byte("{\"x\":\"\xff\xfe\x00\"}\r\n")), Created: 1700000004, Nonce: "11111111111111111111111111111111"},
		{Name: "Host in upper case with the default port: @target-uri lowercases it and drops :443, ed25519", Key: "test-key-ed25519", Method: "GET",
			Authority: "Quill.Example:443", Target: "/v1/certificates", Created: 1700000005, Nonce: "22222222222222222222222222222222"},
		{Name: "POST deposit, rsa-pss-sha512 (verification only)", Key: "test-key-rsa-pss", Method: "POST", Target: "/v1/deposits", Headers: jsonType,
			Body: "{ \"order_id\" : \"ORD000000000003\",\r\n  \"user_id\":\"42\", \"amount\":\"100.00\", \"currency\":\"CNY\" }\n", Created: 1700000006, Nonce: "ABCDEFABCDEFABCDEFABCDEFABCDEFAB"},
		{Name: "POST refund, ecdsa-p256-sha256 (verification only)", Key: "test-key-ecc-p256", Method: "POST", Target: "/v1/refunds?dry_run=1", Headers: jsonType,
			Body: `{"order_id":"ORD000000000001","amount":"1.00","currency":"CNY"}`, Created: 1700000007, Nonce: "33333333333333333333333333333333"},
	}
	for i := range reqs {
		r := &reqs[i]
		if r.Scheme == "" {
			r.Scheme = "https"
		}
		if r.Authority == "" {
			r.Authority = authority
		}
		k := ks[r.Key]
		r.Deterministic = k.Algorithm == signing.RSAPKCS1SHA256 || k.Algorithm == signing.Ed25519
		s := signing.RequestSigner{Key: signers[r.Key], KeyID: k.ID, Algorithm: k.Algorithm,
			Now: func() time.Time { return time.Unix(r.Created, 0) }, Rand: fixedNonces(t, r.Nonce)}
		h, err := s.Sign(r.message(t, false))
		if err != nil {
			t.Fatal(err)
		}
		r.ContentDigest, r.SignatureInput, r.Signature = h.ContentDigest, h.SignatureInput, h.Signature
		if r.SignatureBase, err = signing.RequestSignatureBase(r.message(t, true), r.SignatureInput, signing.DefaultLabel); err != nil {
			t.Fatal(err)
		}
		if !r.Deterministic && prev != nil {
			for _, p := range prev.Requests {
				if p.Name == r.Name && p.SignatureBase == r.SignatureBase && p.SignatureInput == r.SignatureInput {
					old := *r
					old.Signature = p.Signature
					if verifyRequestB(t, reg, old.message(t, true), old.Created) == nil {
						r.Signature = p.Signature
					}
				}
			}
		}
		if err := verifyRequestB(t, reg, r.message(t, true), r.Created); err != nil {
			t.Fatalf("%s: Quill's verifier refuses the vector: %v", r.Name, err)
		}
	}
	v.Requests = reqs

	sign := func(name, key string, req int, status int, body string, created int64) responseVectorB {
		k := ks[key]
		s := &signing.MessageResponseSigner{Keys: staticPlatform{ks["platform-ed25519"].ID, signers[key]},
			Now: func() time.Time { return time.Unix(created, 0) }}
		if strings.HasPrefix(key, "platform-") {
			s.Keys = staticPlatform{k.ID, signers[key]}
		}
		resp := signing.MessageResponse{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
		h, err := s.Sign(context.Background(), resp, signing.Verified{Scheme: signing.SchemeHTTPSig, Label: signing.DefaultLabel, Signature: reqs[req].Signature})
		if err != nil {
			t.Fatal(err)
		}
		return responseVectorB{Name: name, Key: key, Request: req, Status: status, Body: body, Created: created, Valid: true,
			Deterministic: k.Algorithm == signing.Ed25519,
			Headers: map[string]string{"content-type": "application/json", "content-digest": h.ContentDigest,
				"signature-input": h.SignatureInput, "signature": h.Signature}}
	}
	pay := sign("payment response, Ed25519 platform key", "platform-ed25519", 0, 200,
		`{"id":"pay_17","kind":"payment","order_id":"ORD000000000001","merchant_id":"M100","status":"succeeded","amount":"12.34","fee":"0.07","currency":"CNY"}`, 1700000000)
	query := sign("query response (a GET's request signature is bound too)", "platform-ed25519", 1, 200,
		`{"order_id":"ORD000000000001","status":"succeeded"}`, 1700000001)
	problem := sign("error response: refusals are signed too", "platform-ed25519", 3, 401,
		`{"type":"about:blank","title":"Unauthorized","status":401,"code":"signature_invalid","hint":"created is 301 s behind Quill's clock"}`, 1700000003)
	utf8 := sign("UTF-8 body", "platform-ed25519", 2, 200, `{"description":"咖啡 ☕ café"}`, 1700000002)
	p256 := sign("P-256 platform key (verification only)", "platform-p256", 0, 200, `{"order_id":"ORD000000000001","status":"succeeded"}`, 1700000000)
	if prev != nil {
		for _, p := range prev.Responses {
			if p.Name == p256.Name && p.Headers["signature-input"] == p256.Headers["signature-input"] && p.Body == p256.Body {
				if _, err := signing.VerifyMessageResponse(p.message(), reqs[p.Request].message(t, true), platformLookup(t, ks)); err == nil {
					p256.Headers["signature"] = p.Headers["signature"]
				}
			}
		}
	}
	tampered := pay
	tampered.Name, tampered.Valid, tampered.Note = "body altered after signing", false, "amount 12.34 changed to 12.35: Content-Digest no longer matches"
	tampered.Body = strings.Replace(pay.Body, "12.34", "12.35", 1)
	restatused := pay
	restatused.Name, restatused.Valid, restatused.Note = "status altered after signing", false, "200 changed to 201"
	restatused.Status = 201
	elsewhere := pay
	elsewhere.Name, elsewhere.Valid, elsewhere.Request = "the answer to another request", false, 2
	elsewhere.Note = "a valid response to request 0 presented as the answer to request 2: the covered request signature differs"
	merchantSigned := sign("signed by a merchant key under the platform key id", "test-key-ed25519", 0, 200, pay.Body, 1700000000)
	merchantSigned.Valid, merchantSigned.Note = false, "correct for the merchant's Ed25519 key, which must not verify responses"
	v.Responses = []responseVectorB{pay, query, problem, utf8, p256, tampered, restatused, elsewhere, merchantSigned}
	for i := range v.Responses {
		r := &v.Responses[i]
		r.Headers = cloneMap(r.Headers)
		req := reqs[r.Request].message(t, true)
		base, err := signing.ResponseSignatureBase(r.message(), &req, r.Headers["signature-input"], signing.DefaultLabel)
		if err != nil {
			t.Fatal(err)
		}
		r.SignatureBase = base
		_, err = signing.VerifyMessageResponse(r.message(), req, platformLookup(t, ks))
		if (err == nil) != r.Valid {
			t.Fatalf("%s: VerifyMessageResponse %v, valid=%v", r.Name, err, r.Valid)
		}
	}

	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func cloneMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func readVectorsB(t *testing.T) *vectorFileB {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, "scheme-b.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && *update {
			return nil
		}
		t.Fatal(err)
	}
	var v vectorFileB
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// TestGenerateVectorsB recomputes the scheme B vectors with the signing
// package and fails if the committed file differs (-update rewrites it).
func TestGenerateVectorsB(t *testing.T) {
	got := buildVectorsB(t, readVectorsB(t))
	path := filepath.Join(vectorDir, "scheme-b.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the signing package: run go test ./quillclient -run TestGenerateVectors -update and review the diff", path)
	}
}

// vectorBaseB records the request as it reached the wire side of the client
// and answers with one response vector (or an unsigned 500 when there is none).
type vectorBaseB struct {
	res    *responseVectorB
	header http.Header
	host   string
	target string
	body   []byte
}

func (b *vectorBaseB) RoundTrip(req *http.Request) (*http.Response, error) {
	b.header, b.host, b.target = req.Header.Clone(), req.Host, req.URL.RequestURI()
	b.body = nil
	if req.Body != nil {
		b.body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	if b.res == nil {
		return &http.Response{StatusCode: 500, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	}
	m := b.res.message()
	return &http.Response{StatusCode: m.Status, Header: m.Header, Body: io.NopCloser(bytes.NewReader(m.Body)), Request: req}, nil
}

// TestVectorsBClient checks every vector against signing and sends each
// request vector through a SchemeB Transport with the vector's clock and
// nonce source: the signature fields on the wire must be the vector's (byte
// for byte for the deterministic algorithms, verifying for the others), and
// each response vector must be accepted or refused as it says.
func TestVectorsBClient(t *testing.T) {
	v := readVectorsB(t)
	if len(v.Requests) < 6 || len(v.Responses) < 6 {
		t.Fatalf("only %d request and %d response vectors", len(v.Requests), len(v.Responses))
	}
	reg := merchantResolver(t, v.Keys)
	var pinned []quillclient.PlatformKey
	for name, k := range v.Keys {
		if strings.HasPrefix(name, "platform-") {
			pinned = append(pinned, quillclient.PlatformKey{ID: k.ID, Public: vectorPublic(t, vectorKey{PublicKeyPEM: k.PublicKeyPEM})})
		}
	}
	transport := func(r requestVectorB, res *responseVectorB) (*quillclient.Transport, *vectorBaseB) {
		k := v.Keys[r.Key]
		base := &vectorBaseB{res: res}
		tr, err := quillclient.NewTransport(quillclient.WithBase(base), quillclient.WithPinnedKeys(pinned...),
			quillclient.WithSchemeB(), quillclient.WithKeyID(k.ID), quillclient.WithAlgorithm(k.Algorithm),
			quillclient.WithPrivateKey(vectorSigner(t, vectorKey{PrivateKeyPEM: k.PrivateKeyPEM})),
			quillclient.WithClock(func() time.Time { return time.Unix(r.Created, 0) }),
			quillclient.WithNonceSource(fixedNonces(t, r.Nonce)))
		if err != nil {
			t.Fatal(err)
		}
		return tr, base
	}
	do := func(tr *quillclient.Transport, r requestVectorB) (*http.Response, []byte, error) {
		req, err := http.NewRequest(r.Method, r.Scheme+"://"+r.Authority+r.Target, bodyOf(r.body(t)))
		if err != nil {
			t.Fatal(err)
		}
		for k, val := range r.Headers {
			req.Header.Set(k, val)
		}
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, b, err
	}
	for _, r := range v.Requests {
		t.Run("request/"+r.Name, func(t *testing.T) {
			base, err := signing.RequestSignatureBase(r.message(t, true), r.SignatureInput, signing.DefaultLabel)
			if err != nil || base != r.SignatureBase {
				t.Fatalf("signature base (%v)\n%s\nvector\n%s", err, base, r.SignatureBase)
			}
			if err := verifyRequestB(t, reg, r.message(t, true), r.Created); err != nil {
				t.Fatalf("Quill's verifier refuses the vector: %v", err)
			}
			tr, wire := transport(r, nil)
			if _, _, err := do(tr, r); !errors.Is(err, quillclient.ErrUnverified) {
				t.Fatalf("%v: the stub answers unsigned", err)
			}
			if wire.target != r.Target || !bytes.Equal(wire.body, r.body(t)) {
				t.Fatalf("sent %s %q", wire.target, wire.body)
			}
			if got := wire.header.Get("Signature-Input"); got != r.SignatureInput {
				t.Fatalf("Signature-Input\n got %s\nwant %s", got, r.SignatureInput)
			}
			if got := wire.header.Get("Content-Digest"); got != r.ContentDigest {
				t.Fatalf("Content-Digest %q, want %q", got, r.ContentDigest)
			}
			sent := r
			sent.Signature = wire.header.Get("Signature")
			if r.Deterministic && sent.Signature != r.Signature {
				t.Fatalf("Signature\n got %s\nwant %s", sent.Signature, r.Signature)
			}
			if err := verifyRequestB(t, reg, sent.message(t, true), r.Created); err != nil {
				t.Fatalf("the client's signature does not verify: %v", err)
			}
		})
	}
	for _, rv := range v.Responses {
		t.Run("response/"+rv.Name, func(t *testing.T) {
			r := v.Requests[rv.Request]
			req := r.message(t, true)
			base, err := signing.ResponseSignatureBase(rv.message(), &req, rv.Headers["signature-input"], signing.DefaultLabel)
			if err != nil || base != rv.SignatureBase {
				t.Fatalf("signature base (%v)\n%s\nvector\n%s", err, base, rv.SignatureBase)
			}
			_, err = signing.VerifyMessageResponse(rv.message(), req, platformLookup(t, v.Keys))
			if (err == nil) != rv.Valid {
				t.Fatalf("signing.VerifyMessageResponse: %v, vector valid=%v", err, rv.Valid)
			}
			if !r.Deterministic {
				t.Fatalf("response vectors answer deterministic requests, so the client resends the same signature")
			}
			// The transport sends the request vector (same signature) and
			// gets this response.
			tr, _ := transport(r, &rv)
			res, body, err := do(tr, r)
			if rv.Valid {
				if err != nil || string(body) != rv.Body || res.StatusCode != rv.Status {
					t.Fatalf("valid response refused or altered: %v %q", err, body)
				}
				return
			}
			if !errors.Is(err, quillclient.ErrUnverified) || !(errors.Is(err, signing.ErrBadSignature) || errors.Is(err, signing.ErrBadDigest)) {
				t.Fatalf("invalid response: %v, want ErrUnverified", err)
			}
		})
	}
}
