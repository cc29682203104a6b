package signing_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
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
