package signing

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// This file is a strict RFC 8941 structured-field parser and serializer, enough
// for Signature-Input, Signature and Content-Digest (dictionaries, inner lists,
// items and parameters). It deliberately deviates from RFC 8941 in one way:
// a dictionary or parameter key that occurs twice is an error instead of the
// later value silently winning, so two parsers (a proxy's and Quill's) can never
// disagree about which signature or parameter a header carries.

// sfKind is the type of a bare item.
type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
)

func (k sfKind) String() string {
	switch k {
	case sfInteger:
		return "integer"
	case sfDecimal:
		return "decimal"
	case sfString:
		return "string"
	case sfToken:
		return "token"
	case sfBytes:
		return "byte sequence"
	case sfBoolean:
		return "boolean"
	}
	return "unknown"
}

// sfBare is a bare item. Integers live in i; decimals in i as thousandths
// (RFC 8941 decimals have at most three fraction digits); strings and tokens
// in s; byte sequences in b; booleans in t.
type sfBare struct {
	kind sfKind
	i    int64
	s    string
	b    []byte
	t    bool
}

type sfParam struct {
	key string
	val sfBare
}

// sfParams keeps parameters in order; keys are unique.
type sfParams []sfParam

func (ps sfParams) get(key string) (sfBare, bool) {
	for _, p := range ps {
		if p.key == key {
			return p.val, true
		}
	}
	return sfBare{}, false
}

func (ps sfParams) has(key string) bool { _, ok := ps.get(key); return ok }

type sfItem struct {
	bare   sfBare
	params sfParams
}

// sfMember is a dictionary member or list member: an item, or an inner list
// (inner set) with its own parameters.
type sfMember struct {
	key    string // dictionary key; empty for list members
	inner  bool
	item   sfItem   // when !inner
	list   []sfItem // when inner
	params sfParams // inner list parameters
}

// sfDict is a dictionary in field order.
type sfDict []sfMember

func (d sfDict) get(key string) (sfMember, bool) {
	for _, m := range d {
		if m.key == key {
			return m, true
		}
	}
	return sfMember{}, false
}

// sfError is a parse error at a byte offset of the (combined) field value.
type sfError struct {
	off int
	msg string
}

func (e *sfError) Error() string { return fmt.Sprintf("at byte %d: %s", e.off, e.msg) }

// sfParser parses one field value.
type sfParser struct {
	s   string
	pos int
}

func (p *sfParser) errf(format string, args ...any) error {
	return &sfError{off: p.pos, msg: fmt.Sprintf(format, args...)}
}

func (p *sfParser) eof() bool { return p.pos >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.pos]
}

// describe names the byte at the cursor for an error message.
func (p *sfParser) describe() string {
	if p.eof() {
		return "end of field"
	}
	c := p.s[p.pos]
	if c < 0x20 || c > 0x7e {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	return strconv.QuoteRune(rune(c))
}

func (p *sfParser) skipSP() {
	for !p.eof() && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func (p *sfParser) skipOWS() {
	for !p.eof() && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// parseSFDictionary parses a dictionary field value (RFC 8941 §4.2.2). An
// empty (or all-space) value is an empty dictionary.
func parseSFDictionary(s string) (sfDict, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var d sfDict
	for !p.eof() {
		start := p.pos
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		for _, m := range d {
			if m.key == key {
				p.pos = start
				return nil, p.errf("dictionary key %q occurs twice", key)
			}
		}
		var m sfMember
		if p.peek() == '=' {
			p.pos++
			m, err = p.parseMember()
			if err != nil {
				return nil, err
			}
		} else {
			// A bare key is boolean true with parameters.
			ps, err := p.parseParams()
			if err != nil {
				return nil, err
			}
			m = sfMember{item: sfItem{bare: sfBare{kind: sfBoolean, t: true}, params: ps}}
		}
		m.key = key
		d = append(d, m)
		p.skipOWS()
		if p.eof() {
			return d, nil
		}
		if p.peek() != ',' {
			return nil, p.errf("expected \",\" between dictionary members, found %s", p.describe())
		}
		p.pos++
		p.skipOWS()
		if p.eof() {
			return nil, p.errf("trailing \",\" after the last dictionary member")
		}
	}
	return d, nil
}

// parseSFList parses a list field value (RFC 8941 §4.2.1).
func parseSFList(s string) ([]sfMember, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var l []sfMember
	for !p.eof() {
		m, err := p.parseMember()
		if err != nil {
			return nil, err
		}
		l = append(l, m)
		p.skipOWS()
		if p.eof() {
			return l, nil
		}
		if p.peek() != ',' {
			return nil, p.errf("expected \",\" between list members, found %s", p.describe())
		}
		p.pos++
		p.skipOWS()
		if p.eof() {
			return nil, p.errf("trailing \",\" after the last list member")
		}
	}
	return l, nil
}

// parseSFItem parses an item field value (RFC 8941 §4.2.3), also used for a
// component identifier such as `"@query-param";name="Pet"`.
func parseSFItem(s string) (sfItem, error) {
	p := &sfParser{s: s}
	p.skipSP()
	it, err := p.parseItem()
	if err != nil {
		return sfItem{}, err
	}
	p.skipSP()
	if !p.eof() {
		return sfItem{}, p.errf("unexpected %s after the item", p.describe())
	}
	return it, nil
}

func (p *sfParser) parseMember() (sfMember, error) {
	if p.peek() == '(' {
		list, ps, err := p.parseInnerList()
		return sfMember{inner: true, list: list, params: ps}, err
	}
	it, err := p.parseItem()
	return sfMember{item: it}, err
}

func (p *sfParser) parseInnerList() ([]sfItem, sfParams, error) {
	open := p.pos
	p.pos++ // '('
	list := []sfItem{}
	for {
		p.skipSP()
		if p.eof() {
			p.pos = open
			return nil, nil, p.errf("inner list is not closed with \")\"")
		}
		if p.peek() == ')' {
			p.pos++
			ps, err := p.parseParams()
			return list, ps, err
		}
		it, err := p.parseItem()
		if err != nil {
			return nil, nil, err
		}
		list = append(list, it)
		if p.eof() {
			p.pos = open
			return nil, nil, p.errf("inner list is not closed with \")\"")
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, nil, p.errf("expected a space or \")\" after an inner-list item, found %s", p.describe())
		}
	}
}

func (p *sfParser) parseItem() (sfItem, error) {
	b, err := p.parseBare()
	if err != nil {
		return sfItem{}, err
	}
	ps, err := p.parseParams()
	if err != nil {
		return sfItem{}, err
	}
	return sfItem{bare: b, params: ps}, nil
}

func (p *sfParser) parseParams() (sfParams, error) {
	var ps sfParams
	for p.peek() == ';' {
		p.pos++
		p.skipSP()
		start := p.pos
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		if ps.has(key) {
			p.pos = start
			return nil, p.errf("parameter %q occurs twice", key)
		}
		val := sfBare{kind: sfBoolean, t: true}
		if p.peek() == '=' {
			p.pos++
			if val, err = p.parseBare(); err != nil {
				return nil, err
			}
		}
		ps = append(ps, sfParam{key: key, val: val})
	}
	return ps, nil
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || (c >= 'A' && c <= 'Z') }

// isTChar is RFC 9110's tchar.
func isTChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *sfParser) parseKey() (string, error) {
	c := p.peek()
	if !isLCAlpha(c) && c != '*' {
		if c >= 'A' && c <= 'Z' {
			return "", p.errf("keys must be lowercase, found %s", p.describe())
		}
		return "", p.errf("expected a key (lowercase letter or \"*\"), found %s", p.describe())
	}
	start := p.pos
	for !p.eof() {
		c := p.s[p.pos]
		if !isLCAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '*' {
			break
		}
		p.pos++
	}
	return p.s[start:p.pos], nil
}

func (p *sfParser) parseBare() (sfBare, error) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		return p.parseNumber()
	case c == '"':
		return p.parseString()
	case c == '*' || isAlpha(c):
		return p.parseToken()
	case c == ':':
		return p.parseBytes()
	case c == '?':
		return p.parseBool()
	}
	return sfBare{}, p.errf("expected an item (integer, decimal, string, token, byte sequence or boolean), found %s", p.describe())
}

func (p *sfParser) parseNumber() (sfBare, error) {
	start := p.pos
	neg := false
	if p.peek() == '-' {
		neg = true
		p.pos++
	}
	if !isDigit(p.peek()) {
		return sfBare{}, p.errf("expected a digit, found %s", p.describe())
	}
	digStart := p.pos
	dot := -1
	for !p.eof() {
		c := p.s[p.pos]
		if isDigit(c) {
			p.pos++
		} else if c == '.' && dot < 0 {
			if p.pos-digStart > 12 {
				return sfBare{}, p.errf("decimal has more than 12 integer digits")
			}
			dot = p.pos
			p.pos++
		} else {
			break
		}
		if dot < 0 && p.pos-digStart > 15 {
			p.pos = start
			return sfBare{}, p.errf("integer has more than 15 digits")
		}
		if dot >= 0 && p.pos-digStart > 16 {
			p.pos = start
			return sfBare{}, p.errf("decimal has more than 16 characters")
		}
	}
	if dot < 0 {
		n, _ := strconv.ParseInt(p.s[digStart:p.pos], 10, 64) // ≤ 15 digits
		if neg {
			n = -n
		}
		return sfBare{kind: sfInteger, i: n}, nil
	}
	frac := p.s[dot+1 : p.pos]
	if len(frac) == 0 {
		return sfBare{}, p.errf("decimal ends with \".\"")
	}
	if len(frac) > 3 {
		p.pos = dot + 1
		return sfBare{}, p.errf("decimal has more than 3 fraction digits")
	}
	ip, _ := strconv.ParseInt(p.s[digStart:dot], 10, 64)
	fp, _ := strconv.ParseInt(frac+strings.Repeat("0", 3-len(frac)), 10, 64)
	n := ip*1000 + fp
	if neg {
		n = -n
	}
	return sfBare{kind: sfDecimal, i: n}, nil
}

func (p *sfParser) parseString() (sfBare, error) {
	open := p.pos
	p.pos++ // '"'
	// Fast path: a string without escapes is a substring of the field.
	for i := p.pos; i < len(p.s); i++ {
		c := p.s[i]
		if c == '"' {
			v := p.s[p.pos:i]
			p.pos = i + 1
			return sfBare{kind: sfString, s: v}, nil
		}
		if c == '\\' || c < 0x20 || c > 0x7e {
			break
		}
	}
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.pos]
		switch {
		case c == '\\':
			p.pos++
			if p.eof() {
				p.pos = open
				return sfBare{}, p.errf("string is not closed")
			}
			if n := p.s[p.pos]; n != '"' && n != '\\' {
				return sfBare{}, p.errf("only \\\" and \\\\ may be escaped in a string, found \\%s", p.describe())
			}
			b.WriteByte(p.s[p.pos])
			p.pos++
		case c == '"':
			p.pos++
			return sfBare{kind: sfString, s: b.String()}, nil
		case c < 0x20 || c > 0x7e:
			return sfBare{}, p.errf("strings hold printable ASCII only, found %s", p.describe())
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	p.pos = open
	return sfBare{}, p.errf("string is not closed")
}

func (p *sfParser) parseToken() (sfBare, error) {
	start := p.pos
	p.pos++
	for !p.eof() {
		c := p.s[p.pos]
		if !isTChar(c) && c != ':' && c != '/' {
			break
		}
		p.pos++
	}
	return sfBare{kind: sfToken, s: p.s[start:p.pos]}, nil
}

func (p *sfParser) parseBytes() (sfBare, error) {
	open := p.pos
	p.pos++ // ':'
	end := strings.IndexByte(p.s[p.pos:], ':')
	if end < 0 {
		p.pos = open
		return sfBare{}, p.errf("byte sequence is not closed with \":\"")
	}
	enc := p.s[p.pos : p.pos+end]
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '/' && c != '=' {
			p.pos += i
			return sfBare{}, p.errf("byte sequence holds base64 only, found %s", p.describe())
		}
	}
	// RFC 8941 §4.2.7: parsers SHOULD NOT fail when "=" padding is absent.
	dec := base64.StdEncoding
	if len(enc)%4 != 0 {
		dec = base64.RawStdEncoding
	}
	b, err := dec.DecodeString(enc)
	if err != nil {
		return sfBare{}, p.errf("byte sequence is not valid base64")
	}
	p.pos += end + 1
	return sfBare{kind: sfBytes, b: b}, nil
}

func (p *sfParser) parseBool() (sfBare, error) {
	p.pos++ // '?'
	switch p.peek() {
	case '1':
		p.pos++
		return sfBare{kind: sfBoolean, t: true}, nil
	case '0':
		p.pos++
		return sfBare{kind: sfBoolean, t: false}, nil
	}
	return sfBare{}, p.errf("boolean must be ?0 or ?1, found ?%s", p.describe())
}

// Serialization (RFC 8941 §4.1). Values built by the parser always serialize;
// values built by this package are valid by construction.

func appendSFBare(b []byte, v sfBare) []byte {
	switch v.kind {
	case sfInteger:
		return strconv.AppendInt(b, v.i, 10)
	case sfDecimal:
		n := v.i
		if n < 0 {
			b = append(b, '-')
			n = -n
		}
		b = strconv.AppendInt(b, n/1000, 10)
		b = append(b, '.')
		frac := strconv.FormatInt(1000+n%1000, 10)[1:]
		frac = strings.TrimRight(frac, "0")
		if frac == "" {
			frac = "0"
		}
		return append(b, frac...)
	case sfString:
		b = append(b, '"')
		for i := 0; i < len(v.s); i++ {
			if c := v.s[i]; c == '"' || c == '\\' {
				b = append(b, '\\')
			}
			b = append(b, v.s[i])
		}
		return append(b, '"')
	case sfToken:
		return append(b, v.s...)
	case sfBytes:
		b = append(b, ':')
		b = base64.StdEncoding.AppendEncode(b, v.b)
		return append(b, ':')
	case sfBoolean:
		if v.t {
			return append(b, "?1"...)
		}
		return append(b, "?0"...)
	}
	return b
}

func appendSFParams(b []byte, ps sfParams) []byte {
	for _, p := range ps {
		b = append(b, ';')
		b = append(b, p.key...)
		if p.val.kind == sfBoolean && p.val.t {
			continue
		}
		b = append(b, '=')
		b = appendSFBare(b, p.val)
	}
	return b
}

func appendSFItem(b []byte, it sfItem) []byte {
	return appendSFParams(appendSFBare(b, it.bare), it.params)
}

func appendSFMember(b []byte, m sfMember) []byte {
	if !m.inner {
		return appendSFItem(b, m.item)
	}
	b = append(b, '(')
	for i, it := range m.list {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendSFItem(b, it)
	}
	b = append(b, ')')
	return appendSFParams(b, m.params)
}

// appendSFDict serializes a dictionary; a boolean-true item member is
// serialized as its bare key.
func appendSFDict(b []byte, d sfDict) []byte {
	for i, m := range d {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, m.key...)
		if !m.inner && m.item.bare.kind == sfBoolean && m.item.bare.t {
			b = appendSFParams(b, m.item.params)
			continue
		}
		b = append(b, '=')
		b = appendSFMember(b, m)
	}
	return b
}

func sfStr(s string) sfBare     { return sfBare{kind: sfString, s: s} }
func sfInt(n int64) sfBare      { return sfBare{kind: sfInteger, i: n} }
func sfByteSeq(b []byte) sfBare { return sfBare{kind: sfBytes, b: b} }
func sfTrue() sfBare            { return sfBare{kind: sfBoolean, t: true} }
