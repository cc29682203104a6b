package signing_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quillpay/quill/signing"
)

// regKeys is an in-memory RegisteredKeyResolver keyed by "merchant/keyid".
type regKeys map[string]signing.RegisteredKey

func (m regKeys) RegisteredKey(_ context.Context, merchant, keyID string, _ time.Time) (signing.RegisteredKey, error) {
	if k, ok := m[merchant+"/"+keyID]; ok {
		return k, nil
	}
	return signing.RegisteredKey{}, fmt.Errorf("%w: %s/%s", signing.ErrUnknownKey, merchant, keyID)
}

type regErr struct{ err error }

func (r regErr) RegisteredKey(context.Context, string, string, time.Time) (signing.RegisteredKey, error) {
	return signing.RegisteredKey{}, r.err
}

const otherMerchant = "1900000002"

// bFixture is a scheme B verifier over one key per algorithm of the test
// merchant, plus a key of another merchant.
type bFixture struct {
	v      *signing.MessageVerifier
	nonces *memNonces
	keys   map[signing.Algorithm]crypto.Signer
}

func newBFixture(tb testing.TB) *bFixture {
	tb.Helper()
	f := &bFixture{nonces: &memNonces{}, keys: map[signing.Algorithm]crypto.Signer{
		signing.RSAPKCS1SHA256:  loadKey(tb, "test-key-rsa.key.pem"),
		signing.RSAPSSSHA512:    loadKey(tb, "other-rsa.key.pem"),
		signing.ECDSAP256SHA256: loadKey(tb, "test-key-ecc-p256.key.pem"),
		signing.Ed25519:         loadKey(tb, "test-key-ed25519.key.pem"),
	}}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		tb.Fatal(err)
	}
	keys := regKeys{
		merchant + "/rsa-1024":        {Public: small.Public(), Algorithm: signing.RSAPKCS1SHA256},
		merchant + "/ed-as-rsa":       {Public: f.keys[signing.Ed25519].Public(), Algorithm: signing.RSAPKCS1SHA256},
		otherMerchant + "/M2-ed":      {Public: f.keys[signing.Ed25519].Public(), Algorithm: signing.Ed25519},
		otherMerchant + "/" + "K-rsa": {Public: f.keys[signing.RSAPKCS1SHA256].Public(), Algorithm: signing.RSAPKCS1SHA256},
	}
	for alg, k := range f.keys {
		keys[merchant+"/K-"+string(alg)] = signing.RegisteredKey{Public: k.Public(), Algorithm: alg}
	}
	f.v = &signing.MessageVerifier{Keys: keys, Nonces: f.nonces, Now: clock,
		IsPlatformKey: func(id string) bool { return id == platformSerial }}
	return f
}

func (f *bFixture) signer(alg signing.Algorithm, nonceSeed byte) *signing.RequestSigner {
	return &signing.RequestSigner{Key: f.keys[alg], KeyID: "K-" + string(alg), Algorithm: alg, Now: clock,
		Rand: bytes.NewReader(bytes.Repeat([]byte{nonceSeed}, 16))}
}

func bRequest(body []byte) signing.MessageRequest {
	h := map[string][]string{"Host": {"api.quill.test"}}
	if body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	return signing.MessageRequest{Method: "POST", Scheme: "https", Authority: "api.quill.test", Target: "/v1/payments?x=1",
		Header: h, Body: body, Merchant: merchant}
}

// withHeaders returns r with the signer's headers set (header map copied).
func withHeaders(r signing.MessageRequest, mh signing.MessageHeaders) signing.MessageRequest {
	h := map[string][]string{}
	for k, v := range r.Header {
		h[k] = v
	}
	h["Signature-Input"] = []string{mh.SignatureInput}
	h["Signature"] = []string{mh.Signature}
	if mh.ContentDigest != "" {
		h["Content-Digest"] = []string{mh.ContentDigest}
	}
	r.Header = h
	return r
}

func (f *bFixture) signed(tb testing.TB, alg signing.Algorithm, r signing.MessageRequest, seed byte) signing.MessageRequest {
	tb.Helper()
	mh, err := f.signer(alg, seed).Sign(r)
	if err != nil {
		tb.Fatal(err)
	}
	return withHeaders(r, mh)
}

// signInput signs r under a hand-written Signature-Input (label "sig1") with an
// RSA PKCS #1 v1.5 or Ed25519 key, for requests no honest signer would make.
// digest, if not empty, is set as Content-Digest first.
func signInput(tb testing.TB, key crypto.Signer, r signing.MessageRequest, params, digest string) signing.MessageRequest {
	tb.Helper()
	h := map[string][]string{}
	for k, v := range r.Header {
		h[k] = v
	}
	if digest != "" {
		h["Content-Digest"] = []string{digest}
	}
	h["Signature-Input"] = []string{"sig1=" + params}
	r.Header = h
	base, err := signing.RequestSignatureBase(r, h["Signature-Input"][0], "sig1")
	if err != nil {
		tb.Fatal(err)
	}
	var sig []byte
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		d := sha256.Sum256([]byte(base))
		sig, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
	} else {
		sig, err = key.Sign(rand.Reader, []byte(base), crypto.Hash(0))
	}
	if err != nil {
		tb.Fatal(err)
	}
	h["Signature"] = []string{"sig1=:" + base64.StdEncoding.EncodeToString(sig) + ":"}
	return r
}

func setH(r signing.MessageRequest, name string, vals ...string) signing.MessageRequest {
	h := map[string][]string{}
	for k, v := range r.Header {
		h[k] = v
	}
	if vals == nil {
		delete(h, name)
	} else {
		h[name] = vals
	}
	r.Header = h
	return r
}

func TestMessageVerify(t *testing.T) {
	f := newBFixture(t)
	rsaKey, edKey := f.keys[signing.RSAPKCS1SHA256], f.keys[signing.Ed25519]
	body := payBody
	digest := signing.ContentDigest(body)
	const cover = `("@method" "@target-uri" "content-digest")`
	p := func(extra string) string { return cover + `;created=1700000000;keyid="K-ed25519";nonce="N1"` + extra }
	valid := signInput(t, edKey, bRequest(body), p(""), digest)
	get := bRequest(nil)
	get.Method, get.Target = "GET", "/v1/payments/ORD1"

	tampered := valid
	tampered.Body = []byte(`{"order_id": "ORD000000000001", "amount": "12.34", "currency": "CNY"}`)
	otherTarget := valid
	otherTarget.Target = "/v1/payments?x=2"

	twoValidOne := setH(valid, "Signature-Input", valid.Header["Signature-Input"][0],
		`proxy=("@method");created=1700000000;keyid="proxy-key";nonce="P"`)
	twoValidOne = setH(twoValidOne, "Signature", valid.Header["Signature"][0]+", proxy=:AAAA:")
	rsaSigned := signInput(t, rsaKey, bRequest(body), cover+`;created=1700000000;keyid="K-rsa-v1_5-sha256";nonce="N2"`, digest)
	twoResolving := setH(valid, "Signature-Input", valid.Header["Signature-Input"][0],
		strings.Replace(rsaSigned.Header["Signature-Input"][0], "sig1=", "sig2=", 1))
	twoResolving = setH(twoResolving, "Signature", valid.Header["Signature"][0], "sig2=:AAAA:")

	pssMax := bRequest(body)
	{
		in := `sig1=` + cover + `;created=1700000000;keyid="K-rsa-pss-sha512";nonce="N-pss"`
		r := setH(setH(pssMax, "Content-Digest", digest), "Signature-Input", in)
		base, err := signing.RequestSignatureBase(r, in, "sig1")
		if err != nil {
			t.Fatal(err)
		}
		d := sha512.Sum512([]byte(base))
		sig, err := f.keys[signing.RSAPSSSHA512].Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA512})
		if err != nil {
			t.Fatal(err)
		}
		pssMax = setH(r, "Signature", "sig1=:"+base64.StdEncoding.EncodeToString(sig)+":")
	}

	tests := []struct {
		name string
		req  signing.MessageRequest
		want error  // nil: accepted
		hint string // substring of Failure.Hint
	}{
		{name: "valid rsa-v1_5-sha256", req: f.signed(t, signing.RSAPKCS1SHA256, bRequest(body), 1)},
		{name: "valid rsa-pss-sha512", req: f.signed(t, signing.RSAPSSSHA512, bRequest(body), 2)},
		{name: "valid ecdsa-p256-sha256", req: f.signed(t, signing.ECDSAP256SHA256, bRequest(body), 3)},
		{name: "valid ed25519", req: f.signed(t, signing.Ed25519, bRequest(body), 4)},
		{name: "valid body-less GET", req: f.signed(t, signing.Ed25519, get, 5)},
		{name: "valid authority+path+query, fields as several lines", req: signInput(t, edKey, setH(bRequest(body), "X-Extra", "a", " b "),
			`("@method" "@authority" "@path" "@query" "content-digest" "x-extra");created=1700000000;keyid="K-ed25519";nonce="N3"`, digest)},
		{name: "valid at +window", req: signInput(t, edKey, bRequest(body), cover+`;created=1700000300;keyid="K-ed25519";nonce="N4"`, digest)},
		{name: "valid with alg and expires", req: signInput(t, edKey, bRequest(body), p(`;alg="ed25519";expires=1700000010`), digest)},
		{name: "two signatures, only ours resolves", req: twoValidOne},

		{name: "missing @method", req: signInput(t, edKey, bRequest(body), `("@target-uri" "content-digest");created=1700000000;keyid="K-ed25519";nonce="N"`, digest),
			want: signing.ErrCoverage, hint: `"@method"`},
		{name: "missing target", req: signInput(t, edKey, bRequest(body), `("@method" "@path" "content-digest");created=1700000000;keyid="K-ed25519";nonce="N"`, digest),
			want: signing.ErrCoverage, hint: `"@target-uri" (or`},
		{name: "missing content-digest with a body", req: signInput(t, edKey, bRequest(body), `("@method" "@target-uri");created=1700000000;keyid="K-ed25519";nonce="N"`, ""),
			want: signing.ErrCoverage, hint: `"content-digest" (the request has a body)`},
		{name: "covered field absent", req: setH(signInput(t, edKey, setH(bRequest(body), "X-Gone", "1"), `("@method" "@target-uri" "content-digest" "x-gone");created=1700000000;keyid="K-ed25519";nonce="N"`, digest), "X-Gone"),
			want: signing.ErrCoverage, hint: `covers field "x-gone", which the message does not have`},
		{name: "duplicated component", req: signInputRaw(valid, `sig1=("@method" "@target-uri" "content-digest" "@method");created=1700000000;keyid="K-ed25519";nonce="N"`),
			want: signing.ErrMalformed, hint: `"@method" is covered twice`},
		{name: "wrong digest (body re-serialized)", req: tampered, want: signing.ErrBadDigest, hint: "the body is the likely cause"},
		{name: "digest missing", req: setH(valid, "Content-Digest"), want: signing.ErrCoverage, hint: `"content-digest"`},
		{name: "digest of another body, signed", req: signInput(t, edKey, bRequest(body), p(""), signing.ContentDigest([]byte("{}"))),
			want: signing.ErrBadDigest, hint: "sha-256 is not the SHA-256"},
		{name: "digest sha-512 only", req: signInput(t, edKey, bRequest(body), p(""), sha512Digest(body))},
		{name: "digest unknown algorithm only", req: signInput(t, edKey, bRequest(body), p(""), "md5=:AAAA:"),
			want: signing.ErrBadDigest, hint: "neither sha-256 nor sha-512"},
		{name: "alg mismatch", req: signInput(t, edKey, bRequest(body), p(`;alg="rsa-v1_5-sha256"`), digest),
			want: signing.ErrAlgorithm, hint: `registered algorithm "ed25519"`},
		{name: "created in the future beyond the skew", req: signInput(t, edKey, bRequest(body), cover+`;created=1700000301;keyid="K-ed25519";nonce="N"`, digest),
			want: signing.ErrStale, hint: "301 s ahead of"},
		{name: "created too old", req: signInput(t, edKey, bRequest(body), cover+`;created=1699999699;keyid="K-ed25519";nonce="N"`, digest),
			want: signing.ErrStale, hint: "301 s behind"},
		{name: "created in milliseconds", req: signInput(t, edKey, bRequest(body), cover+`;created=1700000000000;keyid="K-ed25519";nonce="N"`, digest),
			want: signing.ErrStale, hint: "milliseconds"},
		{name: "expired", req: signInput(t, edKey, bRequest(body), p(`;expires=1699999999`), digest),
			want: signing.ErrStale, hint: "expired at 1699999999"},
		{name: "label not in Signature", req: setH(valid, "Signature", strings.Replace(valid.Header["Signature"][0], "sig1=", "sig2=", 1)),
			want: signing.ErrMalformed, hint: `Signature has no member "sig1"`},
		{name: "two signatures of the merchant, one valid", req: twoResolving,
			want: signing.ErrMalformed, hint: "exactly one merchant key"},
		{name: "tampered target", req: otherTarget, want: signing.ErrBadSignature, hint: "does not verify"},
		{name: "query missing from the signed URL", req: func() signing.MessageRequest {
			r := bRequest(body)
			r.Target = "/v1/payments"
			r = signInput(t, edKey, r, p(""), digest)
			r.Target = "/v1/payments?x=1"
			return r
		}(), want: signing.ErrBadSignature, hint: "omitted the query string"},
		{name: "signed as http", req: func() signing.MessageRequest {
			r := bRequest(body)
			r.Scheme = "http"
			r = signInput(t, edKey, r, p(""), digest)
			r.Scheme = "https"
			return r
		}(), want: signing.ErrBadSignature, hint: "scheme http"},
		{name: "tampered method", req: func() signing.MessageRequest { r := valid; r.Method = "PUT"; return r }(), want: signing.ErrBadSignature},
		{name: "tampered authority", req: func() signing.MessageRequest { r := valid; r.Authority = "evil.test"; return r }(), want: signing.ErrBadSignature},
		{name: "signature of another key", req: setH(valid, "Signature", rsaSigned.Header["Signature"][0]), want: signing.ErrBadSignature},
		{name: "rsa-pss salt not 64", req: pssMax, want: signing.ErrBadSignature},
		{name: "missing nonce", req: signInput(t, edKey, bRequest(body), cover+`;created=1700000000;keyid="K-ed25519"`, digest),
			want: signing.ErrMalformed, hint: "missing required parameter(s) nonce"},
		{name: "missing created", req: signInput(t, edKey, bRequest(body), cover+`;keyid="K-ed25519";nonce="N"`, digest),
			want: signing.ErrMalformed, hint: "created"},
		{name: "created not an integer", req: signInputRaw(valid, `sig1=`+cover+`;created="1700000000";keyid="K-ed25519";nonce="N"`),
			want: signing.ErrMalformed, hint: "created must be of type integer, found string"},
		{name: "no keyid", req: signInputRaw(valid, `sig1=`+cover+`;created=1700000000;nonce="N"`),
			want: signing.ErrMalformed, hint: "no signature in Signature-Input has a keyid"},
		{name: "unknown keyid", req: signInputRaw(valid, `sig1=`+cover+`;created=1700000000;keyid="nope";nonce="N"`),
			want: signing.ErrUnknownKey, hint: `sig1: keyid "nope"`},
		{name: "platform key id sent", req: signInputRaw(valid, `sig1=`+cover+`;created=1700000000;keyid="`+platformSerial+`";nonce="N"`),
			want: signing.ErrUnknownKey, hint: "is Quill's platform key id"},
		{name: "wrong merchant: key of another merchant", req: signInput(t, edKey, bRequest(body), cover+`;created=1700000000;keyid="M2-ed";nonce="N"`, digest),
			want: signing.ErrUnknownKey, hint: `merchant "1900000001", the client certificate's merchant`},
		{name: "no certificate merchant", req: func() signing.MessageRequest { r := valid; r.Merchant = ""; return r }(), want: signing.ErrWrongMerchant},
		{name: "RSA-1024 key registered", req: signInputRaw(valid, `sig1=`+cover+`;created=1700000000;keyid="rsa-1024";nonce="N"`),
			want: signing.ErrUnknownKey, hint: "not a usable"},
		{name: "key type does not fit registration", req: signInputRaw(valid, `sig1=`+cover+`;created=1700000000;keyid="ed-as-rsa";nonce="N"`),
			want: signing.ErrUnknownKey, hint: "not a usable rsa-v1_5-sha256 key"},
		{name: "req flag in a request", req: signInputRaw(valid, `sig1=("@method" "@target-uri" "content-digest" "@authority";req);created=1700000000;keyid="K-ed25519";nonce="N"`),
			want: signing.ErrMalformed, hint: "only responses"},
		{name: "unknown derived component", req: signInputRaw(valid, `sig1=("@method" "@target-uri" "content-digest" "@nope");created=1700000000;keyid="K-ed25519";nonce="N"`),
			want: signing.ErrMalformed, hint: `unknown derived component "@nope"`},
		{name: "uppercase field name", req: signInputRaw(valid, `sig1=("@method" "@target-uri" "Content-Digest");created=1700000000;keyid="K-ed25519";nonce="N"`),
			want: signing.ErrCoverage},
		{name: "token component", req: signInputRaw(valid, `sig1=("@method" "@target-uri" "content-digest" date);created=1700000000;keyid="K-ed25519";nonce="N"`),
			want: signing.ErrMalformed, hint: "component identifiers are strings"},
		{name: "malformed dictionary: trailing comma", req: signInputRaw(valid, valid.Header["Signature-Input"][0]+","),
			want: signing.ErrMalformed, hint: "trailing \",\""},
		{name: "malformed dictionary: uppercase label", req: signInputRaw(valid, "Sig1"+valid.Header["Signature-Input"][0][4:]),
			want: signing.ErrMalformed, hint: "keys must be lowercase"},
		{name: "malformed dictionary: duplicate label", req: signInputRaw(valid, valid.Header["Signature-Input"][0]+", "+valid.Header["Signature-Input"][0]),
			want: signing.ErrMalformed, hint: `dictionary key "sig1" occurs twice`},
		{name: "malformed inner list: not closed", req: signInputRaw(valid, `sig1=("@method" "@target-uri";created=1700000000`),
			want: signing.ErrMalformed, hint: "at byte 5: inner list is not closed"},
		{name: "malformed inner list: not a list", req: signInputRaw(valid, `sig1="@method";created=1700000000;keyid="K-ed25519";nonce="N"`),
			want: signing.ErrMalformed, hint: "must be an inner list"},
		{name: "malformed parameter: no value", req: signInputRaw(valid, `sig1=`+cover+`;created=;keyid="K-ed25519";nonce="N"`),
			want: signing.ErrMalformed, hint: "at byte 56: expected an item"},
		{name: "malformed parameter: duplicate", req: signInputRaw(valid, `sig1=`+cover+`;created=1700000000;keyid="K-ed25519";nonce="N";nonce="M"`),
			want: signing.ErrMalformed, hint: `parameter "nonce" occurs twice`},
		{name: "malformed Signature: not base64", req: setH(valid, "Signature", "sig1=:not base64:"),
			want: signing.ErrMalformed, hint: "Signature is not a valid structured-field dictionary: at byte 9: byte sequence holds base64 only"},
		{name: "Signature member not a byte sequence", req: setH(valid, "Signature", `sig1="abc"`),
			want: signing.ErrMalformed, hint: "must be a byte sequence"},
		{name: "no Signature field", req: setH(valid, "Signature"), want: signing.ErrMalformed, hint: "both Signature-Input and Signature"},
		{name: "malformed Content-Digest", req: setH(valid, "Content-Digest", "sha-256=abc=="), want: signing.ErrMalformed, hint: "Content-Digest at byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.nonces.seen = nil // replay has its own test
			calls := f.nonces.calls
			got, err := f.v.Verify(context.Background(), tt.req)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.Scheme != signing.SchemeHTTPSig || got.Merchant != merchant || got.Label == "" || got.SignatureBase == "" ||
					!strings.HasPrefix(got.SignatureInput, got.Label+"=(") || !strings.HasPrefix(got.Signature, got.Label+"=:") {
					t.Fatalf("Verified = %+v", got)
				}
				if f.nonces.calls != calls+1 {
					t.Fatal("nonce not claimed")
				}
				return
			}
			var fl *signing.Failure
			if !errors.As(err, &fl) || !errors.Is(err, signing.ErrUnauthorized) || !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want a Failure wrapping %v", err, tt.want)
			}
			if !strings.Contains(fl.Hint, tt.hint) {
				t.Fatalf("hint %q does not contain %q", fl.Hint, tt.hint)
			}
			if f.nonces.calls != calls {
				t.Fatal("nonce claimed for a refused request")
			}
		})
	}
}

// signInputRaw replaces Signature-Input without re-signing.
func signInputRaw(r signing.MessageRequest, input string) signing.MessageRequest {
	return setH(r, "Signature-Input", input)
}

func sha512Digest(body []byte) string {
	d := sha512.Sum512(body)
	return "sha-512=:" + base64.StdEncoding.EncodeToString(d[:]) + ":"
}

func TestMessageVerifyReplayAndEvidence(t *testing.T) {
	f := newBFixture(t)
	r := f.signed(t, signing.Ed25519, bRequest(payBody), 9)
	got, err := f.v.Verify(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	want := signing.Verified{Scheme: signing.SchemeHTTPSig, Merchant: merchant, KeyID: "K-ed25519",
		Nonce: "09090909090909090909090909090909", Timestamp: now, Label: "sig1", Algorithm: signing.Ed25519,
		SignatureInput: r.Header["Signature-Input"][0], Signature: r.Header["Signature"][0]}
	base := got.SignatureBase
	got.SignatureBase = ""
	if got != want {
		t.Fatalf("Verified = %+v\nwant %+v", got, want)
	}
	wantBase := "\"@method\": POST\n\"@target-uri\": https://api.quill.test/v1/payments?x=1\n\"content-type\": application/json\n" +
		"\"content-digest\": " + signing.ContentDigest(payBody) + "\n\"@signature-params\": " + strings.TrimPrefix(want.SignatureInput, "sig1=")
	if base != wantBase {
		t.Fatalf("SignatureBase\n%s\nwant\n%s", base, wantBase)
	}
	if f.nonces.ttl != 601*time.Second {
		t.Fatalf("nonce TTL %v", f.nonces.ttl)
	}
	_, err = f.v.Verify(context.Background(), r)
	var fl *signing.Failure
	if !errors.As(err, &fl) || !errors.Is(err, signing.ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// The same nonce under another merchant's certificate and key is not a replay.
	r2 := r
	r2.Merchant = otherMerchant
	r2 = signInput(t, f.keys[signing.Ed25519], r2, `("@method" "@target-uri" "content-digest");created=1700000000;keyid="M2-ed";nonce="09090909090909090909090909090909"`, signing.ContentDigest(payBody))
	if _, err := f.v.Verify(context.Background(), r2); err != nil {
		t.Fatalf("other merchant, same nonce: %v", err)
	}
}

func TestMessageVerifyDependencies(t *testing.T) {
	f := newBFixture(t)
	r := f.signed(t, signing.Ed25519, bRequest(payBody), 7)
	f.nonces.err = fmt.Errorf("%w: redis down", signing.ErrUnavailable)
	_, err := f.v.Verify(context.Background(), r)
	if !errors.Is(err, signing.ErrUnavailable) || errors.Is(err, signing.ErrUnauthorized) {
		t.Fatalf("nonce store down: %v", err)
	}
	f.nonces.err = errors.New("weird")
	if _, err := f.v.Verify(context.Background(), r); !errors.Is(err, signing.ErrUnavailable) {
		t.Fatalf("nonce store uncertain: %v", err)
	}
	down := errors.New("vault sealed")
	v := &signing.MessageVerifier{Keys: regErr{down}, Nonces: &memNonces{}, Now: clock}
	if _, err := v.Verify(context.Background(), r); !errors.Is(err, down) || errors.Is(err, signing.ErrUnauthorized) {
		t.Fatalf("key store down: %v", err)
	}
}

func TestMessageVerifyExpected(t *testing.T) {
	f := newBFixture(t)
	r := f.signed(t, signing.Ed25519, bRequest(payBody), 8)
	r.Target = "/v1/payments?x=2"
	_, err := f.v.Verify(context.Background(), r)
	var fl *signing.Failure
	if !errors.As(err, &fl) || !errors.Is(err, signing.ErrBadSignature) {
		t.Fatalf("Verify = %v", err)
	}
	if !strings.Contains(fl.Expected, "\"@target-uri\": https://api.quill.test/v1/payments?x=2\n") {
		t.Fatalf("Expected %q does not show the base Quill built", fl.Expected)
	}
	sig := strings.TrimSuffix(strings.TrimPrefix(r.Header["Signature"][0], "sig1=:"), ":")
	if strings.Contains(fl.Error(), sig) || strings.Contains(fl.Expected, sig) {
		t.Fatal("failure echoes the signature")
	}
}
