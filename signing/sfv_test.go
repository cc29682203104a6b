package signing

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSFDictionary(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical serialization; empty with err set
		err  string // substring of the error
	}{
		{in: `a=1, b=2;x=1;y=2, c=(a b c)`, want: `a=1, b=2;x=1;y=2, c=(a b c)`},
		{in: `  a=1,    b=2;x=1;y=2,   c=(a   b   c)  `, want: `a=1, b=2;x=1;y=2, c=(a b c)`},
		{in: "a=1,\tb=2", want: `a=1, b=2`},
		{in: `sig1=("@method" "@target-uri");created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"`,
			want: `sig1=("@method" "@target-uri");created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"`},
		{in: `sig1=()`, want: `sig1=()`},
		{in: `sig1=( )`, want: `sig1=()`},
		{in: `a, b;x=?0, c=?1`, want: `a, b;x=?0, c`},
		{in: `sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:`, want: `sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:`},
		{in: `a=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU:`, want: `a=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:`},
		{in: `a=::`, want: `a=::`},
		{in: `a=1.5, b=-0.25, c=123456789012.123, d=1.0`, want: `a=1.5, b=-0.25, c=123456789012.123, d=1.0`},
		{in: `a=-999999999999999, b=0`, want: `a=-999999999999999, b=0`},
		{in: `a="say \"hi\" \\ bye"`, want: `a="say \"hi\" \\ bye"`},
		{in: `a=foo123/456:x, b=*tok`, want: `a=foo123/456:x, b=*tok`},
		{in: `*a.b_c-d=1`, want: `*a.b_c-d=1`},
		{in: ``, want: ``},

		{in: `a=1,`, err: `at byte 4: trailing ","`},
		{in: `a=1 b=2`, err: `at byte 4: expected "," between dictionary members, found 'b'`},
		{in: `A=1`, err: `at byte 0: keys must be lowercase`},
		{in: `1a=1`, err: `at byte 0: expected a key`},
		{in: `a=1, a=2`, err: `at byte 5: dictionary key "a" occurs twice`},
		{in: `a=1;x;x`, err: `at byte 6: parameter "x" occurs twice`},
		{in: `a=(1 2`, err: `at byte 2: inner list is not closed`},
		{in: `a=(1  2`, err: `at byte 2: inner list is not closed`},
		{in: `a=(1,2)`, err: `at byte 4: expected a space or ")" after an inner-list item, found ','`},
		{in: `a=(1)(2)`, err: `at byte 5: expected ","`},
		{in: `a=((1))`, err: `at byte 3: expected an item`},
		{in: `a=1;`, err: `at byte 4: expected a key`},
		{in: `a=1;x=`, err: `at byte 6: expected an item`},
		{in: `a=1;X=1`, err: `at byte 4: keys must be lowercase`},
		{in: `a=`, err: `at byte 2: expected an item`},
		{in: `a="unterminated`, err: `at byte 2: string is not closed`},
		{in: `a="bad \n escape"`, err: `at byte 8: only \" and \\ may be escaped`},
		{in: "a=\"tab\tin\"", err: `at byte 6: strings hold printable ASCII only, found byte 0x09`},
		{in: "a=\"caf\u00e9\"", err: `strings hold printable ASCII only`},
		{in: `a=:abc`, err: `at byte 2: byte sequence is not closed`},
		{in: `a=:ab$c:`, err: `at byte 5: byte sequence holds base64 only, found '$'`},
		{in: `a=:a:`, err: `byte sequence is not valid base64`},
		{in: `a=?2`, err: `boolean must be ?0 or ?1`},
		{in: `a=1234567890123456`, err: `integer has more than 15 digits`},
		{in: `a=1234567890123.5`, err: `decimal has more than 12 integer digits`},
		{in: `a=1.2345`, err: `decimal has more than 3 fraction digits`},
		{in: `a=1.`, err: `decimal ends with "."`},
		{in: `a=-`, err: `expected a digit`},
		{in: `a=@x`, err: `expected an item`},
		{in: ` ,a=1`, err: `at byte 1: expected a key`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := parseSFDictionary(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(appendSFDict(nil, d)); got != tt.want {
				t.Fatalf("serialized %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseSFItemAndList(t *testing.T) {
	it, err := parseSFItem(`"@query-param";name="Pet"`)
	if err != nil {
		t.Fatal(err)
	}
	if it.bare.kind != sfString || it.bare.s != "@query-param" {
		t.Fatalf("item %+v", it)
	}
	if v, _ := it.params.get("name"); v.s != "Pet" {
		t.Fatalf("name %+v", v)
	}
	if _, err := parseSFItem(`"a" "b"`); err == nil || !strings.Contains(err.Error(), "after the item") {
		t.Fatalf("two items: %v", err)
	}
	l, err := parseSFList(`a, (b c);p, "d"`)
	if err != nil || len(l) != 3 || !l[1].inner || len(l[1].list) != 2 {
		t.Fatalf("list %+v %v", l, err)
	}
	if _, err := parseSFList(`a, `); err == nil {
		t.Fatal("trailing comma accepted")
	}
}

// FuzzParseSFDictionary: whatever parses serializes to a canonical form that
// parses back to the same serialization; nothing panics.
func FuzzParseSFDictionary(f *testing.F) {
	for _, s := range []string{
		`sig1=("@method" "@target-uri" "content-digest");created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd";alg="rsa-pss-sha512"`,
		`sig1=:d2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wgGxbtRxf8Udx7zFZsckzXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72rgFWhzx2VjBqJzsPLMIQKhO4DGezXehhWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5WSb/QEVPnP5TmcAnLH1g+s++v6d4s8m0gCw1fV5/SITLq9mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q==:`,
		`sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:, sha-512=:z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==:`,
		`a=1, b=2;x=1;y=2, c=(a b c), d=?0, e=-1.5, f=*tok/x:y`,
		`a=1,`, `a=(1 2`, `a=1;x=`, `A=1`, `a="\x"`, `a=:ab$:`, `a=1, a=2`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseSFDictionary(s)
		if err != nil {
			if d != nil {
				t.Fatalf("dictionary returned with error %v", err)
			}
			if _, ok := err.(*sfError); !ok {
				t.Fatalf("error %T", err)
			}
			return
		}
		ser := string(appendSFDict(nil, d))
		d2, err := parseSFDictionary(ser)
		if err != nil {
			t.Fatalf("serialization %q of %q does not parse: %v", ser, s, err)
		}
		if again := string(appendSFDict(nil, d2)); again != ser {
			t.Fatalf("serialization not stable: %q then %q", ser, again)
		}
		if len(d2) != len(d) {
			t.Fatalf("%d members became %d", len(d), len(d2))
		}
	})
}

// FuzzSignatureBase builds signature bases from arbitrary Signature-Input
// values, request-targets and field values: nothing panics, and a base that
// builds is deterministic, has one line per component value, carries no line
// break inside a value, and ends with the canonical @signature-params line.
func FuzzSignatureBase(f *testing.F) {
	for _, s := range []struct{ input, target, field string }{
		{`sig1=("@method" "@target-uri" "content-digest");created=1618884473;keyid="k";nonce="n"`, "/foo?param=Value&Pet=dog", "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"},
		{`sig1=("@authority" "@path" "@query" "@scheme" "@request-target");created=1`, "/", "x"},
		{`sig1=("@query-param";name="Pet" "@query-param";name="fa%C3%A7ade%22%3A%20")`, "/p?Pet=dog&fa%C3%A7ade%22%3A%20=x&Pet=cat", "x"},
		{`sig1=("x-f";sf "x-f";key="a" "x-f";bs "x-f")`, "https://example.com/a?b", "a=1, b=(x y);p"},
		{`sig1=("example-dict";sf "example-dict";key="c")`, "/", "a=1,    b=2;x=1;y=2,   c=(a   b   c)"},
		{`sig1=("@status" "@method";req "signature";key="sig1";req)`, "/", "sig1=:AAAA:"},
		{`sig1=("@method" "@method")`, "/", ""},
		{`sig1=("@query-param";name="a" "@method")`, "/p?a=1&a=2", ""},
		{`sig1=("x-f";bs;sf)`, "*", "a"},
		{`sig1=(a b);x`, "relative", "\r\n"},
	} {
		f.Add(s.input, s.target, s.field)
	}
	f.Fuzz(func(t *testing.T, input, target, field string) {
		r := MessageRequest{Method: "POST", Scheme: "https", Authority: "Example.com:443", Target: target,
			Header: map[string][]string{"X-F": {field, " second "}, "Example-Dict": {field}, "Signature": {field}, "Content-Digest": {field}}}
		d, err := parseSFDictionary(input)
		if err != nil || len(d) == 0 {
			return
		}
		for _, m := range []message{{req: &r}, {req: &r, resp: &MessageResponse{Status: 200, Header: r.Header}}} {
			base, err := buildBase(m, d[0])
			if err != nil {
				var be *baseError
				if !errors.As(err, &be) || (be.err != ErrMalformed && be.err != ErrCoverage) {
					t.Fatalf("error %v is not a baseError", err)
				}
				continue
			}
			again, _ := buildBase(m, d[0])
			if string(again) != string(base) {
				t.Fatal("base not deterministic")
			}
			lines := strings.Split(string(base), "\n")
			want := `"@signature-params": ` + string(appendSFMember(nil, sfMember{inner: true, list: d[0].list, params: d[0].params}))
			if lines[len(lines)-1] != want {
				t.Fatalf("last line %q, want %q", lines[len(lines)-1], want)
			}
			if strings.Contains(string(base), "\r") || len(lines)-1 < len(d[0].list) {
				t.Fatalf("base %q for %d components", base, len(d[0].list))
			}
			i := 0 // each component has one line, @query-param one per occurrence
			for _, id := range d[0].list {
				prefix := string(appendSFItem(nil, id)) + ": "
				if !strings.HasPrefix(lines[i], prefix) {
					t.Fatalf("line %d %q is not component %s", i, lines[i], prefix)
				}
				for i++; id.bare.s == "@query-param" && strings.HasPrefix(lines[i], prefix); i++ {
				}
			}
			if i != len(lines)-1 {
				t.Fatalf("%d lines for the components, %d in the base", i, len(lines)-1)
			}
		}
	})
}
