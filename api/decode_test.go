package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/quillpay/quill/policy"
)

func TestDecodeStrict(t *testing.T) {
	for _, c := range []struct {
		name      string
		body      string
		want      policy.PaymentRequest
		malformed bool
		fields    []string // field errors expected, sorted
	}{
		{name: "ok", body: `{"order_id":"ORD1","amount":"1.00","currency":"CNY","payer_token":"t"}`,
			want: policy.PaymentRequest{OrderID: "ORD1", Amount: "1.00", Currency: "CNY", PayerToken: "t"}},
		{name: "whitespace and escapes", body: " {\"order_id\" : \"ORD\\u0031\", \"description\":\"caf\\u00e9\"}\n",
			want: policy.PaymentRequest{OrderID: "ORD1", Description: "café"}},
		{name: "number amount", body: `{"amount":12.34}`, fields: []string{"amount"}},
		{name: "null amount", body: `{"amount":null}`, fields: []string{"amount"}},
		{name: "object amount", body: `{"amount":{"v":"1"}}`, fields: []string{"amount"}},
		{name: "unknown and duplicate together", body: `{"amount":"1","amount":"2","tip":"x"}`, fields: []string{"amount", "tip"}},
		{name: "every bad field listed", body: `{"amount":1,"currency":true,"x":"1"}`, fields: []string{"amount", "currency", "x"}},
		{name: "array", body: `[]`, malformed: true},
		{name: "truncated", body: `{"amount":"1"`, malformed: true},
		{name: "trailing data", body: `{"amount":"1"} {}`, malformed: true},
		{name: "empty", body: ``, malformed: true},
		{name: "bare string", body: `"x"`, malformed: true},
		// Only JSON whitespace may follow the object (issue 5, item 2).
		{name: "trailing garbage", body: `{"amount":"1"}garbage`, malformed: true},
		{name: "trailing brace", body: `{"amount":"1"}}`, malformed: true},
		{name: "trailing bracket", body: `{"amount":"1"}]`, malformed: true},
		{name: "trailing comma", body: `{"amount":"1"},`, malformed: true},
		{name: "trailing colon", body: `{"amount":"1"}:`, malformed: true},
		{name: "trailing quote", body: `{"amount":"1"}"`, malformed: true},
		{name: "trailing comment", body: `{"amount":"1"}/*c*/`, malformed: true},
		{name: "trailing NUL", body: "{\"amount\":\"1\"}\x00", malformed: true},
		{name: "trailing whitespace", body: "{\"amount\":\"1\"} \t\r\n", want: policy.PaymentRequest{Amount: "1"}},
		// Strings must be Unicode text as every parser reads it (item 3):
		// encoding/json would store U+FFFD for each of these.
		{name: "lone high surrogate", body: `{"description":"\ud800"}`, fields: []string{"description"}},
		{name: "lone low surrogate", body: `{"description":"a\udc00b"}`, fields: []string{"description"}},
		{name: "reversed pair", body: `{"description":"\udc00\ud800"}`, fields: []string{"description"}},
		{name: "high then non-surrogate", body: `{"description":"\ud800\u0041"}`, fields: []string{"description"}},
		{name: "high at the end", body: `{"order_id":"ORD1\uD83D"}`, fields: []string{"order_id"}},
		{name: "invalid raw UTF-8", body: "{\"description\":\"caf\xe9\"}", fields: []string{"description"}},
		{name: "UTF-8 encoded surrogate", body: "{\"description\":\"\xed\xa0\x80\"}", fields: []string{"description"}},
		{name: "every bad string listed", body: "{\"description\":\"\\ud800\",\"currency\":\"\xff\"}", fields: []string{"currency", "description"}},
		{name: "valid pair and raw UTF-8", body: "{\"description\":\"\\ud83d\\ude00 \xf0\x9f\x98\x80 caf\xc3\xa9\"}",
			want: policy.PaymentRequest{Description: "\U0001F600 \U0001F600 café"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got policy.PaymentRequest
			err := decodeStrict([]byte(c.body), &got)
			switch {
			case c.malformed:
				if !errors.Is(err, errMalformedJSON) {
					t.Fatalf("err = %v, want malformed", err)
				}
			case c.fields != nil:
				var v *policy.ValidationError
				if !errors.As(err, &v) {
					t.Fatalf("err = %v, want field errors", err)
				}
				var names []string
				for _, f := range v.Fields {
					names = append(names, f.Field)
				}
				sort.Strings(names)
				if !reflect.DeepEqual(names, c.fields) {
					t.Fatalf("fields %v, want %v", names, c.fields)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if got != c.want {
					t.Fatalf("got %+v, want %+v", got, c.want)
				}
			}
		})
	}
}

func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{"order_id":"ORD1","amount":"1.00"}`, `{"amount":1}`, `{"a":"1","a":"2"}`, `[`, `{"amount":"\ud800"}`,
		`{"amount":"1"}x`, `{"description":"\ud83d\ude00"}`, "{\"description\":\"\xff\"}", `{"description":"\udc00\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req policy.PaymentRequest
		err := decodeStrict(body, &req)
		if err != nil && !errors.Is(err, errMalformedJSON) && !errors.Is(err, policy.ErrValidation) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if err != nil {
			return
		}
		// Accepted: the body is exactly one JSON value, and every decoded
		// string is what any strict parser reads (no substituted U+FFFD).
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not one JSON value: %q", body)
		}
		for _, v := range []string{req.OrderID, req.Amount, req.Currency, req.PayerToken, req.Description} {
			literal := bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
			if !utf8.ValidString(v) || (strings.ContainsRune(v, utf8.RuneError) && !literal) {
				t.Fatalf("decoded %q from %q", v, body)
			}
		}
	})
}
