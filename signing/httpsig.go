package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
)

// SchemeHTTPSig is Verified.Scheme for scheme B, RFC 9421 HTTP Message
// Signatures.
const SchemeHTTPSig = "rfc9421"

// DefaultLabel is the signature label SignRequest and the response signer use.
const DefaultLabel = "sig1"

const (
	maxLabels       = 8 // Signature-Input members read at most
	maxExpectedBase = 2048
	pssSaltLength   = 64 // RFC 9421 §3.3.1
)

// MessageRequest is an HTTP request as received, for scheme B. Every value is
// taken verbatim off the wire: Target is the raw request-target (e.g.
// "/v1/payments?x=1", never re-encoded), Header the field lines as received
// (names matched case-insensitively, one slice element per field line, so an
// http.Header can be passed as is) and Body the raw bytes.
type MessageRequest struct {
	Method    string
	Scheme    string // "https" (or "http")
	Authority string // the Host header or :authority as received
	Target    string
	Header    map[string][]string
	Body      []byte
	// Merchant is the identity proven by the client certificate.
	Merchant string
}

// MessageResponse is an HTTP response for scheme B: its status, header field
// lines and exact body bytes.
type MessageResponse struct {
	Status int
	Header map[string][]string
	Body   []byte
	// BodySHA256, when not nil, stands for a body too large to hold (a
	// streamed response; Body is then ignored): the signer puts it in
	// Content-Digest, and VerifyMessageResponse checks Content-Digest's
	// sha-256 member against it (one with sha-512 only is refused).
	BodySHA256 []byte
}

// MessageHeaders are the header values a scheme B signer produces; set each
// that is not empty on the message.
type MessageHeaders struct {
	SignatureInput string // Signature-Input
	Signature      string // Signature
	ContentDigest  string // Content-Digest (sha-256 of the body)
}

// RequestSignatureBase returns the RFC 9421 signature base of the signature
// labelled label in signatureInput (a Signature-Input field value) over r. It
// returns an error wrapping ErrMalformed or ErrCoverage if it cannot be built.
func RequestSignatureBase(r MessageRequest, signatureInput, label string) (string, error) {
	return signatureBaseOf(message{req: &r}, signatureInput, label)
}

// ResponseSignatureBase is RequestSignatureBase for a response; req is the
// request it answers, for components with the req flag (it may be nil).
func ResponseSignatureBase(resp MessageResponse, req *MessageRequest, signatureInput, label string) (string, error) {
	return signatureBaseOf(message{req: req, resp: &resp}, signatureInput, label)
}

func signatureBaseOf(m message, signatureInput, label string) (string, error) {
	d, err := parseSFDictionary(signatureInput)
	if err != nil {
		return "", fmt.Errorf("%w: Signature-Input %v", ErrMalformed, err)
	}
	mem, ok := d.get(label)
	if !ok {
		return "", fmt.Errorf("%w: Signature-Input has no label %q", ErrMalformed, label)
	}
	b, err := buildBase(m, mem)
	if err != nil {
		var be *baseError
		errors.As(err, &be)
		return "", fmt.Errorf("%w: %s", be.err, be.hint)
	}
	return string(b), nil
}

// MessageVerifier checks scheme B (RFC 9421) request signatures. Keys and
// Nonces are required. It is safe for concurrent use once set up.
type MessageVerifier struct {
	Keys   RegisteredKeyResolver
	Nonces NonceStore
	// Window is how far created may be from Now, either way, in whole seconds.
	// Zero means DefaultWindow.
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IsPlatformKey reports whether keyID is one of Quill's platform key ids;
	// it only improves the hint when a client sends it by mistake.
	IsPlatformKey func(keyID string) bool
}

// Verify checks r's scheme B signature. The checks run in this order, and the
// first that fails ends verification with nothing recorded:
//
//  1. Signature-Input and Signature parse as RFC 8941 dictionaries, strictly
//     (ErrMalformed, with the byte offset and what was wrong);
//  2. r.Merchant (the client certificate's merchant) is set (ErrWrongMerchant);
//  3. label selection: the keyid of each Signature-Input member (at most 8) is
//     looked up as a key of r.Merchant; exactly one must resolve (none:
//     ErrUnknownKey; several: ErrMalformed). Members whose keyid does not
//     resolve, e.g. a proxy's signature, are ignored and not verified. keyid
//     names a key of the certificate's merchant, so a key of any other
//     merchant never resolves: that is the identity binding;
//  4. the selected member has created (integer), nonce (string) and keyid
//     (string), optional expires (integer) and alg (string) (ErrMalformed);
//     Signature has a byte sequence under the same label (ErrMalformed);
//  5. alg, if present, equals the key's registered algorithm (ErrAlgorithm),
//     and the key is usable for that algorithm (ErrUnknownKey);
//  6. created is within Window of Now and expires, if present, not before
//     Now (ErrStale);
//  7. the covered components include @method, @target-uri (or @authority,
//     @path and @query), and content-digest when the body is not empty, each
//     without parameters (ErrCoverage);
//  8. the signature base builds from the raw message (ErrMalformed for an
//     invalid identifier or a duplicate, ErrCoverage for a component the
//     request does not have);
//  9. Content-Digest, when the body is not empty or the field is present, is
//     recomputed over the raw body (sha-256 and/or sha-512) and compared in
//     constant time (ErrBadDigest);
//  10. the signature verifies with the registered algorithm (ErrBadSignature);
//  11. only then, the nonce is claimed in Nonces (ErrReplay).
//
// As for scheme A, every refusal is a *Failure matching ErrUnauthorized; an
// error wrapping ErrUnavailable (nonce store uncertain) or a key-store error not
// wrapping ErrUnknownKey is passed through and is not a refusal.
func (v *MessageVerifier) Verify(ctx context.Context, r MessageRequest) (Verified, error) {
	inputs, sigs, f := parseSignatureFields(r.Header)
	if f != nil {
		return Verified{}, f
	}
	if r.Merchant == "" {
		return Verified{}, &Failure{Err: ErrWrongMerchant, Hint: "no merchant identity from the client certificate"}
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now()

	label, input, key, err := v.selectLabel(ctx, r.Merchant, inputs, t)
	if err != nil {
		return Verified{}, err
	}
	p, f := signatureParams(label, input)
	if f != nil {
		return Verified{}, f
	}
	sigMem, ok := sigs.get(label)
	if !ok {
		return Verified{}, &Failure{Err: ErrMalformed,
			Hint: fmt.Sprintf("Signature has no member %q; Signature-Input and Signature must use the same label", label)}
	}
	if sigMem.inner || sigMem.item.bare.kind != sfBytes {
		return Verified{}, &Failure{Err: ErrMalformed, Hint: fmt.Sprintf("Signature member %q must be a byte sequence (:base64:)", label)}
	}
	if p.alg != "" && Algorithm(p.alg) != key.Algorithm {
		return Verified{}, &Failure{Err: ErrAlgorithm,
			Hint: fmt.Sprintf("alg %q disagrees with key %q's registered algorithm %q; send alg=%q or omit alg", p.alg, p.keyID, key.Algorithm, key.Algorithm)}
	}
	if !keyFits(key) {
		return Verified{}, &Failure{Err: ErrUnknownKey,
			Hint: fmt.Sprintf("key %q of merchant %q is not a usable %s key", p.keyID, r.Merchant, key.Algorithm)}
	}
	window := v.window()
	if f := checkTimes(p, t, window); f != nil {
		return Verified{}, f
	}
	if f := checkCoverage(input, len(r.Body) > 0); f != nil {
		return Verified{}, f
	}
	base, err := buildBase(message{req: &r}, input)
	if err != nil {
		var be *baseError
		errors.As(err, &be)
		return Verified{}, &Failure{Err: be.err, Hint: be.hint}
	}
	if cd, present := headerLines(r.Header, "content-digest"); present || len(r.Body) > 0 {
		if err := checkContentDigest(cd, r.Body); err != nil {
			var se *sfError
			if errors.As(err, &se) {
				return Verified{}, &Failure{Err: ErrMalformed, Hint: "Content-Digest " + se.Error()}
			}
			return Verified{}, &Failure{Err: ErrBadDigest, Hint: err.Error()}
		}
	}
	if !verifyWith(key, base, sigMem.item.bare.b) {
		return Verified{}, &Failure{Err: ErrBadSignature, Hint: badSignatureHint(r, input, key, sigMem.item.bare.b, label, p.keyID),
			Expected: truncUTF8(Redact(string(base)), maxExpectedBase)}
	}
	if err := v.Nonces.Claim(ctx, r.Merchant, p.nonce, nonceTTL(window)); err != nil {
		switch {
		case errors.Is(err, ErrReplay):
			return Verified{}, &Failure{Err: ErrReplay,
				Hint: "nonce was already used within the replay window; send a fresh random nonce with every request"}
		case errors.Is(err, ErrUnavailable):
			return Verified{}, err
		default:
			return Verified{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return Verified{
		Scheme:         SchemeHTTPSig,
		Merchant:       r.Merchant,
		KeyID:          p.keyID,
		Nonce:          p.nonce,
		Timestamp:      time.Unix(p.created, 0),
		Label:          label,
		SignatureInput: string(appendSFDict(nil, sfDict{input})),
		Signature:      string(appendSFDict(nil, sfDict{sigMem})),
		SignatureBase:  string(base),
		Algorithm:      key.Algorithm,
	}, nil
}

// badSignatureHint explains a signature that does not verify, trying the
// known client-side traps on the failure path only: a signed URL without its
// query string, or signed as http instead of https.
func badSignatureHint(r MessageRequest, input sfMember, key RegisteredKey, sig []byte, label, keyID string) string {
	traps := []struct {
		hint string
		mod  func(*MessageRequest) bool
	}{
		{"the signed URL omitted the query string; sign the request-target exactly as sent, with its query",
			func(m *MessageRequest) bool {
				path, _, hasQuery, err := splitTarget(m.Target)
				m.Target = path
				return err == nil && hasQuery && !isAbsoluteForm(r.Target)
			}},
		{"the signature was made for scheme http; Quill is reached over https, so sign https://… as the target URI",
			func(m *MessageRequest) bool { m.Scheme = "http"; return !strings.EqualFold(r.Scheme, "http") }},
	}
	for _, tr := range traps {
		alt := r
		if !tr.mod(&alt) {
			continue
		}
		if b, err := buildBase(message{req: &alt}, input); err == nil && verifyWith(key, b, sig) {
			return tr.hint
		}
	}
	return fmt.Sprintf("signature %q does not verify with key %q (%s) over the signature base Quill built from the request as received (in expected); compare it with yours line by line: the raw request-target, the Host, and every covered field value exactly as sent", label, keyID, key.Algorithm)
}

func (v *MessageVerifier) window() time.Duration {
	if v.Window <= 0 {
		return DefaultWindow
	}
	return v.Window
}

// parseSignatureFields parses the Signature-Input and Signature fields.
func parseSignatureFields(h map[string][]string) (inputs, sigs sfDict, f *Failure) {
	inLines, okIn := headerLines(h, "signature-input")
	sigLines, okSig := headerLines(h, "signature")
	if !okIn || !okSig {
		return nil, nil, &Failure{Err: ErrMalformed, Hint: "scheme B needs both Signature-Input and Signature fields"}
	}
	inputs, err := parseSFDictionary(strings.Join(inLines, ", "))
	if err != nil {
		return nil, nil, &Failure{Err: ErrMalformed, Hint: "Signature-Input is not a valid structured-field dictionary: " + err.Error()}
	}
	sigs, err = parseSFDictionary(strings.Join(sigLines, ", "))
	if err != nil {
		return nil, nil, &Failure{Err: ErrMalformed, Hint: "Signature is not a valid structured-field dictionary: " + err.Error()}
	}
	if len(inputs) == 0 {
		return nil, nil, &Failure{Err: ErrMalformed, Hint: "Signature-Input is empty"}
	}
	if len(inputs) > maxLabels {
		return nil, nil, &Failure{Err: ErrMalformed, Hint: fmt.Sprintf("Signature-Input has %d signatures; at most %d are read", len(inputs), maxLabels)}
	}
	for _, m := range inputs {
		if !m.inner {
			return nil, nil, &Failure{Err: ErrMalformed,
				Hint: fmt.Sprintf("Signature-Input member %q must be an inner list of covered components, e.g. (\"@method\" \"@target-uri\")", m.key)}
		}
	}
	return inputs, sigs, nil
}

// selectLabel applies the label rule: exactly one Signature-Input member whose
// keyid resolves to a key of merchant.
func (v *MessageVerifier) selectLabel(ctx context.Context, merchant string, inputs sfDict, t time.Time) (string, sfMember, RegisteredKey, error) {
	var (
		found   []string
		mem     sfMember
		key     RegisteredKey
		unknown []string
	)
	for _, m := range inputs {
		kid, ok := m.params.get("keyid")
		if !ok {
			continue
		}
		if kid.kind != sfString {
			return "", sfMember{}, RegisteredKey{}, &Failure{Err: ErrMalformed, Hint: fmt.Sprintf("keyid of signature %q must be a string", m.key)}
		}
		k, err := v.Keys.RegisteredKey(ctx, merchant, kid.s, t)
		if err != nil {
			if !errors.Is(err, ErrUnknownKey) {
				return "", sfMember{}, RegisteredKey{}, fmt.Errorf("signing: resolve key %s/%s: %w", merchant, kid.s, err)
			}
			u := fmt.Sprintf("%s: keyid %q", m.key, kid.s)
			if v.IsPlatformKey != nil && v.IsPlatformKey(kid.s) {
				u += " is Quill's platform key id; send your merchant key's id"
			}
			unknown = append(unknown, u)
			continue
		}
		found = append(found, m.key)
		mem, key = m, k
	}
	switch len(found) {
	case 1:
		return found[0], mem, key, nil
	case 0:
		if len(unknown) == 0 {
			return "", sfMember{}, RegisteredKey{}, &Failure{Err: ErrMalformed, Hint: "no signature in Signature-Input has a keyid parameter"}
		}
		return "", sfMember{}, RegisteredKey{}, &Failure{Err: ErrUnknownKey,
			Hint: fmt.Sprintf("no keyid names an active key of merchant %q, the client certificate's merchant (%s)", merchant, strings.Join(unknown, "; "))}
	}
	return "", sfMember{}, RegisteredKey{}, &Failure{Err: ErrMalformed,
		Hint: fmt.Sprintf("signatures %s all name keys of merchant %q; sign each request with exactly one merchant key", strings.Join(found, ", "), merchant)}
}

// sigParams are the signature parameters Quill reads.
type sigParams struct {
	created, expires int64
	hasExpires       bool
	nonce, keyID     string
	alg              string
}

func signatureParams(label string, m sfMember) (sigParams, *Failure) {
	var p sigParams
	bad := func(format string, args ...any) (sigParams, *Failure) {
		return sigParams{}, &Failure{Err: ErrMalformed, Hint: fmt.Sprintf("signature %q: ", label) + fmt.Sprintf(format, args...)}
	}
	get := func(name string, kind sfKind) (sfBare, bool, *Failure) {
		v, ok := m.params.get(name)
		if ok && v.kind != kind {
			_, f := bad("parameter %s must be of type %s, found %s", name, kind, v.kind)
			return sfBare{}, false, f
		}
		return v, ok, nil
	}
	var missing []string
	c, ok, f := get("created", sfInteger)
	if f != nil {
		return sigParams{}, f
	}
	if !ok {
		missing = append(missing, "created")
	}
	p.created = c.i
	n, ok, f := get("nonce", sfString)
	if f != nil {
		return sigParams{}, f
	}
	if !ok || n.s == "" {
		missing = append(missing, "nonce")
	}
	p.nonce = n.s
	k, _, f := get("keyid", sfString)
	if f != nil {
		return sigParams{}, f
	}
	p.keyID = k.s
	e, ok, f := get("expires", sfInteger)
	if f != nil {
		return sigParams{}, f
	}
	p.expires, p.hasExpires = e.i, ok
	a, _, f := get("alg", sfString)
	if f != nil {
		return sigParams{}, f
	}
	p.alg = a.s
	if len(missing) > 0 {
		return bad("missing required parameter(s) %s; Quill requires created (Unix seconds), nonce (a fresh random string) and keyid", strings.Join(missing, ", "))
	}
	return p, nil
}

func checkTimes(p sigParams, t time.Time, window time.Duration) *Failure {
	w := int64(window / time.Second)
	skew := t.Unix() - p.created
	if skew > w || -skew > w {
		if p.created > 1e12 {
			return &Failure{Err: ErrStale, Hint: "created looks like milliseconds; send Unix seconds"}
		}
		dir := "behind"
		if skew < 0 {
			dir, skew = "ahead of", -skew
		}
		return &Failure{Err: ErrStale, Hint: fmt.Sprintf("created is %d s %s Quill's clock (now %d); the window is ±%d s", skew, dir, t.Unix(), w)}
	}
	if p.hasExpires && t.Unix() > p.expires {
		return &Failure{Err: ErrStale, Hint: fmt.Sprintf("the signature expired at %d (expires); Quill's clock is %d", p.expires, t.Unix())}
	}
	return nil
}

// checkCoverage enforces the components Quill requires in a request signature.
func checkCoverage(input sfMember, hasBody bool) *Failure {
	covered := func(name string) bool {
		for _, id := range input.list {
			if id.bare.kind == sfString && len(id.params) == 0 && id.bare.s == name {
				return true
			}
		}
		return false
	}
	var missing []string
	if !covered("@method") {
		missing = append(missing, `"@method"`)
	}
	if !covered("@target-uri") && !(covered("@authority") && covered("@path") && covered("@query")) {
		missing = append(missing, `"@target-uri" (or "@authority", "@path" and "@query")`)
	}
	if hasBody && !covered("content-digest") {
		missing = append(missing, `"content-digest" (the request has a body)`)
	}
	if len(missing) == 0 {
		return nil
	}
	return &Failure{Err: ErrCoverage, Hint: "the signature must cover " + strings.Join(missing, ", ") +
		", without parameters; it covers " + string(appendSFMember(nil, sfMember{inner: true, list: input.list}))}
}

// keyFits reports whether k's public key is usable for its algorithm.
func keyFits(k RegisteredKey) bool {
	switch k.Algorithm {
	case RSAPKCS1SHA256, RSAPSSSHA512:
		pub, ok := k.Public.(*rsa.PublicKey)
		return ok && pub.Size() >= minRSABytes
	case ECDSAP256SHA256:
		pub, ok := k.Public.(*ecdsa.PublicKey)
		return ok && pub.Curve == elliptic.P256()
	case Ed25519:
		pub, ok := k.Public.(ed25519.PublicKey)
		return ok && len(pub) == ed25519.PublicKeySize
	}
	return false
}

// verifyWith verifies sig over base with k (keyFits(k) must hold).
func verifyWith(k RegisteredKey, base, sig []byte) bool {
	switch k.Algorithm {
	case RSAPKCS1SHA256:
		d := sha256.Sum256(base)
		return rsa.VerifyPKCS1v15(k.Public.(*rsa.PublicKey), crypto.SHA256, d[:], sig) == nil
	case RSAPSSSHA512:
		d := sha512.Sum512(base)
		return rsa.VerifyPSS(k.Public.(*rsa.PublicKey), crypto.SHA512, d[:], sig,
			&rsa.PSSOptions{SaltLength: pssSaltLength, Hash: crypto.SHA512}) == nil
	case ECDSAP256SHA256:
		if len(sig) != 64 {
			return false
		}
		d := sha256.Sum256(base)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.Public.(*ecdsa.PublicKey), d[:], r, s)
	case Ed25519:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.Public.(ed25519.PublicKey), base, sig)
	}
	return false
}

// signWith signs base with key for alg; ECDSA signatures are raw r‖s.
func signWith(key crypto.Signer, alg Algorithm, base []byte) ([]byte, error) {
	if !keyFits(RegisteredKey{Public: key.Public(), Algorithm: alg}) {
		return nil, fmt.Errorf("signing: %T key cannot sign %s", key.Public(), alg)
	}
	switch alg {
	case RSAPKCS1SHA256:
		d := sha256.Sum256(base)
		return key.Sign(rand.Reader, d[:], crypto.SHA256)
	case RSAPSSSHA512:
		d := sha512.Sum512(base)
		return key.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: pssSaltLength, Hash: crypto.SHA512})
	case ECDSAP256SHA256:
		d := sha256.Sum256(base)
		der, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
			return nil, errors.New("signing: ECDSA signer returned a malformed signature")
		}
		out := make([]byte, 64)
		rs.R.FillBytes(out[:32])
		rs.S.FillBytes(out[32:])
		return out, nil
	case Ed25519:
		return key.Sign(rand.Reader, base, crypto.Hash(0))
	}
	return nil, fmt.Errorf("signing: unsupported algorithm %q", alg)
}

// RequestSigner signs scheme B requests as a merchant client does. Key, KeyID
// and Algorithm (the algorithm the key is registered with) are required; Label
// defaults to DefaultLabel, Now to time.Now and Rand (the nonce source) to
// crypto/rand.Reader.
type RequestSigner struct {
	Key       crypto.Signer
	KeyID     string
	Algorithm Algorithm
	Label     string
	Now       func() time.Time
	Rand      io.Reader
}

// Sign signs r (Merchant is ignored) covering @method, @target-uri,
// content-type when r has one, and content-digest when r has a body, with
// parameters created, nonce, keyid and alg. It returns the Signature-Input and
// Signature values and, for a body, the Content-Digest (sha-256) the signature
// covers; the caller sets them on the request, replacing any Content-Digest.
func (s *RequestSigner) Sign(r MessageRequest) (MessageHeaders, error) {
	rnd := s.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	nonce, err := NewNonce(rnd)
	if err != nil {
		return MessageHeaders{}, err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	covered := []sfItem{{bare: sfStr("@method")}, {bare: sfStr("@target-uri")}}
	h := cloneHeader(r.Header)
	if _, ok := headerLines(h, "content-type"); ok {
		covered = append(covered, sfItem{bare: sfStr("content-type")})
	}
	var out MessageHeaders
	if len(r.Body) > 0 {
		out.ContentDigest = ContentDigest(r.Body)
		setHeader(h, "Content-Digest", out.ContentDigest)
		covered = append(covered, sfItem{bare: sfStr("content-digest")})
	}
	params := sfParams{
		{key: "created", val: sfInt(now().Unix())},
		{key: "keyid", val: sfStr(s.KeyID)},
		{key: "nonce", val: sfStr(nonce)},
		{key: "alg", val: sfStr(string(s.Algorithm))},
	}
	r.Header = h
	return signMessage(message{req: &r}, s.Key, s.Algorithm, s.label(), covered, params, out)
}

func (s *RequestSigner) label() string {
	if s.Label == "" {
		return DefaultLabel
	}
	return s.Label
}

// signMessage builds the base for covered and params over m, signs it and
// fills out's signature fields.
func signMessage(m message, key crypto.Signer, alg Algorithm, label string, covered []sfItem, params sfParams, out MessageHeaders) (MessageHeaders, error) {
	input := sfMember{key: label, inner: true, list: covered, params: params}
	base, err := buildBase(m, input)
	if err != nil {
		return MessageHeaders{}, fmt.Errorf("signing: signature base: %w", err)
	}
	sig, err := signWith(key, alg, base)
	if err != nil {
		return MessageHeaders{}, fmt.Errorf("signing: sign: %w", err)
	}
	out.SignatureInput = string(appendSFDict(nil, sfDict{input}))
	out.Signature = string(appendSFDict(nil, sfDict{{key: label, item: sfItem{bare: sfByteSeq(sig)}}}))
	return out, nil
}

func cloneHeader(h map[string][]string) map[string][]string {
	c := make(map[string][]string, len(h)+1)
	for k, v := range h {
		c[k] = v
	}
	return c
}

// setHeader replaces every field line named name (case-insensitively).
func setHeader(h map[string][]string, name, value string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
	h[name] = []string{value}
}
