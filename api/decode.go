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
// encoding/json silently resolves to the last one.
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
		target.Field(idx).SetString(s)
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return errMalformedJSON
	}
	if _, err := dec.Token(); err == nil { // anything after the object
		return errMalformedJSON
	}
	if len(bad) > 0 {
		return &policy.ValidationError{Fields: bad}
	}
	return nil
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
