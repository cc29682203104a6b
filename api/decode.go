package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/quillpay/quill/policy"
)

// decodeStrict decodes body, a JSON object whose members are all strings, into
// dst (a pointer to a struct of string fields with json tags). It is strict: the
// top level must be one object; duplicate keys, unknown keys, and non-string
// values are field errors, all listed at once in a *policy.ValidationError; a
// body that is not a JSON object at all is errMalformedJSON.
//
// Decoding member by member (instead of json.Unmarshal into the struct) is what
// lets a 422 name every bad field, and what catches duplicate keys, which
// encoding/json silently resolves to the last one. It is also what lets a
// string be refused when encoding/json would silently change it: invalid UTF-8
// and lone UTF-16 surrogate escapes become U+FFFD there, so the value recorded
// would differ from what another parser reads from the same signed bytes.
func decodeStrict(body []byte, dst any) error {
	fields := stringFields(reflect.TypeOf(dst).Elem())
	target := reflect.ValueOf(dst).Elem()

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errMalformedJSON
	}
	var bad []policy.FieldError
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errMalformedJSON
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return errMalformedJSON
		}
		idx, known := fields[key]
		switch {
		case seen[key]:
			bad = append(bad, policy.FieldError{Field: key, Code: "duplicate", Message: "member appears more than once"})
			continue
		case !known:
			bad = append(bad, policy.FieldError{Field: key, Code: "unknown", Message: "unknown member"})
		}
		seen[key] = true
		if !known {
			continue
		}
		var s string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			bad = append(bad, policy.FieldError{Field: key, Code: "type", Message: "must be a JSON string"})
			continue
		}
		if !validText(raw) {
			bad = append(bad, policy.FieldError{Field: key, Code: "encoding",
				Message: "must be valid UTF-8 text; escapes must not be lone or reversed UTF-16 surrogates"})
			continue
		}
		target.Field(idx).SetString(s)
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return errMalformedJSON
	}
	// Only JSON whitespace may follow: the Decoder reads a stream of values
	// and would stop quietly at "}garbage", and the signed bytes, stored as
	// evidence, must be the one object Quill acted on.
	if len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) != 0 {
		return errMalformedJSON
	}
	if len(bad) > 0 {
		return &policy.ValidationError{Fields: bad}
	}
	return nil
}

// validText reports whether raw, a JSON string token with its quotes (as
// checked by encoding/json), denotes exactly the text a strict parser reads:
// raw bytes are valid UTF-8 (no encoded surrogates), and every \\u escape of a
// surrogate is a high one immediately followed by an escaped low one.
func validText(raw []byte) bool {
	s := raw[1 : len(raw)-1]
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\\':
			if s[i+1] != 'u' {
				i += 2
				continue
			}
			r := hex4(s[i+2:])
			i += 6
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return false // low surrogate without a high one before it
			case r >= 0xD800 && r <= 0xDBFF:
				if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
					return false
				}
				if lo := hex4(s[i+2:]); lo < 0xDC00 || lo > 0xDFFF {
					return false
				}
				i += 6
			}
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				return false
			}
			i += n
		}
	}
	return true
}

// hex4 decodes the four hex digits at the start of b; encoding/json has
// already checked that they are there and are hex.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

var fieldCache sync.Map // reflect.Type → map[string]int

// stringFields maps json names to field indexes of t's string fields.
func stringFields(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() != reflect.String {
			panic(fmt.Sprintf("api: decodeStrict: field %s is not a string", f.Name))
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}

// requireJSON checks the Content-Type of a request with a body.
func requireJSON(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return errUnsupportedMedia
	}
	return nil
}
