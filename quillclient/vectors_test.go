package quillclient_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
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

var update = flag.Bool("update", false, "rewrite testdata/vectors/scheme-a.json and scheme-b.json")

// vectorDir holds the cross-language vectors, shared with clients/js.
var vectorDir = filepath.Join("..", "testdata", "vectors")

// vectorFile is the JSON document both the Go and the JS tests check.
type vectorFile struct {
	Description string               `json:"description"`
	GeneratedBy string               `json:"generated_by"`
	Keys        map[string]vectorKey `json:"keys"`
	Requests    []requestVector      `json:"requests"`
	Responses   []responseVector     `json:"responses"`
}

type vectorKey struct {
	ID            string `json:"id"`
	PrivateKeyPEM string `json:"private_key_pem"`
	PublicKeyPEM  string `json:"public_key_pem"`
}

type requestVector struct {
	Name      string `json:"name"`
	Key       string `json:"key"` // name in Keys
	Merchant  string `json:"merchant"`
	KeyID     string `json:"key_id"`
	Method    string `json:"method"`
	Target    string `json:"target"`
	Timestamp string `json:"timestamp"`
	Nonce     string `json:"nonce"`
	// Body is the body as UTF-8 text; BodyBase64, when set instead, holds
	// bytes that are not UTF-8. Neither: no body.
	Body       string `json:"body,omitempty"`
	BodyBase64 string `json:"body_base64,omitempty"`
	// StringToSign is the string to sign as text; StringToSignBase64 replaces
	// it when the body is not UTF-8.
	StringToSign       string `json:"string_to_sign,omitempty"`
	StringToSignBase64 string `json:"string_to_sign_base64,omitempty"`
	Signature          string `json:"signature"`
	Authorization      string `json:"authorization"`
}

type responseVector struct {
	Name       string `json:"name"`
	Key        string `json:"key"` // the key that really made Signature
	Serial     string `json:"serial"`
	Timestamp  string `json:"timestamp"`
	Nonce      string `json:"nonce"`
	Body       string `json:"body"`
	Message    string `json:"message"` // what a verifier hashes: TS\nNONCE\nBODY\n
	Signature  string `json:"signature"`
	Valid      bool   `json:"valid"` // under the platform key named by Serial
	Note       string `json:"note,omitempty"`
	StatusCode int    `json:"status"`
}

func (r requestVector) body(tb testing.TB) []byte {
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

func loadPEMKey(tb testing.TB, name string) (crypto.Signer, string, string) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, name))
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

// fixedNonces is a nonce source yielding the bytes of the given hex nonces.
func fixedNonces(tb testing.TB, nonces ...string) io.Reader {
	tb.Helper()
	var b []byte
	for _, n := range nonces {
		raw, err := hex.DecodeString(n)
		if err != nil || len(raw) != 16 {
			tb.Fatalf("nonce %q is not 32 hex digits", n)
		}
		b = append(b, raw...)
	}
	return bytes.NewReader(b)
}

// buildVectors computes every expected value with the signing package, the
// server's own implementation.
func buildVectors(t *testing.T) []byte {
	merchantKey, merchantPEM, merchantPub := loadPEMKey(t, "merchant-test-key-rsa.key.pem")
	platformKey, platformPEM, platformPub := loadPEMKey(t, "platform-rsa.key.pem")
	v := vectorFile{
		Description: "Quill scheme A (WeChat Pay APIv3 style) signing vectors: requests signed with the merchant key " +
			"(RSASSA-PKCS1-v1_5 SHA-256, deterministic) and responses signed with the platform key. " +
			"The merchant key is RFC 9421's test-key-rsa. Checked by quillclient (Go) and clients/js (node --test).",
		GeneratedBy: "go test ./quillclient -run TestGenerateVectors -update",
		Keys: map[string]vectorKey{
			"merchant": {ID: "test-key-rsa", PrivateKeyPEM: merchantPEM, PublicKeyPEM: merchantPub},
			"platform": {ID: "PLATFORM-TEST-1", PrivateKeyPEM: platformPEM, PublicKeyPEM: platformPub},
		},
	}
	reqs := []requestVector{
		{Name: "POST payment (the docs/PROTOCOL.md worked example)", Method: "POST", Target: "/v1/payments",
			Timestamp: "1700000000", Nonce: "593BEC0C930BF1AFEB40B4A08C8FB242",
			Body: `{"order_id":"ORD000000000001","amount":"12.34","currency":"CNY"}`},
		{Name: "GET without body: the body line is empty", Method: "GET", Target: "/v1/payments/ORD000000000001",
			Timestamp: "1700000001", Nonce: "0123456789ABCDEF0123456789ABCDEF"},
		{Name: "GET with a query string, signed as sent", Method: "GET", Target: "/v1/payments/ORD000000000001?mchid=1900000001&x=a%20b&y=%E4%B8%AD&z=",
			Timestamp: "1700000002", Nonce: "FEDCBA9876543210FEDCBA9876543210"},
		{Name: "POST with UTF-8 text: the bytes are signed, not characters", Method: "POST", Target: "/v1/payments",
			Timestamp: "1700000003", Nonce: "00000000000000000000000000000001",
			Body: `{"order_id":"ORD000000000002","amount":"0.01","currency":"CNY","payer_token":"eyJhbGciOiJFZERTQSJ9.e30.sig","description":"咖啡 ☕ café"}`},
		{Name: "POST with spaces, CRLF and a trailing newline: never re-serialize", Method: "POST", Target: "/v1/deposits",
			Timestamp: "1700000004", Nonce: "ABCDEFABCDEFABCDEFABCDEFABCDEFAB",
			Body: "{ \"order_id\" : \"ORD000000000003\",\r\n  \"user_id\":\"42\", \"amount\":\"100.00\", \"currency\":\"CNY\" }\n"},
		{Name: "POST with bytes that are not UTF-8", Method: "POST", Target: "/v1/payments",
			Timestamp: "1700000005", Nonce: "11111111111111111111111111111111",
			BodyBase64: base64.StdEncoding.EncodeToString([]byte("{\"x\":\"\xff\xfe\x00\"}"))},
	}
	for i := range reqs {
		r := &reqs[i]
		r.Key, r.Merchant, r.KeyID = "merchant", "1900000001", "test-key-rsa"
		body := r.body(t)
		sts := signing.StringToSign(r.Method, r.Target, r.Timestamp, r.Nonce, body)
		if r.BodyBase64 != "" {
			r.StringToSignBase64 = base64.StdEncoding.EncodeToString(sts)
		} else {
			r.StringToSign = string(sts)
		}
		ts := mustUnix(t, r.Timestamp)
		auth, err := signing.SignRequest(merchantKey, r.Merchant, r.KeyID, r.Method, r.Target, body, ts, r.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := signing.ParseAuthorization(auth)
		if err != nil {
			t.Fatal(err)
		}
		r.Authorization, r.Signature = auth, cred.Signature
	}
	v.Requests = reqs

	sign := func(name, ts, nonce, body string, status int) responseVector {
		s := &signing.ResponseSigner{Keys: staticPlatform{"PLATFORM-TEST-1", platformKey},
			Now: func() time.Time { return mustUnix(t, ts) }, Rand: fixedNonces(t, nonce)}
		sig, err := s.Sign(context.Background(), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return responseVector{Name: name, Key: "platform", Serial: sig.Serial, Timestamp: sig.Timestamp, Nonce: sig.Nonce,
			Body: body, Signature: sig.Signature, Valid: true, StatusCode: status}
	}
	pay := sign("payment response", "1700000000", "8AB2CB9C4E2A2C2D2A8BDC7F6A2D1F30",
		`{"id":"pay_17","kind":"payment","order_id":"ORD000000000001","merchant_id":"1900000001","status":"succeeded","amount":"12.34","fee":"0.07","currency":"CNY"}`, 200)
	empty := sign("empty body: the body line is empty", "1700000001", "5F0E1D2C3B4A59687766554433221100", "", 200)
	problem := sign("error response (every response is signed)", "1700000002", "C0FFEEC0FFEEC0FFEEC0FFEEC0FFEE00",
		`{"type":"about:blank","title":"Unauthorized","status":401,"code":"signature_invalid","hint":"timestamp looks like milliseconds"}`, 401)
	utf8 := sign("UTF-8 body", "1700000003", "0F0E0D0C0B0A09080706050403020100", `{"description":"咖啡 ☕ café"}`, 200)
	tampered := pay
	tampered.Name, tampered.Valid, tampered.Note = "body altered after signing", false, "payment response with amount 12.34 changed to 12.35"
	tampered.Body = strings.Replace(pay.Body, "12.34", "12.35", 1)
	restamped := pay
	restamped.Name, restamped.Valid, restamped.Note = "timestamp altered after signing", false, "payment response with the timestamp moved by one second"
	restamped.Timestamp = "1700000001"
	merchantSigned := pay
	merchantSigned.Name, merchantSigned.Key, merchantSigned.Valid = "signed by the merchant key, not the platform key", "merchant", false
	merchantSigned.Note = "the signature is correct for the merchant key, which must not verify responses"
	ms, err := (&signing.ResponseSigner{Keys: staticPlatform{"PLATFORM-TEST-1", merchantKey},
		Now: func() time.Time { return mustUnix(t, pay.Timestamp) }, Rand: fixedNonces(t, pay.Nonce)}).Sign(context.Background(), []byte(pay.Body))
	if err != nil {
		t.Fatal(err)
	}
	merchantSigned.Signature = ms.Signature
	v.Responses = []responseVector{pay, empty, problem, utf8, tampered, restamped, merchantSigned}
	for i := range v.Responses {
		r := &v.Responses[i]
		r.Message = r.Timestamp + "\n" + r.Nonce + "\n" + r.Body + "\n"
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

type staticPlatform struct {
	serial string
	key    crypto.Signer
}

func (s staticPlatform) SigningKey(context.Context) (string, crypto.Signer, error) {
	return s.serial, s.key, nil
}

func mustUnix(tb testing.TB, ts string) time.Time {
	tb.Helper()
	var sec int64
	for _, c := range ts {
		sec = sec*10 + int64(c-'0')
	}
	return time.Unix(sec, 0)
}

// TestGenerateVectors recomputes the vectors with the signing package and
// fails if the committed file differs (-update rewrites it).
func TestGenerateVectors(t *testing.T) {
	got := buildVectors(t)
	path := filepath.Join(vectorDir, "scheme-a.json")
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

func readVectors(t *testing.T) vectorFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, "scheme-a.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Requests) < 5 || len(v.Responses) < 5 {
		t.Fatalf("only %d request and %d response vectors", len(v.Requests), len(v.Responses))
	}
	return v
}

func vectorSigner(t *testing.T, k vectorKey) crypto.Signer {
	t.Helper()
	s, err := keys.ParsePrivateKeyPEM([]byte(k.PrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func vectorPublic(t *testing.T, k vectorKey) crypto.PublicKey {
	t.Helper()
	p, err := keys.ParsePublicKeyPEM([]byte(k.PublicKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// vectorBase answers every request with one response vector and records the
// request as it reached the wire side of the client.
type vectorBase struct {
	res  responseVector
	auth string
	body []byte
}

func (b *vectorBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.auth = req.Header.Get("Authorization")
	b.body = nil
	if req.Body != nil {
		b.body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	h := http.Header{}
	h.Set("Wechatpay-Timestamp", b.res.Timestamp)
	h.Set("Wechatpay-Nonce", b.res.Nonce)
	h.Set("Wechatpay-Serial", b.res.Serial)
	h.Set("Wechatpay-Signature", b.res.Signature)
	return &http.Response{StatusCode: b.res.StatusCode, Header: h, Body: io.NopCloser(strings.NewReader(b.res.Body)), Request: req}, nil
}

// TestVectorsClient sends each request vector through the Transport with the
// vector's clock and nonce: the Authorization header on the wire must be the
// vector's, and each response vector must be accepted or refused as it says.
func TestVectorsClient(t *testing.T) {
	v := readVectors(t)
	plat := v.Keys["platform"]
	pinned := quillclient.WithPinnedKeys(quillclient.PlatformKey{ID: plat.ID, Public: vectorPublic(t, plat)})
	for _, r := range v.Requests {
		t.Run("request/"+r.Name, func(t *testing.T) {
			want := []byte(r.StringToSign)
			if r.StringToSignBase64 != "" {
				want, _ = base64.StdEncoding.DecodeString(r.StringToSignBase64)
			}
			if got := signing.StringToSign(r.Method, r.Target, r.Timestamp, r.Nonce, r.body(t)); len(want) == 0 || !bytes.Equal(got, want) {
				t.Fatalf("string to sign %q, vector %q", got, want)
			}
			base := &vectorBase{res: v.Responses[0]}
			tr, err := quillclient.NewTransport(
				quillclient.WithBase(base), pinned,
				quillclient.WithMerchant(r.Merchant), quillclient.WithKeyID(r.KeyID),
				quillclient.WithPrivateKey(vectorSigner(t, v.Keys[r.Key])),
				quillclient.WithClock(func() time.Time { return mustUnix(t, r.Timestamp) }),
				quillclient.WithNonceSource(fixedNonces(t, r.Nonce)),
			)
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequest(r.Method, "https://quill.test"+r.Target, bodyOf(r.body(t)))
			if err != nil {
				t.Fatal(err)
			}
			res, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if base.auth != r.Authorization {
				t.Fatalf("Authorization\n got %s\nwant %s", base.auth, r.Authorization)
			}
			if !bytes.Equal(base.body, r.body(t)) {
				t.Fatalf("body on the wire %q", base.body)
			}
		})
	}
	for _, rv := range v.Responses {
		t.Run("response/"+rv.Name, func(t *testing.T) {
			if rv.Message != rv.Timestamp+"\n"+rv.Nonce+"\n"+rv.Body+"\n" {
				t.Fatalf("message %q", rv.Message)
			}
			// signing's own verifier agrees with the vector...
			err := signing.VerifyResponse(vectorPublic(t, plat), signing.ResponseSignature{
				Timestamp: rv.Timestamp, Nonce: rv.Nonce, Serial: rv.Serial, Signature: rv.Signature}, []byte(rv.Body))
			if (err == nil) != rv.Valid {
				t.Fatalf("signing.VerifyResponse: %v, vector valid=%v", err, rv.Valid)
			}
			// ...and so does the transport.
			tr, err := quillclient.NewTransport(quillclient.WithBase(&vectorBase{res: rv}), pinned,
				quillclient.WithMerchant("1900000001"), quillclient.WithKeyID("test-key-rsa"),
				quillclient.WithPrivateKey(vectorSigner(t, v.Keys["merchant"])),
				quillclient.WithClock(func() time.Time { return mustUnix(t, rv.Timestamp) }))
			if err != nil {
				t.Fatal(err)
			}
			res, body, err := send(&http.Client{Transport: tr}, "GET", "https://quill.test/v1/payments/ORD1", nil)
			if rv.Valid {
				if err != nil || string(body) != rv.Body || res.StatusCode != rv.StatusCode {
					t.Fatalf("valid response refused or altered: %v %q", err, body)
				}
				return
			}
			if !errors.Is(err, quillclient.ErrUnverified) || !errors.Is(err, signing.ErrBadSignature) {
				t.Fatalf("invalid response: %v, want ErrUnverified", err)
			}
		})
	}
}
