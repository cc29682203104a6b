package signing

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// maxDigestMembers bounds the members of a Content-Digest field Quill reads.
const maxDigestMembers = 8

// ContentDigest returns the RFC 9530 Content-Digest field value for body with
// SHA-256, e.g. "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:".
func ContentDigest(body []byte) string {
	d := sha256.Sum256(body)
	return string(appendSFDict(nil, sfDict{{key: "sha-256", item: sfItem{bare: sfByteSeq(d[:])}}}))
}

// ContentDigestOf returns the Content-Digest field value (sha-256) of a body
// whose SHA-256 is sum: ContentDigest for a body written in pieces.
func ContentDigestOf(sum [32]byte) string {
	return string(appendSFDict(nil, sfDict{{key: "sha-256", item: sfItem{bare: sfByteSeq(sum[:])}}}))
}

// errDigest is a Content-Digest that does not match the body, or that names no
// algorithm Quill computes; hint says which.
type errDigest struct{ hint string }

func (e *errDigest) Error() string { return e.hint }

// checkContentDigest recomputes the digests named in the Content-Digest field
// lines over the raw body and compares each in constant time. sha-256 and
// sha-512 are computed; other algorithms are ignored (RFC 9530 §2), but at least
// one of the two must be present. It returns *errDigest for a mismatch or a
// missing or unusable field, with a hint that points at the body, and an
// *sfError for a field that does not parse.
func checkContentDigest(lines []string, body []byte) error { return checkDigestOf(lines, body, nil) }

// checkDigestOf is checkContentDigest for a body held in body or, when
// sum256 is not nil, known only by its SHA-256 (a streamed body): then only
// the sha-256 member can be checked, and it must be there.
func checkDigestOf(lines []string, body []byte, sum256 []byte) error {
	if len(lines) == 0 {
		return &errDigest{"the request has a body but no Content-Digest field; send Content-Digest: sha-256=:<base64 SHA-256 of the exact body bytes>: and cover \"content-digest\" in the signature"}
	}
	d, err := parseSFDictionary(strings.Join(lines, ", "))
	if err != nil {
		return err
	}
	if len(d) > maxDigestMembers {
		return &errDigest{fmt.Sprintf("Content-Digest has %d members; at most %d are read", len(d), maxDigestMembers)}
	}
	checked := 0
	for _, m := range d {
		var sum []byte
		var name string
		switch m.key {
		case "sha-256":
			s := sha256.Sum256(body)
			sum, name = s[:], "SHA-256"
			if sum256 != nil {
				sum = sum256
			}
		case "sha-512":
			if sum256 != nil {
				continue
			}
			s := sha512.Sum512(body)
			sum, name = s[:], "SHA-512"
		default:
			continue
		}
		if m.inner || m.item.bare.kind != sfBytes {
			return &errDigest{fmt.Sprintf("Content-Digest %s must be a byte sequence (:base64:)", m.key)}
		}
		if subtle.ConstantTimeCompare(sum, m.item.bare.b) != 1 {
			return &errDigest{fmt.Sprintf("Content-Digest %s is not the %s of the body received (%d bytes): the body is the likely cause; digest and sign the exact bytes you send, after any re-serialization or compression", m.key, name, len(body))}
		}
		checked++
	}
	if checked == 0 && sum256 != nil {
		return &errDigest{"Content-Digest of a streamed body has no sha-256"}
	}
	if checked == 0 {
		return &errDigest{"Content-Digest has neither sha-256 nor sha-512; send one of them"}
	}
	return nil
}

// VerifyContentDigest checks Content-Digest field lines (as received) against
// body, as checkContentDigest does, for a client checking a response. It
// returns an error wrapping ErrBadDigest or ErrMalformed.
func VerifyContentDigest(lines []string, body []byte) error {
	err := checkContentDigest(lines, body)
	var se *sfError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return fmt.Errorf("%w: Content-Digest: %v", ErrMalformed, err)
	}
	return fmt.Errorf("%w: %v", ErrBadDigest, err)
}
