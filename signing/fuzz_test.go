package signing_test

import (
	"strings"
	"testing"

	"github.com/quillpay/quill/signing"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, seed := range []string{
		`WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="` + testSig + `",timestamp="1554208460",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",timestamp="1",serial_no="s",signature="x"`,
		`wechatpay2-sha256-rsa2048   serial_no="s" , signature="x",	mchid="1",nonce_str="n",timestamp="1"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="2"`,
		`WECHATPAY2-SHA256-RSA2048 mchid=1`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1\"2"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",`,
		`WECHATPAY2-SHA256-RSA2048 mchid="",nonce_str="n",timestamp="1",serial_no="s",signature="x"`,
		`WECHATPAY2-SHA256-RSA2048 ="x"`,
		"WECHATPAY2-SHA256-RSA2048 mchid=\"1\x00\"",
		`WECHATPAY2-SHA256-RSA2048 signature=====`,
		`Bearer x`,
		``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := signing.ParseAuthorization(h)
		if err != nil {
			if c != (signing.Credentials{}) {
				t.Fatalf("credentials %+v returned with error %v", c, err)
			}
			return
		}
		for _, v := range []string{c.Merchant, c.Nonce, c.Timestamp, c.Serial, c.Signature} {
			if v == "" || strings.ContainsAny(v, "\" \\\x00\n") {
				t.Fatalf("accepted value %q", v)
			}
		}
		again, err := signing.ParseAuthorization(c.Header())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", c.Header(), err)
		}
		if again != c {
			t.Fatalf("re-parse: got %+v, want %+v", again, c)
		}
	})
}
