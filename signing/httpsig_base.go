package signing

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// This file builds RFC 9421 signature bases (§2.5) from messages as received:
// the raw request-target and raw field values, never re-encoded, except where
// the RFC itself normalizes (@authority, @query-param, the sf parameter).

// maxCovered bounds the covered components of one signature.
const maxCovered = 32

// sfDictFields are the fields whose structured type (Dictionary) Quill knows,
// so that the sf parameter can re-serialize them. example-dict is RFC 9421's own
// example field.
var sfDictFields = map[string]bool{
	"signature": true, "signature-input": true, "accept-signature": true,
	"content-digest": true, "repr-digest": true, "want-content-digest": true, "want-repr-digest": true,
	"example-dict": true,
}

// baseError is a signature base that cannot be built: err is ErrMalformed (the
// covered components are not valid) or ErrCoverage (they name something the
// message does not have).
type baseError struct {
	err  error
	hint string
}

func (e *baseError) Error() string { return e.hint }

func malformedBase(format string, args ...any) error {
	return &baseError{err: ErrMalformed, hint: fmt.Sprintf(format, args...)}
}

func missingComponent(format string, args ...any) error {
	return &baseError{err: ErrCoverage, hint: fmt.Sprintf(format, args...)}
}

// message is the message a signature base is built from: a request, or a
// response with the request it answers (for components with the req flag).
type message struct {
	req  *MessageRequest
	resp *MessageResponse
}

// buildBase builds the signature base for the covered components and signature
// parameters of one Signature-Input member (an inner list).
func buildBase(m message, input sfMember) ([]byte, error) {
	if !input.inner {
		return nil, malformedBase("the Signature-Input member must be an inner list of covered components, e.g. (\"@method\" \"@target-uri\")")
	}
	if len(input.list) > maxCovered {
		return nil, malformedBase("%d covered components; at most %d are accepted", len(input.list), maxCovered)
	}
	b := make([]byte, 0, 512)
	seen := make([]string, 0, len(input.list))
	for _, id := range input.list {
		start := len(b)
		b = appendSFItem(b, id)
		ident := string(b[start:])
		for _, s := range seen {
			if s == ident {
				return nil, malformedBase("component %s is covered twice", ident)
			}
		}
		seen = append(seen, ident)
		values, err := m.component(id, ident)
		if err != nil {
			return nil, err
		}
		for i, v := range values {
			if strings.ContainsAny(v, "\r\n") {
				return nil, malformedBase("component %s has a value with a line break", ident)
			}
			if i > 0 {
				b = append(b, ident...)
			}
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, '\n')
		}
	}
	b = append(b, `"@signature-params": `...)
	return appendSFMember(b, sfMember{inner: true, list: input.list, params: input.params}), nil
}

// component returns the value(s) of one covered component; ident is its
// serialization, for messages. Only @query-param can have several values
// (one per occurrence of the parameter), each its own base line.
func (m message) component(id sfItem, ident string) ([]string, error) {
	if id.bare.kind != sfString {
		return nil, malformedBase("component identifiers are strings (e.g. \"@method\"), found a %s", id.bare.kind)
	}
	name := id.bare.s
	if name == "" {
		return nil, malformedBase("empty component identifier")
	}
	if name == "@signature-params" {
		return nil, malformedBase("@signature-params cannot be a covered component")
	}
	req, resp := m.req, m.resp
	if id.params.has("req") {
		if resp == nil {
			return nil, malformedBase("component %s has the req flag, which only responses may use", ident)
		}
		if v, _ := id.params.get("req"); v.kind != sfBoolean || !v.t {
			return nil, malformedBase("component %s: req must be a true flag", ident)
		}
		resp = nil // the request the response answers
	}
	if name[0] == '@' {
		return derived(name, id, ident, req, resp)
	}
	var header map[string][]string
	if resp != nil {
		header = resp.Header
	} else if req != nil {
		header = req.Header
	}
	return fieldComponent(name, id, ident, header)
}

// checkParams refuses parameters other than allowed on a component.
func checkParams(id sfItem, ident string, allowed ...string) error {
	for _, p := range id.params {
		ok := false
		for _, a := range allowed {
			ok = ok || p.key == a
		}
		if !ok {
			return malformedBase("component %s has parameter %q, which Quill does not support on it", ident, p.key)
		}
	}
	return nil
}

func derived(name string, id sfItem, ident string, req *MessageRequest, resp *MessageResponse) ([]string, error) {
	if name == "@status" {
		if err := checkParams(id, ident, "req"); err != nil {
			return nil, err
		}
		if resp == nil {
			return nil, malformedBase("@status is a response component; a request cannot cover it")
		}
		if resp.Status < 100 || resp.Status > 999 {
			return nil, missingComponent("response status %d is not a three-digit code", resp.Status)
		}
		return []string{fmt.Sprintf("%03d", resp.Status)}, nil
	}
	switch name {
	case "@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query", "@query-param":
	default:
		return nil, malformedBase("unknown derived component %q", name)
	}
	if resp != nil {
		return nil, malformedBase("%s is a request component; a response covers it only with the req flag", name)
	}
	if req == nil {
		return nil, malformedBase("%s needs the request", name)
	}
	if name == "@query-param" {
		if err := checkParams(id, ident, "name", "req"); err != nil {
			return nil, err
		}
		n, ok := id.params.get("name")
		if !ok || n.kind != sfString {
			return nil, malformedBase("@query-param needs a name parameter that is a string, e.g. \"@query-param\";name=\"id\"")
		}
		_, query, _, err := splitTarget(req.Target)
		if err != nil {
			return nil, missingComponent("%s: %v", ident, err)
		}
		vals := queryParam(query, n.s)
		if len(vals) == 0 {
			return nil, missingComponent("covered query parameter %q is not in the request-target", n.s)
		}
		return vals, nil
	}
	if err := checkParams(id, ident, "req"); err != nil {
		return nil, err
	}
	switch name {
	case "@method":
		return []string{req.Method}, nil
	case "@scheme":
		return []string{strings.ToLower(req.Scheme)}, nil
	case "@authority":
		return []string{normAuthority(req.Scheme, req.Authority)}, nil
	case "@request-target":
		return []string{req.Target}, nil
	case "@target-uri":
		if isAbsoluteForm(req.Target) {
			return []string{req.Target}, nil
		}
		if req.Target == "*" {
			return nil, missingComponent("@target-uri of an asterisk-form request is not supported")
		}
		return []string{strings.ToLower(req.Scheme) + "://" + normAuthority(req.Scheme, req.Authority) + req.Target}, nil
	}
	path, query, _, err := splitTarget(req.Target)
	if err != nil {
		return nil, missingComponent("%s: %v", ident, err)
	}
	if name == "@path" {
		if path == "" {
			path = "/"
		}
		return []string{path}, nil
	}
	return []string{"?" + query}, nil // @query: "?" alone when absent
}

func fieldComponent(name string, id sfItem, ident string, header map[string][]string) ([]string, error) {
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isTChar(c) || (c >= 'A' && c <= 'Z') {
			return nil, malformedBase("field name %q in a component identifier must be a lowercase HTTP field name", name)
		}
	}
	if err := checkParams(id, ident, "sf", "key", "bs", "req"); err != nil {
		return nil, err
	}
	lines, ok := headerLines(header, name)
	if !ok {
		return nil, missingComponent("the signature covers field %q, which the message does not have", name)
	}
	_, sf := id.params.get("sf")
	key, hasKey := id.params.get("key")
	_, bs := id.params.get("bs")
	if bs && (sf || hasKey) {
		return nil, malformedBase("component %s: bs cannot be combined with sf or key", ident)
	}
	if bs {
		parts := make([]string, len(lines))
		for i, l := range lines {
			parts[i] = ":" + base64.StdEncoding.EncodeToString([]byte(trimField(l))) + ":"
		}
		return []string{strings.Join(parts, ", ")}, nil
	}
	joined := joinLines(lines)
	if !sf && !hasKey {
		return []string{joined}, nil
	}
	if !hasKey && !sfDictFields[name] {
		return nil, malformedBase("component %s: Quill does not know the structured type of %q, so it cannot use sf", ident, name)
	}
	d, err := parseSFDictionary(joined)
	if err != nil {
		return nil, malformedBase("component %s: field %q is not a valid dictionary: %v", ident, name, err)
	}
	if !hasKey {
		return []string{string(appendSFDict(nil, d))}, nil
	}
	if key.kind != sfString {
		return nil, malformedBase("component %s: key must be a string", ident)
	}
	mem, ok := d.get(key.s)
	if !ok {
		return nil, missingComponent("field %q has no member %q covered by %s", name, key.s, ident)
	}
	return []string{string(appendSFMember(nil, mem))}, nil
}

// headerLines returns the field lines named name (case-insensitively). Two map
// keys that differ only in case are merged in sorted key order so the result
// does not depend on map iteration.
func headerLines(h map[string][]string, name string) ([]string, bool) {
	var keys []string
	for k := range h {
		if strings.EqualFold(k, name) {
			keys = append(keys, k)
		}
	}
	switch len(keys) {
	case 0:
		return nil, false
	case 1:
		return h[keys[0]], true
	}
	slices.Sort(keys)
	var lines []string
	for _, k := range keys {
		lines = append(lines, h[k]...)
	}
	return lines, true
}

func trimField(s string) string { return strings.Trim(s, " \t") }

// joinLines is RFC 9421 §2.1's field value: each line trimmed, joined by ", ".
func joinLines(lines []string) string {
	if len(lines) == 1 {
		return trimField(lines[0])
	}
	parts := make([]string, len(lines))
	for i, l := range lines {
		parts[i] = trimField(l)
	}
	return strings.Join(parts, ", ")
}

// normAuthority lowercases the authority and drops the scheme's default port
// (RFC 9421 §2.2.3).
func normAuthority(scheme, authority string) string {
	a := strings.ToLower(authority)
	switch strings.ToLower(scheme) {
	case "https":
		a = strings.TrimSuffix(a, ":443")
	case "http":
		a = strings.TrimSuffix(a, ":80")
	}
	return a
}

func isAbsoluteForm(target string) bool {
	t := strings.ToLower(target)
	return strings.HasPrefix(t, "https://") || strings.HasPrefix(t, "http://")
}

// splitTarget splits a raw request-target into its raw path and query (without
// "?"). hasQuery reports whether a "?" was present.
func splitTarget(target string) (path, query string, hasQuery bool, err error) {
	rest := target
	if isAbsoluteForm(target) {
		rest = target[strings.Index(target, "//")+2:]
		i := strings.IndexAny(rest, "/?")
		if i < 0 {
			return "/", "", false, nil
		}
		rest = rest[i:]
	} else if !strings.HasPrefix(target, "/") {
		return "", "", false, fmt.Errorf("request-target %q is neither origin-form nor absolute-form", truncUTF8(target, 64))
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		return rest[:i], rest[i+1:], true, nil
	}
	return rest, "", false, nil
}

// queryParam returns the values of the query parameters whose encoded name is
// name, per RFC 9421 §2.2.8: names and values are form-urlencoded-decoded and
// re-encoded with the application/x-www-form-urlencoded percent-encode set
// (space as %20).
func queryParam(query, name string) []string {
	var out []string
	for _, pair := range strings.Split(query, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if formEncode(formDecode(k)) == name {
			out = append(out, formEncode(formDecode(v)))
		}
	}
	return out
}

// formDecode is the WHATWG urlencoded-parser decoding: "+" is a space, "%XX"
// a byte, and a "%" not followed by two hex digits is kept as is.
func formDecode(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// formEncode percent-encodes every byte except ASCII alphanumerics and *-._.
func formEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || c == '*' || c == '-' || c == '.' || c == '_' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func isHex(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
