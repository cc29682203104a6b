package signing_test

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/quillpay/quill/signing"
)

// A merchant backend signs a request; the header goes in Authorization.
func ExampleSignRequest() {
	data, _ := os.ReadFile("testdata/test-key-rsa.key.pem")
	block, _ := pem.Decode(data)
	key, _ := x509.ParsePKCS1PrivateKey(block.Bytes)

	h, err := signing.SignRequest(key, "1900000001", "test-key-rsa",
		"GET", "/v1/payments/ORD000000000001?mchid=1900000001", nil,
		time.Unix(1700000000, 0), "C0FFEE00C0FFEE00C0FFEE00C0FFEE00")
	if err != nil {
		panic(err)
	}
	fmt.Println(h)
	// Output:
	// WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="C0FFEE00C0FFEE00C0FFEE00C0FFEE00",signature="Cykugpv/Npy4QWE6pTMOHesK+adduMMTgUGzw5uvXHHfRCqCf4whfgEju30dMDQFK+sXwD8tT/8gz6h1/mtGijkjnUaE8tTEXvbtzbF7h9uPFsltniL6ZxC2P1fD6tz+4aBn4jtAm9/FFz2VjAlszBbWl09QzigZgq4u0ouwp0uuV03/xIS13C6mz8/jcM0VYfSE6KALffyIGHwBtU1mPjACxT3q81uvi8vYYSWER7hPIJYCBT1g2XJtM6A+OIIiyJ4dvz17uur/Y8i1rmNFekApzCsCEHcx0mHkmpqos7zEiFHHoBBfFEpAeDtpBbT1rPN0IIAaV6J7GBmMph/uyA==",timestamp="1700000000",serial_no="test-key-rsa"
}

// A merchant backend signs a scheme B (RFC 9421) request with its Ed25519 key;
// the three values go in Signature-Input, Signature and Content-Digest. (The
// signature and digest below were reproduced with `openssl pkeyutl -sign
// -rawin` over the signature base and `openssl dgst -sha256` over the body.)
func ExampleRequestSigner() {
	data, _ := os.ReadFile("testdata/test-key-ed25519.key.pem")
	block, _ := pem.Decode(data)
	key, _ := x509.ParsePKCS8PrivateKey(block.Bytes)

	s := &signing.RequestSigner{Key: key.(crypto.Signer), KeyID: "K-ed25519", Algorithm: signing.Ed25519,
		Now:  func() time.Time { return time.Unix(1700000000, 0) },
		Rand: strings.NewReader("0123456789abcdef")} // use crypto/rand (the default) in real code
	h, err := s.Sign(signing.MessageRequest{
		Method: "POST", Scheme: "https", Authority: "api.quill.example", Target: "/v1/payments",
		Header: map[string][]string{"Content-Type": {"application/json"}},
		Body:   []byte(`{"order_id":"ORD000000000001","amount":"12.34","currency":"CNY"}`),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("Signature-Input:", h.SignatureInput)
	fmt.Println("Signature:", h.Signature)
	fmt.Println("Content-Digest:", h.ContentDigest)
	// Output:
	// Signature-Input: sig1=("@method" "@target-uri" "content-type" "content-digest");created=1700000000;keyid="K-ed25519";nonce="30313233343536373839616263646566";alg="ed25519"
	// Signature: sig1=:0aAsokbpz3pegpCsnMlrI0O836xr6y2CWE2wbxxzLV8+tZgPbfKbdk6S+xaHhz+3n0JTemXK/Ehm5xx7rYkVDQ==:
	// Content-Digest: sha-256=:XBCffDBqyRoiGOzi8Pt+qxaTtdm6/d7mSpRThzmpWnI=:
}
