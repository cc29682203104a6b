package signing

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RFC 9421 Appendix B.2: the test request and response (§B.2), exactly as
// printed. The response's Content-Digest is the RFC's own and is not the
// SHA-512 of its body; the vectors sign the header as printed.
func rfcRequest() MessageRequest {
	return MessageRequest{
		Method: "POST", Scheme: "https", Authority: "example.com", Target: "/foo?param=Value&Pet=dog",
		Header: map[string][]string{
			"Host":           {"example.com"},
			"Date":           {"Tue, 20 Apr 2021 02:07:55 GMT"},
			"Content-Type":   {"application/json"},
			"Content-Digest": {"sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"},
			"Content-Length": {"18"},
		},
		Body: []byte(`{"hello": "world"}`),
	}
}

func rfcResponse() MessageResponse {
	return MessageResponse{
		Status: 200,
		Header: map[string][]string{
			"Date":           {"Tue, 20 Apr 2021 02:07:56 GMT"},
			"Content-Type":   {"application/json"},
			"Content-Digest": {"sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:"},
			"Content-Length": {"23"},
		},
		Body: []byte(`{"message": "good dog"}`),
	}
}

type rfcVector struct {
	ID, Key, Alg, Base, Sig string
}

func loadVectors(tb testing.TB) []rfcVector {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "rfc9421", "vectors.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var v struct{ Vectors []rfcVector }
	if err := json.Unmarshal(data, &v); err != nil {
		tb.Fatal(err)
	}
	if len(v.Vectors) != 6 {
		tb.Fatalf("%d vectors, want the 6 of B.2", len(v.Vectors))
	}
	return v.Vectors
}

func pemBlock(tb testing.TB, name string) *pem.Block {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "rfc9421", name))
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		tb.Fatalf("%s: no PEM", name)
	}
	return b
}

func rfcPublic(tb testing.TB, key string) crypto.PublicKey {
	tb.Helper()
	b := pemBlock(tb, key+".pub.pem")
	if b.Type == "RSA PUBLIC KEY" {
		pub, err := x509.ParsePKCS1PublicKey(b.Bytes)
		if err != nil {
			tb.Fatal(err)
		}
		return pub
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}

// rfcPrivate reads a B.1 private key; the RSA-PSS one is PKCS #8 with the
// id-RSASSA-PSS algorithm, which crypto/x509 does not read, so its inner
// PKCS #1 key is taken directly.
func rfcPrivate(tb testing.TB, key string) crypto.Signer {
	tb.Helper()
	b := pemBlock(tb, key+".key.pem")
	var k any
	var err error
	switch {
	case b.Type == "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case b.Type == "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case key == "test-key-rsa-pss":
		var p8 struct {
			Version int
			Algo    asn1.RawValue
			Key     []byte
		}
		if _, err = asn1.Unmarshal(b.Bytes, &p8); err == nil {
			k, err = x509.ParsePKCS1PrivateKey(p8.Key)
		}
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		tb.Fatalf("%s: %v", key, err)
	}
	return k.(crypto.Signer)
}

var vectorAlg = map[string]Algorithm{"pss": RSAPSSSHA512, "ecdsa": ECDSAP256SHA256, "ed25519": Ed25519}

// TestRFC9421Vectors rebuilds every Appendix B.2 signature base from the B.2
// messages and the Signature-Input its @signature-params line carries, and
// checks the RFC's signature over it: ed25519 is deterministic and must be
// reproduced byte for byte; RSA-PSS and ECDSA are randomized and must verify;
// HMAC (which Quill does not accept) is checked with crypto/hmac so its base
// is proven too.
func TestRFC9421Vectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.ID, func(t *testing.T) {
			lines := strings.Split(v.Base, "\n")
			params := strings.TrimPrefix(lines[len(lines)-1], `"@signature-params": `)
			input := "sig-b=" + params
			var base string
			var err error
			if strings.Contains(v.ID, "response") {
				base, err = ResponseSignatureBase(rfcResponse(), nil, input, "sig-b")
			} else {
				base, err = RequestSignatureBase(rfcRequest(), input, "sig-b")
			}
			if err != nil {
				t.Fatal(err)
			}
			if base != v.Base {
				t.Fatalf("signature base:\n%s\nwant:\n%s", base, v.Base)
			}
			sig, err := base64.StdEncoding.DecodeString(v.Sig)
			if err != nil {
				t.Fatal(err)
			}
			if v.Alg == "hmac" {
				secret, err := os.ReadFile(filepath.Join("testdata", "rfc9421", "test-shared-secret.b64"))
				if err != nil {
					t.Fatal(err)
				}
				k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(secret)))
				if err != nil {
					t.Fatal(err)
				}
				m := hmac.New(sha256.New, k)
				m.Write([]byte(base))
				if !hmac.Equal(m.Sum(nil), sig) {
					t.Fatal("HMAC over the base does not match the RFC's")
				}
				return
			}
			alg := vectorAlg[v.Alg]
			key := RegisteredKey{Public: rfcPublic(t, v.Key), Algorithm: alg}
			if !keyFits(key) {
				t.Fatalf("%s does not fit %s", v.Key, alg)
			}
			if !verifyWith(key, []byte(base), sig) {
				t.Fatal("RFC signature does not verify")
			}
			tampered := []byte(base)
			tampered[len(tampered)-2] ^= 1
			if verifyWith(key, tampered, sig) {
				t.Fatal("RFC signature verifies over a tampered base")
			}
			mine, err := signWith(rfcPrivate(t, v.Key), alg, []byte(base))
			if err != nil {
				t.Fatal(err)
			}
			if alg == Ed25519 && !bytes.Equal(mine, sig) {
				t.Fatalf("ed25519 signature %s, want the RFC's %s", base64.StdEncoding.EncodeToString(mine), v.Sig)
			}
			if !verifyWith(key, []byte(base), mine) {
				t.Fatal("own signature does not verify")
			}
		})
	}
}

// TestRSAPKCS1KnownAnswer: Appendix B has no rsa-v1_5-sha256 example, so the
// B.2.6 base with keyid test-key-rsa (the B.1.1 key) was signed with
//
//	openssl dgst -sha256 -sign testdata/rfc9421/test-key-rsa.key.pem | base64 -w0
//
// PKCS #1 v1.5 is deterministic: Quill must produce exactly that signature.
func TestRSAPKCS1KnownAnswer(t *testing.T) {
	const want = "bANtbOAY56F+5faE1ClnnMt0t10UdgYNoeaQp0ZJkhZuvEW5NQCNH/VluTLTMPSgge+Q0f7TcGfqkNJpFtnghtmkE8ckh/6JHdS4SULtz4Y9Tx63TijFgvbRV6EuLcA+mUq9BxmCeBwwbvfGQBFF7wXZGU3ao7I14eMRBkbm50hm6wXZxCq623Q7GNHdbxB9Izg+Nr9I9QRkeXq5PuR4HotWdlrswULy9nqVBd5H4qjT5pzRK51QTdZEBk6TvL4zcG6M7416Fr9Eh+EGDVXbuJQTawSAugppYy/pf8UMdRZBxVroID27VaJIt/3kLn9w4LBvRS1dsvebdDspmt0+Mg=="
	input := `sig1=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-rsa"`
	base, err := RequestSignatureBase(rfcRequest(), input, "sig1")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signWith(rfcPrivate(t, "test-key-rsa"), RSAPKCS1SHA256, []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.StdEncoding.EncodeToString(sig); got != want {
		t.Fatalf("signature %s\nwant %s", got, want)
	}
	if !verifyWith(RegisteredKey{Public: rfcPublic(t, "test-key-rsa"), Algorithm: RSAPKCS1SHA256}, []byte(base), sig) {
		t.Fatal("does not verify")
	}
}

// TestRFC9421Components checks component values against the examples of RFC
// 9421 §2.1 and §2.2.
func TestRFC9421Components(t *testing.T) {
	req := MessageRequest{
		Method: "POST", Scheme: "https", Authority: "www.example.com", Target: "/path?param=value&foo=bar&baz=bat%2Dman&qux=",
		Header: map[string][]string{
			"Host":              {"www.example.com"},
			"X-Ows-Header":      {"   Leading and trailing whitespace.   "},
			"Cache-Control":     {"max-age=60", "   must-revalidate"},
			"Example-Dict":      {" a=1,    b=2;x=1;y=2,   c=(a   b   c)"},
			"Example-Header":    {"value, with, lots", "of, commas"},
			"Example-Dict-Keys": {"a=(1 2), b=3, c=4;aa=bb, d=(5 6);valid"},
		},
	}
	tests := []struct {
		name  string
		req   MessageRequest
		ident string
		want  string // the base lines, without @signature-params
	}{
		{"method", req, `"@method"`, `"@method": POST`},
		{"target-uri", req, `"@target-uri"`, `"@target-uri": https://www.example.com/path?param=value&foo=bar&baz=bat%2Dman&qux=`},
		{"authority", req, `"@authority"`, `"@authority": www.example.com`},
		{"authority default port and case", MessageRequest{Scheme: "https", Authority: "WWW.Example.com:443"}, `"@authority"`, `"@authority": www.example.com`},
		{"authority other port", MessageRequest{Scheme: "https", Authority: "example.com:8443"}, `"@authority"`, `"@authority": example.com:8443`},
		{"scheme", req, `"@scheme"`, `"@scheme": https`},
		{"request-target", req, `"@request-target"`, `"@request-target": /path?param=value&foo=bar&baz=bat%2Dman&qux=`},
		{"path", req, `"@path"`, `"@path": /path`},
		{"query", req, `"@query"`, `"@query": ?param=value&foo=bar&baz=bat%2Dman&qux=`},
		{"query absent", MessageRequest{Target: "/path"}, `"@query"`, `"@query": ?`},
		{"query raw", MessageRequest{Target: "/path?queryString"}, `"@query"`, `"@query": ?queryString`},
		{"absolute-form", MessageRequest{Scheme: "https", Target: "https://example.com/a%20b?x=1"}, `"@path" "@query" "@target-uri"`,
			"\"@path\": /a%20b\n\"@query\": ?x=1\n\"@target-uri\": https://example.com/a%20b?x=1"},
		{"query-param", req, `"@query-param";name="baz" "@query-param";name="param" "@query-param";name="qux"`,
			"\"@query-param\";name=\"baz\": bat-man\n\"@query-param\";name=\"param\": value\n\"@query-param\";name=\"qux\": "},
		{"query-param encoding", MessageRequest{Target: "/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something"},
			`"@query-param";name="var" "@query-param";name="bar" "@query-param";name="fa%C3%A7ade%22%3A%20"`,
			"\"@query-param\";name=\"var\": this%20is%20a%20big%0Amultiline%20value\n\"@query-param\";name=\"bar\": with%20plus%20whitespace\n\"@query-param\";name=\"fa%C3%A7ade%22%3A%20\": something"},
		{"query-param repeated", MessageRequest{Target: "/p?a=1&b=2&a=3"}, `"@query-param";name="a"`,
			"\"@query-param\";name=\"a\": 1\n\"@query-param\";name=\"a\": 3"},
		{"field trimmed", req, `"x-ows-header"`, `"x-ows-header": Leading and trailing whitespace.`},
		{"field lines joined", req, `"cache-control"`, `"cache-control": max-age=60, must-revalidate`},
		{"field raw", req, `"example-dict"`, `"example-dict": a=1,    b=2;x=1;y=2,   c=(a   b   c)`},
		{"field sf", req, `"example-dict";sf`, `"example-dict";sf: a=1, b=2;x=1;y=2, c=(a b c)`},
		{"field bs", req, `"example-header";bs`, `"example-header";bs: :dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:`},
		{"field commas", req, `"example-header"`, `"example-header": value, with, lots, of, commas`},
		{"field key", req, `"example-dict-keys";key="a" "example-dict-keys";key="d" "example-dict-keys";key="b" "example-dict-keys";key="c"`,
			"\"example-dict-keys\";key=\"a\": (1 2)\n\"example-dict-keys\";key=\"d\": (5 6);valid\n\"example-dict-keys\";key=\"b\": 3\n\"example-dict-keys\";key=\"c\": 4;aa=bb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := "s=(" + tt.ident + ")"
			base, err := RequestSignatureBase(tt.req, input, "s")
			if err != nil {
				t.Fatal(err)
			}
			got, _, _ := strings.Cut(base, "\n\"@signature-params\": ")
			if got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
			if !strings.HasSuffix(base, "\"@signature-params\": ("+tt.ident+")") {
				t.Fatalf("last line of %q", base)
			}
		})
	}
}

// TestResponseBaseReq checks the req flag: a response's base takes the
// request's components from the request.
func TestResponseBaseReq(t *testing.T) {
	req := rfcRequest()
	req.Header["Signature"] = []string{"sig1=:AAEC:, proxy=:AwQ=:"}
	resp := rfcResponse()
	base, err := ResponseSignatureBase(resp, &req, `r=("@status" "@authority";req "@method";req "signature";key="sig1";req "content-type")`, "r")
	if err != nil {
		t.Fatal(err)
	}
	want := "\"@status\": 200\n\"@authority\";req: example.com\n\"@method\";req: POST\n\"signature\";key=\"sig1\";req: :AAEC:\n\"content-type\": application/json\n" +
		`"@signature-params": ("@status" "@authority";req "@method";req "signature";key="sig1";req "content-type")`
	if base != want {
		t.Fatalf("got\n%s\nwant\n%s", base, want)
	}
}
