package signing

import (
	"errors"
	"strings"
	"testing"
)

func TestContentDigest(t *testing.T) {
	// printf '' | openssl dgst -sha256 -binary | base64
	if got := ContentDigest(nil); got != "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:" {
		t.Fatalf("ContentDigest(empty) = %s", got)
	}
	// RFC 9530 §2: {"hello": "world"}
	body := []byte(`{"hello": "world"}`)
	if got := ContentDigest(body); got != "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:" {
		t.Fatalf("ContentDigest = %s", got)
	}
	sha512 := "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
	tests := []struct {
		name  string
		lines []string
		want  error  // nil, ErrBadDigest or ErrMalformed
		hint  string // substring of the error
	}{
		{"sha-256", []string{ContentDigest(body)}, nil, ""},
		{"sha-512 (RFC 9421 B.2)", []string{sha512}, nil, ""},
		{"both, two lines", []string{ContentDigest(body), sha512}, nil, ""},
		{"unknown algorithm ignored", []string{"md5=:AAAA:, " + sha512}, nil, ""},
		{"absent", nil, ErrBadDigest, "no Content-Digest field"},
		{"wrong", []string{ContentDigest([]byte("{}"))}, ErrBadDigest, "the body is the likely cause"},
		{"one of two wrong", []string{ContentDigest([]byte("{}")), sha512}, ErrBadDigest, "sha-256 is not the SHA-256"},
		{"truncated digest", []string{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9D:"}, ErrBadDigest, "likely cause"},
		{"only unknown", []string{"sha-1=:AAAA:"}, ErrBadDigest, "neither sha-256 nor sha-512"},
		{"not a byte sequence", []string{`sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="`}, ErrBadDigest, "must be a byte sequence"},
		{"token instead of bytes", []string{"sha-256=X48E"}, ErrBadDigest, "must be a byte sequence"},
		{"malformed", []string{"sha-256=:X48E"}, ErrMalformed, "at byte 8: byte sequence is not closed"},
		{"duplicate algorithm", []string{ContentDigest(body), ContentDigest(body)}, ErrMalformed, "occurs twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyContentDigest(tt.lines, body)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.hint) {
				t.Fatalf("VerifyContentDigest = %v, want %v containing %q", err, tt.want, tt.hint)
			}
		})
	}
}
