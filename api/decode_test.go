package api

import (
	"errors"
	"reflect"
	"sort"
	"testing"

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
	for _, s := range []string{`{"order_id":"ORD1","amount":"1.00"}`, `{"amount":1}`, `{"a":"1","a":"2"}`, `[`, `{"amount":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req policy.PaymentRequest
		err := decodeStrict(body, &req)
		if err != nil && !errors.Is(err, errMalformedJSON) && !errors.Is(err, policy.ErrValidation) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
