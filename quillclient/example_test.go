package quillclient_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/quillclient"
	"github.com/quillpay/quill/signing"
)

// Pay 12.34 CNY through Quill with a plain *http.Client. The signing key and
// key id are the merchant's (var/dev/merchants/M100/signing.key.pem and key_id
// in dev, loaded with keys.ParsePrivateKeyPEM); the base transport presents
// the merchant's mTLS client certificate and trusts Quill's CA.
func Example() {
	quill := startExampleQuill() // a stand-in for https://quill.example:8443
	defer quill.Close()

	tr, err := quillclient.NewTransport(
		quillclient.WithBase(quill.mTLS),
		quillclient.WithMerchant("M100"),
		quillclient.WithKeyID(quill.keyID),
		quillclient.WithPrivateKey(quill.signingKey),
	)
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	body := `{"order_id":"ORD000000000001","amount":"12.34","currency":"CNY","payer_token":"eyJ…"}`
	res, err := client.Post(quill.URL+"/v1/payments", "application/json", strings.NewReader(body))
	if errors.Is(err, quillclient.ErrUnverified) {
		// The request reached the server but the answer is not provably
		// Quill's: query the order (or retry it: order ids are idempotent).
		log.Fatal(err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(res.Body) // verified bytes
	fmt.Println(res.StatusCode, string(answer))
	// Output: 200 {"order_id":"ORD000000000001","status":"succeeded"}
}

type exampleQuill struct {
	*httptest.Server
	mTLS       http.RoundTripper
	keyID      string
	signingKey crypto.Signer
}

// startExampleQuill runs a server that checks scheme A signatures with the
// signing package and signs its answers the way Quill does.
func startExampleQuill() *exampleQuill {
	merchantKey, err1 := rsa.GenerateKey(rand.Reader, 2048)
	platformKey, err2 := rsa.GenerateKey(rand.Reader, 2048)
	if err := errors.Join(err1, err2); err != nil {
		log.Fatal(err)
	}
	verifier := &signing.Verifier{
		Keys:   keyMap{"M100/KEY1": merchantKey.Public()},
		Nonces: &memNonces{seen: map[string]bool{}},
	}
	signer := &signing.ResponseSigner{Keys: staticPlatform{"PLAT1", platformKey}}
	pubPEM, _ := keys.MarshalPublicKeyPEM(platformKey.Public())
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status, out := http.StatusOK, []byte(`{"order_id":"ORD000000000001","status":"succeeded"}`)
		if _, err := verifier.Verify(r.Context(), signing.Request{Method: r.Method, Target: r.RequestURI,
			Authorization: r.Header.Get("Authorization"), Body: body, Merchant: "M100"}); err != nil {
			status, out = http.StatusUnauthorized, []byte(`{"code":"signature_invalid"}`)
		} else if r.URL.Path == quillclient.CertificatesPath {
			out, _ = json.Marshal(map[string]any{"data": []map[string]string{{"serial_no": "PLAT1", "public_key": string(pubPEM)}}})
		}
		sig, err := signer.Sign(context.Background(), out)
		if err != nil {
			http.Error(w, "internal", 500)
			return
		}
		w.Header().Set("Wechatpay-Timestamp", sig.Timestamp)
		w.Header().Set("Wechatpay-Nonce", sig.Nonce)
		w.Header().Set("Wechatpay-Serial", sig.Serial)
		w.Header().Set("Wechatpay-Signature", sig.Signature)
		w.WriteHeader(status)
		w.Write(out)
	}))
	return &exampleQuill{Server: srv, mTLS: srv.Client().Transport, keyID: "KEY1", signingKey: merchantKey}
}

// Pay through Quill with RFC 9421 signatures (scheme B). The merchant's key
// may be Ed25519, ECDSA P-256 or RSA, as registered; Quill answers with
// Ed25519 signatures that cover the request's own signature.
func Example_schemeB() {
	quill := startExampleQuillB() // a stand-in for https://quill.example:8443
	defer quill.Close()

	tr, err := quillclient.NewTransport(
		quillclient.WithBase(quill.mTLS),
		quillclient.WithSchemeB(),
		quillclient.WithKeyID(quill.keyID),
		quillclient.WithPrivateKey(quill.signingKey),
	)
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	body := `{"order_id":"ORD000000000001","amount":"12.34","currency":"CNY","payer_token":"eyJ…"}`
	res, err := client.Post(quill.URL+"/v1/payments", "application/json", strings.NewReader(body))
	if err != nil {
		log.Fatal(err) // errors.Is(err, quillclient.ErrUnverified): query the order before acting
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(res.Body)
	fmt.Println(res.StatusCode, string(answer))
	// Output: 200 {"order_id":"ORD000000000001","status":"succeeded"}
}

// startExampleQuillB runs a server that checks scheme B signatures with the
// signing package and signs its answers with an Ed25519 platform key, the way
// Quill does.
func startExampleQuillB() *exampleQuill {
	_, merchantKey, err1 := ed25519.GenerateKey(rand.Reader)
	_, platformKey, err2 := ed25519.GenerateKey(rand.Reader)
	if err := errors.Join(err1, err2); err != nil {
		log.Fatal(err)
	}
	verifier := &signing.MessageVerifier{
		Keys:   regKeys{"M100/KEY1": {Public: merchantKey.Public(), Algorithm: signing.Ed25519}},
		Nonces: &memNonces{seen: map[string]bool{}},
	}
	signer := &signing.MessageResponseSigner{Keys: staticPlatform{"PLAT-ED1", platformKey}}
	pubPEM, _ := keys.MarshalPublicKeyPEM(platformKey.Public())
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status, out := http.StatusOK, []byte(`{"order_id":"ORD000000000001","status":"succeeded"}`)
		v, err := verifier.Verify(r.Context(), signing.MessageRequest{Method: r.Method, Scheme: "https", Authority: r.Host,
			Target: r.RequestURI, Header: r.Header, Body: body, Merchant: "M100"}) // Merchant: from the client certificate
		if err != nil {
			status, out = http.StatusUnauthorized, []byte(`{"code":"signature_invalid"}`)
			v = signing.Verified{Scheme: signing.SchemeHTTPSig, Label: signing.DefaultLabel, Signature: r.Header.Get("Signature")}
		} else if r.URL.Path == quillclient.CertificatesPath {
			out, _ = json.Marshal(map[string]any{"data": []map[string]string{{"serial_no": "PLAT-ED1", "algorithm": "ed25519", "public_key": string(pubPEM)}}})
		}
		w.Header().Set("Content-Type", "application/json")
		sig, err := signer.Sign(r.Context(), signing.MessageResponse{Status: status, Header: w.Header(), Body: out}, v)
		if err != nil {
			http.Error(w, "internal", 500)
			return
		}
		w.Header().Set("Content-Digest", sig.ContentDigest)
		w.Header().Set("Signature-Input", sig.SignatureInput)
		w.Header().Set("Signature", sig.Signature)
		w.WriteHeader(status)
		w.Write(out)
	}))
	return &exampleQuill{Server: srv, mTLS: srv.Client().Transport, keyID: "KEY1", signingKey: merchantKey}
}
