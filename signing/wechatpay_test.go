package signing_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/signing"
)

const testSig = "R0VOVUlORS1CVVQtTk9ULUEtUkVBTC1TSUdOQVRVUkU+/w=="

func TestParseAuthorizationAccepts(t *testing.T) {
	want := signing.Credentials{Merchant: "1900000001", Nonce: "593BEC0C930BF1AFEB40B4A08C8FB242",
		Timestamp: "1700000000", Serial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", Signature: testSig}
	fields := map[string]string{
		"mchid":     `mchid="1900000001"`,
		"nonce_str": `nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242"`,
		"timestamp": `timestamp="1700000000"`,
		"serial_no": `serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1"`,
		"signature": `signature="` + testSig + `"`,
	}
	names := []string{"mchid", "nonce_str", "timestamp", "serial_no", "signature"}
	join := func(order []string, sep string) string {
		parts := make([]string, len(order))
		for i, n := range order {
			parts[i] = fields[n]
		}
		return "WECHATPAY2-SHA256-RSA2048 " + strings.Join(parts, sep)
	}
	tests := map[string]string{
		"brief order":                 join(names, ","),
		"go sdk order":                join([]string{"mchid", "nonce_str", "signature", "timestamp", "serial_no"}, ","),
		"space after comma":           join(names, ", "),
		"spaces around comma":         join(names, "  ,  "),
		"tab after comma":             join(names, ",\t"),
		"several spaces after scheme": strings.Replace(join(names, ","), " ", "   ", 1),
		"lower-case scheme":           strings.Replace(join(names, ","), signing.SchemeWeChatPay, strings.ToLower(signing.SchemeWeChatPay), 1),
		"header method output":        want.Header(),
	}
	// Every one of the 120 field orders.
	var permute func(prefix, rest []string)
	permute = func(prefix, rest []string) {
		if len(rest) == 0 {
			tests["order "+strings.Join(prefix, ",")] = join(prefix, ",")
			return
		}
		for i := range rest {
			r := append(append([]string{}, rest[:i]...), rest[i+1:]...)
			permute(append(append([]string{}, prefix...), rest[i]), r)
		}
	}
	permute(nil, names)
	if len(tests) != 8+120 {
		t.Fatalf("built %d cases", len(tests))
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := signing.ParseAuthorization(h)
			if err != nil {
				t.Fatalf("ParseAuthorization(%q): %v", h, err)
			}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseAuthorizationRejects(t *testing.T) {
	const ok = `mchid="1900000001",nonce_str="N1",timestamp="1700000000",serial_no="S1",signature="` + testSig + `"`
	h := func(params string) string { return "WECHATPAY2-SHA256-RSA2048 " + params }
	tests := []struct {
		name, header, want string
	}{
		{"empty", "", "scheme must be"},
		{"no scheme", ok, "scheme must be"},
		{"wrong scheme", "WECHATPAY2-SHA256-RSA4096 " + ok, "scheme must be"},
		{"bearer", "Bearer abc", "scheme must be"},
		{"scheme only", "WECHATPAY2-SHA256-RSA2048", "scheme must be"},
		{"scheme and space", "WECHATPAY2-SHA256-RSA2048 ", "expected name="},
		{"tab after scheme", "WECHATPAY2-SHA256-RSA2048\t" + ok, "scheme must be"},
		{"missing mchid", h(`nonce_str="N1",timestamp="1700000000",serial_no="S1",signature="x"`), "missing mchid"},
		{"missing signature", h(`mchid="1",nonce_str="N1",timestamp="1700000000",serial_no="S1"`), "missing signature"},
		{"missing two", h(`mchid="1",nonce_str="N1",timestamp="1700000000"`), "missing signature, serial_no"},
		{"duplicate mchid", h(`mchid="1",` + ok), "duplicate field mchid"},
		{"duplicate nonce", h(ok + `,nonce_str="N2"`), "duplicate field nonce_str"},
		{"unknown field", h(ok + `,foo="bar"`), `unknown field "foo"`},
		{"upper-case field", h(strings.Replace(ok, "mchid", "MCHID", 1)), `unknown field "MCHID"`},
		{"space before equals", h(strings.Replace(ok, `mchid=`, `mchid =`, 1)), "malformed field name"},
		{"unquoted", h(strings.Replace(ok, `mchid="1900000001"`, `mchid=1900000001`, 1)), "mchid value must be double-quoted"},
		{"single quoted", h(strings.Replace(ok, `serial_no="S1"`, `serial_no='S1'`, 1)), "serial_no value must be double-quoted"},
		{"no closing quote", h(`mchid="1900000001`), "mchid value has no closing quote"},
		{"value at end", h(ok + `,`), "trailing comma"},
		{"empty mchid", h(strings.Replace(ok, `mchid="1900000001"`, `mchid=""`, 1)), "mchid is empty"},
		{"empty nonce", h(strings.Replace(ok, `nonce_str="N1"`, `nonce_str=""`, 1)), "nonce_str is empty"},
		{"empty signature", h(strings.Replace(ok, testSig, "", 1)), "signature is empty"},
		{"embedded quote", h(strings.Replace(ok, `nonce_str="N1"`, `nonce_str="N"1"`, 1)), "after nonce_str value"},
		{"missing comma", h(strings.Replace(ok, `",nonce_str`, `" nonce_str`, 1)), "after mchid value"},
		{"semicolon", h(strings.Replace(ok, `",nonce_str`, `";nonce_str`, 1)), "after mchid value"},
		{"double comma", h(strings.Replace(ok, `",nonce_str`, `",,nonce_str`, 1)), "malformed field name"},
		{"control char", h(strings.Replace(ok, `nonce_str="N1"`, "nonce_str=\"N\x001\"", 1)), "nonce_str contains a control character"},
		{"newline", h(strings.Replace(ok, `nonce_str="N1"`, "nonce_str=\"N\n1\"", 1)), "nonce_str contains a control character"},
		{"DEL", h(strings.Replace(ok, `serial_no="S1"`, "serial_no=\"S\x7f\"", 1)), "serial_no contains a control character"},
		{"space in value", h(strings.Replace(ok, `nonce_str="N1"`, `nonce_str="N 1"`, 1)), "nonce_str contains a space"},
		{"non-ASCII", h(strings.Replace(ok, `nonce_str="N1"`, `nonce_str="Né"`, 1)), "nonce_str contains a non-ASCII byte"},
		{"backslash escape", h(strings.Replace(ok, `nonce_str="N1"`, `nonce_str="N\"1"`, 1)), "nonce_str contains a backslash"},
		{"nonce too long", h(strings.Replace(ok, `nonce_str="N1"`, `nonce_str="`+strings.Repeat("a", 65)+`"`, 1)), "nonce_str is longer than 64"},
		{"mchid bad char", h(strings.Replace(ok, `mchid="1900000001"`, `mchid="19}:x"`, 1)), "mchid may contain only"},
		{"mchid with a dot", h(strings.Replace(ok, `mchid="1900000001"`, `mchid="19.01"`, 1)), "mchid may contain only"},
		{"mchid too long", h(strings.Replace(ok, `mchid="1900000001"`, `mchid="`+strings.Repeat("1", 33)+`"`, 1)), "mchid is longer than 32"},
		{"timestamp float", h(strings.Replace(ok, `"1700000000"`, `"1700000000.5"`, 1)), "timestamp must be decimal"},
		{"timestamp negative", h(strings.Replace(ok, `"1700000000"`, `"-1700000000"`, 1)), "timestamp must be decimal"},
		{"timestamp plus", h(strings.Replace(ok, `"1700000000"`, `"+1700000000"`, 1)), "timestamp must be decimal"},
		{"timestamp too long", h(strings.Replace(ok, `"1700000000"`, `"`+strings.Repeat("9", 19)+`"`, 1)), "timestamp is longer than 18"},
		{"serial too long", h(strings.Replace(ok, `serial_no="S1"`, `serial_no="`+strings.Repeat("A", 129)+`"`, 1)), "serial_no is longer than 128"},
		{"signature too long", h(strings.Replace(ok, testSig, strings.Repeat("A", 1025), 1)), "signature is longer than 1024"},
		{"over-long header", h(ok + strings.Repeat(" ", signing.MaxAuthorizationLen)), "longer than 4096 bytes"},
		{"trailing garbage", h(ok + ` x`), "after signature value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := signing.ParseAuthorization(tt.header)
			if err == nil {
				t.Fatalf("ParseAuthorization(%q) = %+v, want error", tt.header, c)
			}
			if !errors.Is(err, signing.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testSig[:12]) {
				t.Errorf("error %q echoes the signature", err)
			}
			if c != (signing.Credentials{}) {
				t.Errorf("credentials %+v returned with an error", c)
			}
		})
	}
}

func TestParseAuthorizationNeverEchoesSignature(t *testing.T) {
	// A missing '=' would otherwise make the signature part of a "field name".
	h := `WECHATPAY2-SHA256-RSA2048 mchid="1",signature` + testSig
	_, err := signing.ParseAuthorization(h)
	if err == nil || strings.Contains(err.Error(), testSig[:8]) {
		t.Fatalf("error %v: want a parse error that does not echo the signature", err)
	}
}

func TestCredentialsStringRedactsSignature(t *testing.T) {
	c := signing.Credentials{Merchant: "1", Nonce: "N", Timestamp: "1", Serial: "S", Signature: testSig}
	if s := c.String(); strings.Contains(s, testSig[:8]) || !strings.Contains(s, "[redacted]") {
		t.Errorf("String() = %q", s)
	}
}

func TestStringToSign(t *testing.T) {
	tests := []struct {
		name                            string
		method, target, ts, nonce, body string
		want                            string
	}{
		{"post", "POST", "/v3/pay/transactions/jsapi", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", `{"a":1}`,
			"POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"a\":1}\n"},
		{"get with query, no body", "GET", "/v3/certificates?x=1&y=%20", "1554208460", "N", "",
			"GET\n/v3/certificates?x=1&y=%20\n1554208460\nN\n\n"},
		{"body with newlines kept raw", "POST", "/p", "1", "N", "{\n}\n", "POST\n/p\n1\nN\n{\n}\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			got := signing.StringToSign(tt.method, tt.target, tt.ts, tt.nonce, body)
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSignRequestKnownAnswer pins scheme A to signatures computed independently
// with openssl (docs/PROTOCOL.md shows the same example):
//
//	printf '<string to sign>' | openssl dgst -sha256 -sign testdata/test-key-rsa.key.pem | base64 -w0
func TestSignRequestKnownAnswer(t *testing.T) {
	key := loadKey(t, "test-key-rsa.key.pem")
	tests := []struct {
		name, method, target, nonce, body string
		wantToSign, wantSig               string
	}{
		{
			name: "post with body", method: "POST", target: "/v1/payments",
			nonce: "593BEC0C930BF1AFEB40B4A08C8FB242",
			body:  `{"order_id":"ORD000000000001","amount":"12.34","currency":"CNY"}`,
			wantToSign: "POST\n/v1/payments\n1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n" +
				`{"order_id":"ORD000000000001","amount":"12.34","currency":"CNY"}` + "\n",
			wantSig: "GGWQoBD6ucu0ut/94kTWd3nuZfRrMMI1ciSWVmzSpkYuah6PfSy+r2vM4iOzuDK56CVdfgFVAnoJrvlqZzvwDGGdNTdmh4BGkyJHAwXJFX922ovUn7MTm5VQtJkkn7Xd9O+UQiSIP+bSpyZNhSKSjVmaG3oPeVGVy0PuyeS6Ly6LeUL13K9guOe1YVteJ1C5OCesFJLHQVhs99eqj0t3Jjy769FjW5u6DuxHSXP5NTW/2gCdIxyDAxuQGtILeE9ROPtUdXxwZdjuyhF+8OEL2DeQ0yV3KYdb7Gu+xHqj5LRYuSDdxGcO+EyO9i63GuHEczfcNjvtqYPpfZ1tBKfKiQ==",
		},
		{
			name: "get without body", method: "GET", target: "/v1/payments/ORD000000000001?mchid=1900000001",
			nonce:      "C0FFEE00C0FFEE00C0FFEE00C0FFEE00",
			wantToSign: "GET\n/v1/payments/ORD000000000001?mchid=1900000001\n1700000000\nC0FFEE00C0FFEE00C0FFEE00C0FFEE00\n\n",
			wantSig:    "Cykugpv/Npy4QWE6pTMOHesK+adduMMTgUGzw5uvXHHfRCqCf4whfgEju30dMDQFK+sXwD8tT/8gz6h1/mtGijkjnUaE8tTEXvbtzbF7h9uPFsltniL6ZxC2P1fD6tz+4aBn4jtAm9/FFz2VjAlszBbWl09QzigZgq4u0ouwp0uuV03/xIS13C6mz8/jcM0VYfSE6KALffyIGHwBtU1mPjACxT3q81uvi8vYYSWER7hPIJYCBT1g2XJtM6A+OIIiyJ4dvz17uur/Y8i1rmNFekApzCsCEHcx0mHkmpqos7zEiFHHoBBfFEpAeDtpBbT1rPN0IIAaV6J7GBmMph/uyA==",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body []byte
			if tt.body != "" {
				body = []byte(tt.body)
			}
			if got := signing.StringToSign(tt.method, tt.target, "1700000000", tt.nonce, body); string(got) != tt.wantToSign {
				t.Fatalf("string to sign %q, want %q", got, tt.wantToSign)
			}
			h, err := signing.SignRequest(key, merchant, serial, tt.method, tt.target, body, now, tt.nonce)
			if err != nil {
				t.Fatal(err)
			}
			want := `WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="` + tt.nonce +
				`",signature="` + tt.wantSig + `",timestamp="1700000000",serial_no="test-key-rsa"`
			if h != want {
				t.Errorf("header\n got %s\nwant %s", h, want)
			}
		})
	}
}

func TestSignRequestRejects(t *testing.T) {
	tests := []struct {
		name, keyFile           string
		merchant, serial, nonce string
		ts                      time.Time
	}{
		{name: "ed25519 key", keyFile: "test-key-ed25519.key.pem", merchant: merchant, serial: serial, nonce: "N", ts: now},
		{name: "empty nonce", merchant: merchant, serial: serial, nonce: "", ts: now},
		{name: "quote in serial", merchant: merchant, serial: `a"b`, nonce: "N", ts: now},
		{name: "merchant with brace", merchant: "{m}", serial: serial, nonce: "N", ts: now},
		{name: "nonce too long", merchant: merchant, serial: serial, nonce: strings.Repeat("n", 65), ts: now},
		{name: "before 1970", merchant: merchant, serial: serial, nonce: "N", ts: time.Unix(-5, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.keyFile == "" {
				tt.keyFile = "test-key-rsa.key.pem"
			}
			key := loadKey(t, tt.keyFile)
			h, err := signing.SignRequest(key, tt.merchant, tt.serial, "GET", "/", nil, tt.ts, tt.nonce)
			if err == nil {
				t.Fatalf("SignRequest = %q, want error", h)
			}
		})
	}
}

func TestNewNonce(t *testing.T) {
	n1, err := signing.NewNonce(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n2, _ := signing.NewNonce(rand.Reader)
	if len(n1) != 32 || n1 == n2 || strings.Trim(n1, "0123456789ABCDEF") != "" {
		t.Errorf("nonces %q %q: want 32 distinct upper-case hex characters", n1, n2)
	}
	fixed, _ := signing.NewNonce(bytes.NewReader(bytes.Repeat([]byte{0xab}, 16)))
	if fixed != strings.Repeat("AB", 16) {
		t.Errorf("NewNonce(0xab...) = %q", fixed)
	}
	if _, err := signing.NewNonce(bytes.NewReader(nil)); err == nil {
		t.Error("NewNonce from an empty reader: want error")
	}
}
