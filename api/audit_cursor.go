package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// errCursorInvalid is a cursor that was not sealed by this server (or by one
// sharing its cursor key), was altered, or belongs to another kind of report.
var errCursorInvalid = errors.New("api: cursor invalid")

// minCursorKey is the shortest HMAC key NewAuditHandler accepts.
const minCursorKey = 32

// cursorSealer makes opaque, tamper-proof cursors: the position as JSON,
// base64url, then a dot and HMAC-SHA-256 over a domain tag, the cursor kind
// and the payload. A cursor carries balances the API later shows as Quill's,
// so it must never be accepted altered.
type cursorSealer struct{ key []byte }

func (c cursorSealer) mac(kind string, payload []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("quill.audit.cursor.v1\x00"))
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)
}

func (c cursorSealer) seal(kind string, v any) string {
	payload, err := json.Marshal(v)
	if err != nil {
		panic(err) // positions are plain structs
	}
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(c.mac(kind, payload))
}

func (c cursorSealer) open(kind, cursor string, v any) error {
	p, m, ok := strings.Cut(cursor, ".")
	if !ok || len(cursor) > 2048 {
		return errCursorInvalid
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sum, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || !hmac.Equal(sum, c.mac(kind, payload)) {
		return errCursorInvalid
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return errCursorInvalid
	}
	return nil
}
