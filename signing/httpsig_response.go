package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MessageResponseSigner signs responses to scheme B requests with RFC 9421,
// using Quill's Ed25519 (or ECDSA P-256) platform key: fifty times cheaper than
// scheme A's RSA. Keys is required; Now defaults to time.Now and Label to
// DefaultLabel. It is safe for concurrent use if Keys is.
type MessageResponseSigner struct {
	Keys  PlatformKeys
	Now   func() time.Time
	Label string
}

// Sign signs resp as the answer to the verified request req; see Prepare.
func (s *MessageResponseSigner) Sign(ctx context.Context, resp MessageResponse, req Verified) (MessageHeaders, error) {
	sign, err := s.Prepare(ctx)
	if err != nil {
		return MessageHeaders{}, err
	}
	return sign(resp, req)
}

// Prepare fetches the current platform key and returns the function that signs
// one response with it, so a missing or unusable key refuses the request before
// any work is done. The signature covers
//
//	("@status" "content-type" "content-digest" "signature";key="<label>";req)
//
// (content-type only when resp has one) with parameters created, keyid (the
// platform key id) and alg; the last component binds the response to the
// request's own signature, so it cannot be replayed as the answer to another
// request. The function returns Signature-Input, Signature and the
// Content-Digest (sha-256 of resp.Body) it covers, to be set on the response.
// req must be a scheme B Verified (Scheme SchemeHTTPSig); an error is
// returned otherwise. For a refusal of a request whose signature was not
// verified, pass BindingOf(the request's header): with Label empty and
// Signature set the response covers the request's whole raw Signature field
// ("signature";req), and with both empty it binds to no request at all.
func (s *MessageResponseSigner) Prepare(ctx context.Context) (func(resp MessageResponse, req Verified) (MessageHeaders, error), error) {
	keyID, key, err := s.Keys.SigningKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing: platform key: %w", err)
	}
	var alg Algorithm
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		alg = Ed25519
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("signing: platform ECDSA key must be P-256")
		}
		alg = ECDSAP256SHA256
	default:
		return nil, fmt.Errorf("signing: scheme B platform key must be Ed25519 or ECDSA P-256, not %T", pub)
	}
	label := s.Label
	if label == "" {
		label = DefaultLabel
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return func(resp MessageResponse, req Verified) (MessageHeaders, error) {
		return signResponse(resp, req, key, keyID, alg, label, now())
	}, nil
}

func signResponse(resp MessageResponse, req Verified, key crypto.Signer, keyID string, alg Algorithm, label string, created time.Time) (MessageHeaders, error) {
	if req.Scheme != SchemeHTTPSig {
		return MessageHeaders{}, errors.New("signing: a scheme B response answers a scheme B request")
	}
	h := cloneHeader(resp.Header)
	covered := []sfItem{{bare: sfStr("@status")}}
	if _, ok := headerLines(h, "content-type"); ok {
		covered = append(covered, sfItem{bare: sfStr("content-type")})
	}
	out := MessageHeaders{ContentDigest: ContentDigest(resp.Body)}
	if resp.BodySHA256 != nil {
		if len(resp.BodySHA256) != sha256.Size {
			return MessageHeaders{}, errors.New("signing: BodySHA256 is not a SHA-256")
		}
		out.ContentDigest = ContentDigestOf([sha256.Size]byte(resp.BodySHA256))
	}
	setHeader(h, "Content-Digest", out.ContentDigest)
	covered = append(covered, sfItem{bare: sfStr("content-digest")})
	switch {
	case req.Label != "" && req.Signature != "":
		covered = append(covered, sfItem{bare: sfStr("signature"), params: sfParams{{key: "key", val: sfStr(req.Label)}, {key: "req", val: sfTrue()}}})
	case req.Signature != "": // the raw field of a request whose Signature does not parse
		covered = append(covered, sfItem{bare: sfStr("signature"), params: sfParams{{key: "req", val: sfTrue()}}})
	}
	params := sfParams{
		{key: "created", val: sfInt(created.Unix())},
		{key: "keyid", val: sfStr(keyID)},
		{key: "alg", val: sfStr(string(alg))},
	}
	resp.Header = h
	r := &MessageRequest{Header: map[string][]string{"Signature": {req.Signature}}}
	return signMessage(message{req: r, resp: &resp}, key, alg, label, covered, params, out)
}

// BindingOf is what a scheme B response binds to when the request it answers
// was refused before its signature verified (a Verified with Scheme,
// Label and Signature only, for MessageResponseSigner):
//
//   - the Signature field parses as a dictionary with a byte-sequence member:
//     that member ("signature";key="<label>";req), preferring the first label
//     of Signature-Input that has one. Clients verify such a refusal like any
//     other response;
//   - the Signature field is present but does not parse (or has no byte
//     sequence): the whole field as received ("signature";req, RFC 9421 §2.1
//     without key). It still binds the refusal to the exact bytes sent, but
//     Quill's client libraries, which require the key parameter, report it as
//     unverified; they never send such a field;
//   - no Signature field: nothing to bind to; the refusal is signed over
//     @status, content-type and content-digest only, proving it came from
//     Quill but not which request it answers.
func BindingOf(h map[string][]string) Verified {
	v := Verified{Scheme: SchemeHTTPSig}
	lines, ok := headerLines(h, "signature")
	if !ok {
		return v
	}
	v.Signature = joinLines(lines)
	sigs, err := parseSFDictionary(v.Signature)
	if err != nil {
		return v
	}
	usable := func(m sfMember) bool { return !m.inner && m.item.bare.kind == sfBytes }
	pick := func(m sfMember) Verified {
		return Verified{Scheme: SchemeHTTPSig, Label: m.key, Signature: string(appendSFDict(nil, sfDict{m}))}
	}
	if in, ok := headerLines(h, "signature-input"); ok {
		if inputs, err := parseSFDictionary(joinLines(in)); err == nil {
			for _, i := range inputs {
				if m, ok := sigs.get(i.key); ok && usable(m) {
					return pick(m)
				}
			}
		}
	}
	for _, m := range sigs {
		if usable(m) {
			return pick(m)
		}
	}
	return v
}

// ResponseVerified describes a response whose scheme B signature verified.
type ResponseVerified struct {
	Label   string
	KeyID   string
	Created time.Time
}

// VerifyMessageResponse checks a scheme B response signature, as a client does:
// resp is the response as received, req the request exactly as the client sent
// it (with its Signature field), and key looks up a platform key by keyid,
// returning an error wrapping ErrUnknownKey for an id it does not know. Exactly
// one Signature-Input member must name a known key; it must cover @status,
// content-digest, content-type when the response has one, and the request's
// signature with the req flag; Content-Digest must match resp.Body. Errors wrap
// ErrMalformed, ErrUnknownKey, ErrAlgorithm, ErrCoverage, ErrBadDigest or
// ErrBadSignature; an error of key not wrapping ErrUnknownKey is returned
// wrapped. Freshness of Created is left to the caller.
func VerifyMessageResponse(resp MessageResponse, req MessageRequest, key func(keyID string) (RegisteredKey, error)) (ResponseVerified, error) {
	fail := func(f *Failure) (ResponseVerified, error) { return ResponseVerified{}, f }
	inputs, sigs, f := parseSignatureFields(resp.Header)
	if f != nil {
		return fail(f)
	}
	var (
		found []string
		mem   sfMember
		k     RegisteredKey
	)
	for _, m := range inputs {
		kid, ok := m.params.get("keyid")
		if !ok || kid.kind != sfString {
			continue
		}
		got, err := key(kid.s)
		if err != nil {
			if errors.Is(err, ErrUnknownKey) {
				continue
			}
			return ResponseVerified{}, fmt.Errorf("signing: platform key %q: %w", kid.s, err)
		}
		found, mem, k = append(found, m.key), m, got
	}
	switch len(found) {
	case 0:
		return fail(&Failure{Err: ErrUnknownKey, Hint: "no response signature names a known platform key"})
	case 1:
	default:
		return fail(&Failure{Err: ErrMalformed, Hint: "more than one response signature names a platform key"})
	}
	label := found[0]
	if a, ok := mem.params.get("alg"); ok && (a.kind != sfString || Algorithm(a.s) != k.Algorithm) {
		return fail(&Failure{Err: ErrAlgorithm, Hint: fmt.Sprintf("alg disagrees with the platform key's algorithm %q", k.Algorithm)})
	}
	if !keyFits(k) {
		return fail(&Failure{Err: ErrUnknownKey, Hint: fmt.Sprintf("platform key is not a usable %s key", k.Algorithm)})
	}
	created, ok := mem.params.get("created")
	if !ok || created.kind != sfInteger {
		return fail(&Failure{Err: ErrMalformed, Hint: "response signature has no integer created parameter"})
	}
	if f := checkResponseCoverage(mem, resp, req); f != nil {
		return fail(f)
	}
	base, err := buildBase(message{req: &req, resp: &resp}, mem)
	if err != nil {
		var be *baseError
		errors.As(err, &be)
		return fail(&Failure{Err: be.err, Hint: be.hint})
	}
	cd, _ := headerLines(resp.Header, "content-digest")
	if err := checkDigestOf(cd, resp.Body, resp.BodySHA256); err != nil {
		var se *sfError
		if errors.As(err, &se) {
			return fail(&Failure{Err: ErrMalformed, Hint: "Content-Digest " + se.Error()})
		}
		return fail(&Failure{Err: ErrBadDigest, Hint: err.Error()})
	}
	sig, ok := sigs.get(label)
	if !ok || sig.inner || sig.item.bare.kind != sfBytes {
		return fail(&Failure{Err: ErrMalformed, Hint: fmt.Sprintf("Signature has no byte sequence under label %q", label)})
	}
	if !verifyWith(k, base, sig.item.bare.b) {
		return fail(&Failure{Err: ErrBadSignature, Hint: "response signature does not verify", Expected: truncUTF8(string(base), maxExpectedBase)})
	}
	kid, _ := mem.params.get("keyid")
	return ResponseVerified{Label: label, KeyID: kid.s, Created: time.Unix(created.i, 0)}, nil
}

func checkResponseCoverage(input sfMember, resp MessageResponse, req MessageRequest) *Failure {
	reqSigs := sfDict{}
	if lines, ok := headerLines(req.Header, "signature"); ok {
		reqSigs, _ = parseSFDictionary(strings.Join(lines, ", "))
	}
	var status, digest, ctype, bound bool
	for _, id := range input.list {
		if id.bare.kind != sfString {
			continue
		}
		switch {
		case len(id.params) == 0:
			status = status || id.bare.s == "@status"
			digest = digest || id.bare.s == "content-digest"
			ctype = ctype || id.bare.s == "content-type"
		case id.bare.s == "signature" && id.params.has("req") && len(id.params) == 2:
			if k, ok := id.params.get("key"); ok && k.kind == sfString {
				_, inReq := reqSigs.get(k.s)
				bound = bound || inReq
			}
		}
	}
	_, hasType := headerLines(resp.Header, "content-type")
	if !status || !digest || !bound || (hasType && !ctype) {
		return &Failure{Err: ErrCoverage,
			Hint: "the response signature must cover \"@status\", \"content-digest\", \"content-type\" (when present) and the request's signature (\"signature\";key=…;req)"}
	}
	return nil
}
