package signing

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/quillpay/quill/merchant"
)

// MaxAuthorizationLen is the longest Authorization header ParseAuthorization
// reads. A scheme A header with a 4096-bit signature is under 900 bytes.
const MaxAuthorizationLen = 4096

// Limits on scheme A credential values, enforced by ParseAuthorization and
// SignRequest.
const (
	MaxMerchantLen  = merchant.MaxIDLen // mchid
	MaxNonceLen     = 64                // nonce_str (WeChat Pay SDKs send 32)
	MaxSerialLen    = 128               // serial_no (WeChat Pay certificate serials are 40 hex digits)
	MaxTimestampLen = 18                // timestamp digits; 18 always fits an int64
	MaxSignatureLen = 1024              // signature (base64 of a 4096-bit RSA signature is 684)
)

// Credentials are the five fields of a scheme A Authorization header. They are
// syntactically valid but not yet verified.
type Credentials struct {
	Merchant  string // mchid
	Nonce     string // nonce_str
	Timestamp string // timestamp, decimal Unix seconds as sent
	Serial    string // serial_no, the merchant's key id
	Signature string // signature, base64 as sent
}

// The header's fields, in the order the official WeChat Pay Go SDK writes them.
const (
	fieldMerchant = iota
	fieldNonce
	fieldSignature
	fieldTimestamp
	fieldSerial
	numFields
)

var fieldNames = [numFields]string{"mchid", "nonce_str", "signature", "timestamp", "serial_no"}

// malformedError is a parse failure. Its detail never quotes a received value,
// so it can be shown to the client as is.
type malformedError struct{ detail string }

func (e *malformedError) Error() string { return ErrMalformed.Error() + ": " + e.detail }
func (e *malformedError) Unwrap() error { return ErrMalformed }

func malformed(format string, args ...any) error {
	return &malformedError{detail: fmt.Sprintf(format, args...)}
}

// ParseAuthorization parses a scheme A Authorization header value:
//
//	WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"
//
// The scheme token is matched case-insensitively (RFC 9110 §11.1) and followed by
// one or more spaces. The five fields may come in any order, each exactly once,
// as name="value"; spaces or tabs may surround the commas. Field names are
// lower case. Unknown fields are rejected rather than ignored, so that every byte
// of an accepted header is accounted for in the stored evidence.
//
// Values are 1 or more visible ASCII characters (0x21–0x7E) other than '"' and
// '\' (quoted-pair escapes are not supported; no WeChat Pay value needs them).
// In addition: mchid is a merchant id (merchant.ParseID); nonce_str is
// at most MaxNonceLen; timestamp is 1 to MaxTimestampLen decimal digits;
// serial_no is at most MaxSerialLen; signature is at most MaxSignatureLen. Its
// base64 is checked by the verifier, not here.
//
// Every error wraps ErrMalformed and says which field or position is at fault;
// error text never contains a received value, so it is safe to show the client.
// On success the returned strings are substrings of h.
func ParseAuthorization(h string) (Credentials, error) {
	var c Credentials
	if len(h) > MaxAuthorizationLen {
		return c, malformed("header is longer than %d bytes", MaxAuthorizationLen)
	}
	sp := strings.IndexByte(h, ' ')
	if sp < 0 || !strings.EqualFold(h[:sp], SchemeWeChatPay) {
		return c, malformed("scheme must be %s followed by a space", SchemeWeChatPay)
	}
	s := strings.TrimLeft(h[sp:], " ")
	var vals [numFields]string
	var seen [numFields]bool
	for {
		pos := len(h) - len(s)
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return c, malformed("expected name=\"value\" at byte %d", pos)
		}
		name := s[:eq]
		f := fieldIndex(name)
		if f < 0 {
			if isFieldToken(name) {
				return c, malformed("unknown field %q", name)
			}
			return c, malformed("malformed field name at byte %d", pos)
		}
		if seen[f] {
			return c, malformed("duplicate field %s", name)
		}
		s = s[eq+1:]
		if s == "" || s[0] != '"' {
			return c, malformed("%s value must be double-quoted", name)
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return c, malformed("%s value has no closing quote", name)
		}
		v := s[1 : 1+end]
		if err := checkValue(f, v); err != nil {
			return c, err
		}
		vals[f], seen[f] = v, true
		s = trimOWS(s[end+2:])
		if s == "" {
			break
		}
		if s[0] != ',' {
			return c, malformed("unexpected character after %s value (embedded quote or missing comma)", name)
		}
		s = trimOWS(s[1:])
		if s == "" {
			return c, malformed("trailing comma")
		}
	}
	var missing []string
	for f, ok := range seen {
		if !ok {
			missing = append(missing, fieldNames[f])
		}
	}
	if missing != nil {
		return c, malformed("missing %s", strings.Join(missing, ", "))
	}
	c.Merchant = vals[fieldMerchant]
	c.Nonce = vals[fieldNonce]
	c.Timestamp = vals[fieldTimestamp]
	c.Serial = vals[fieldSerial]
	c.Signature = vals[fieldSignature]
	return c, nil
}

func fieldIndex(name string) int {
	for i, n := range fieldNames {
		if n == name {
			return i
		}
	}
	return -1
}

// isFieldToken reports whether name is short and plain enough to echo in an
// error (it cannot be a slice of a signature or other value).
func isFieldToken(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

var maxLens = [numFields]int{
	fieldMerchant:  MaxMerchantLen,
	fieldNonce:     MaxNonceLen,
	fieldSignature: MaxSignatureLen,
	fieldTimestamp: MaxTimestampLen,
	fieldSerial:    MaxSerialLen,
}

// checkValue applies the value rules documented on ParseAuthorization.
func checkValue(f int, v string) error {
	name := fieldNames[f]
	if v == "" {
		return malformed("%s is empty", name)
	}
	if len(v) > maxLens[f] {
		return malformed("%s is longer than %d characters", name, maxLens[f])
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return malformed("%s contains a control character", name)
		case c == ' ':
			return malformed("%s contains a space", name)
		case c >= 0x80:
			return malformed("%s contains a non-ASCII byte", name)
		case c == '\\':
			return malformed("%s contains a backslash", name)
		case c == '"':
			return malformed("%s contains a double quote", name)
		}
		switch f {
		case fieldTimestamp:
			if c < '0' || c > '9' {
				return malformed("timestamp must be decimal Unix seconds")
			}
		}
	}
	if f == fieldMerchant && !merchant.ValidID(v) {
		return malformed("mchid may contain only letters, digits, '_' and '-', starting with a letter or digit")
	}
	return nil
}

// Header returns c as a scheme A Authorization header value, fields in the order
// the official WeChat Pay Go SDK writes them. It does not validate c.
func (c Credentials) Header() string {
	var b strings.Builder
	b.Grow(len(SchemeWeChatPay) + 60 + len(c.Merchant) + len(c.Nonce) + len(c.Signature) + len(c.Timestamp) + len(c.Serial))
	b.WriteString(SchemeWeChatPay)
	b.WriteString(` mchid="`)
	b.WriteString(c.Merchant)
	b.WriteString(`",nonce_str="`)
	b.WriteString(c.Nonce)
	b.WriteString(`",signature="`)
	b.WriteString(c.Signature)
	b.WriteString(`",timestamp="`)
	b.WriteString(c.Timestamp)
	b.WriteString(`",serial_no="`)
	b.WriteString(c.Serial)
	b.WriteString(`"`)
	return b.String()
}

// String describes c for logs with the signature redacted; use Header for the
// wire form.
func (c Credentials) String() string {
	return fmt.Sprintf("mchid=%q nonce_str=%q timestamp=%q serial_no=%q signature=[redacted]",
		c.Merchant, c.Nonce, c.Timestamp, c.Serial)
}

// StringToSign returns the scheme A string to sign for a request:
//
//	METHOD\nTARGET\nTIMESTAMP\nNONCE\nBODY\n
//
// target is the raw request-target (path and query exactly as sent) and body the
// raw body bytes. For a body-less request the body line is empty, so the string
// ends "NONCE\n\n".
func StringToSign(method, target, timestamp, nonce string, body []byte) []byte {
	return appendStringToSign(make([]byte, 0, stringToSignLen(method, target, timestamp, nonce, body)),
		method, target, timestamp, nonce, body)
}

func stringToSignLen(method, target, timestamp, nonce string, body []byte) int {
	return len(method) + len(target) + len(timestamp) + len(nonce) + len(body) + 5
}

func appendStringToSign(dst []byte, method, target, timestamp, nonce string, body []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, '\n')
	dst = append(dst, target...)
	dst = append(dst, '\n')
	dst = append(dst, timestamp...)
	dst = append(dst, '\n')
	dst = append(dst, nonce...)
	dst = append(dst, '\n')
	dst = append(dst, body...)
	return append(dst, '\n')
}

// SignRequest signs a request with scheme A and returns the Authorization header
// value. key must be an RSA key (RSASSA-PKCS1-v1_5 with SHA-256; a crypto.Signer
// backed by an HSM or Vault works as long as crypto.SHA256 options select
// PKCS #1 v1.5, as they do for *rsa.PrivateKey). target is the path and query
// exactly as they will be sent, body the exact bytes that will be sent, ts the
// request time (sent as Unix seconds) and nonce a fresh value per request (see
// NewNonce). merchant, serial and nonce must satisfy the rules of
// ParseAuthorization, so the returned header always parses.
func SignRequest(key crypto.Signer, merchant, serial, method, target string, body []byte, ts time.Time, nonce string) (string, error) {
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return "", errors.New("signing: scheme A requires an RSA key")
	}
	c := Credentials{
		Merchant:  merchant,
		Nonce:     nonce,
		Timestamp: strconv.FormatInt(ts.Unix(), 10),
		Serial:    serial,
	}
	for f, v := range [...]string{fieldMerchant: c.Merchant, fieldNonce: c.Nonce, fieldTimestamp: c.Timestamp, fieldSerial: c.Serial, fieldSignature: "x"} {
		if err := checkValue(f, v); err != nil {
			return "", fmt.Errorf("signing: cannot sign: %w", err)
		}
	}
	if ts.Unix() < 0 {
		return "", errors.New("signing: cannot sign: timestamp before 1970")
	}
	digest := sha256.Sum256(StringToSign(method, target, c.Timestamp, c.Nonce, body))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signing: sign request: %w", err)
	}
	c.Signature = base64.StdEncoding.EncodeToString(sig)
	return c.Header(), nil
}

// NewNonce returns 32 upper-case hexadecimal characters (128 bits) read from r,
// the shape WeChat Pay SDKs use for nonce_str and Wechatpay-Nonce. Pass
// crypto/rand.Reader outside tests.
func NewNonce(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("signing: nonce: %w", err)
	}
	var out [32]byte
	hex.Encode(out[:], b[:])
	for i, c := range out {
		if 'a' <= c && c <= 'f' {
			out[i] = c - 'a' + 'A'
		}
	}
	return string(out[:]), nil
}
