package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/quillpay/quill/quillclient"
	"github.com/quillpay/quill/signing"
)

// responseVerifierA checks a scheme A response as quillclient.SchemeA does —
// complete Wechatpay-* headers, a timestamp within the response window, the
// platform key named by Wechatpay-Serial — but does the signature arithmetic
// with the generator's --crypto backend: an RSA-2048 verification per
// response is most of the generator's own work in a scheme A run, and
// OpenSSL's is faster than Go's (docs/BENCHMARKS.md has the figures).
type responseVerifierA struct {
	crypto signing.Crypto
	now    func() time.Time // default time.Now
	window time.Duration    // default quillclient.DefaultResponseWindow
}

// VerifyResponse implements quillclient.ResponseVerifier; req may be nil.
func (v *responseVerifierA) VerifyResponse(ctx context.Context, _ *http.Request, res *http.Response, body []byte, ks quillclient.KeySource) error {
	sig := signing.ResponseSignature{
		Timestamp: res.Header.Get("Wechatpay-Timestamp"),
		Nonce:     res.Header.Get("Wechatpay-Nonce"),
		Serial:    res.Header.Get("Wechatpay-Serial"),
		Signature: res.Header.Get("Wechatpay-Signature"),
	}
	if sig.Signature == "" || sig.Serial == "" || sig.Timestamp == "" || sig.Nonce == "" {
		return errors.New("response has no complete Wechatpay-* signature headers")
	}
	ts, err := strconv.ParseInt(sig.Timestamp, 10, 64)
	if err != nil {
		return errors.New("Wechatpay-Timestamp is not decimal Unix seconds")
	}
	now, window := time.Now, quillclient.DefaultResponseWindow
	if v.now != nil {
		now = v.now
	}
	if v.window > 0 {
		window = v.window
	}
	if skew := now().Unix() - ts; skew > int64(window/time.Second) || -skew > int64(window/time.Second) {
		return fmt.Errorf("%w: %d s from the client clock", quillclient.ErrStaleResponse, skew)
	}
	k, err := ks.PlatformKey(ctx, sig.Serial)
	if err != nil {
		return err
	}
	return signing.VerifyResponseWith(v.crypto, k.Public, sig, body)
}
