package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/quillpay/quill/policy"
)

// The parts of an OpenAPI 3.1 document these tests read.
type (
	oaDoc struct {
		OpenAPI    string                                `json:"openapi"`
		Info       struct{ Title, Version string }       `json:"info"`
		Security   []map[string][]string                 `json:"security"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"` // path → method (or "parameters") → operation
		Components struct {
			SecuritySchemes map[string]oaSecurityScheme `json:"securitySchemes"`
			Headers         map[string]*oaHeader        `json:"headers"`
			Schemas         map[string]*oaSchema        `json:"schemas"`
			Responses       map[string]*oaResponse      `json:"responses"`
		} `json:"components"`
	}
	oaSecurityScheme struct {
		Type string `json:"type"`
		In   string `json:"in"`
		Name string `json:"name"`
	}
	oaOperation struct {
		Security    []map[string][]string `json:"security"`
		RequestBody *struct {
			Required bool                   `json:"required"`
			Content  map[string]oaMediaType `json:"content"`
		} `json:"requestBody"`
		Responses map[string]*oaResponse `json:"responses"`
	}
	oaResponse struct {
		Ref     string                 `json:"$ref"`
		Headers map[string]*oaHeader   `json:"headers"`
		Content map[string]oaMediaType `json:"content"`
	}
	oaHeader struct {
		Ref      string `json:"$ref"`
		Required bool   `json:"required"`
	}
	oaMediaType struct {
		Schema *oaSchema `json:"schema"`
	}
	oaSchema struct {
		Ref                  string               `json:"$ref"`
		Type                 string               `json:"type"`
		Properties           map[string]*oaSchema `json:"properties"`
		Required             []string             `json:"required"`
		AdditionalProperties *bool                `json:"additionalProperties"`
		Enum                 []any                `json:"enum"`
		Const                any                  `json:"const"`
		AllOf                []*oaSchema          `json:"allOf"`
		Items                *oaSchema            `json:"items"`
	}
)

// signedHeaders are on every response, errors included: the Wechatpay-* ones
// for scheme A, the RFC 9421 ones for scheme B; they are absent only when the
// response signer itself is unavailable (503).
var signedHeaders = []string{"Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial", "Wechatpay-Signature",
	"Signature-Input", "Signature", "Content-Digest"}

func loadOpenAPI(tb testing.TB) *oaDoc {
	tb.Helper()
	var d oaDoc
	if err := json.Unmarshal(OpenAPI, &d); err != nil {
		tb.Fatalf("openapi.json: %v", err)
	}
	return &d
}

// operations returns the document's operations keyed by "METHOD path".
func (d *oaDoc) operations(tb testing.TB) map[string]*oaOperation {
	tb.Helper()
	ops := map[string]*oaOperation{}
	for path, item := range d.Paths {
		for key, raw := range item {
			switch key {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
			default:
				continue // parameters, summary, …
			}
			var op oaOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				tb.Fatalf("%s %s: %v", key, path, err)
			}
			ops[strings.ToUpper(key)+" "+path] = &op
		}
	}
	return ops
}

func (d *oaDoc) schema(tb testing.TB, s *oaSchema) *oaSchema {
	tb.Helper()
	for s != nil && s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/")
		if !ok || d.Components.Schemas[name] == nil {
			tb.Fatalf("unresolved schema $ref %q", s.Ref)
		}
		s = d.Components.Schemas[name]
	}
	if s == nil {
		tb.Fatal("missing schema")
	}
	return s
}

func (d *oaDoc) response(tb testing.TB, r *oaResponse) *oaResponse {
	tb.Helper()
	if r != nil && r.Ref != "" {
		name, ok := strings.CutPrefix(r.Ref, "#/components/responses/")
		if !ok || d.Components.Responses[name] == nil {
			tb.Fatalf("unresolved response $ref %q", r.Ref)
		}
		r = d.Components.Responses[name]
	}
	if r == nil {
		tb.Fatal("missing response")
	}
	return r
}

func (d *oaDoc) header(tb testing.TB, h *oaHeader) *oaHeader {
	tb.Helper()
	if h != nil && h.Ref != "" {
		name, ok := strings.CutPrefix(h.Ref, "#/components/headers/")
		if !ok || d.Components.Headers[name] == nil {
			tb.Fatalf("unresolved header $ref %q", h.Ref)
		}
		h = d.Components.Headers[name]
	}
	return h
}

// jsonFields returns the JSON member names of struct type t, each mapped to
// whether it is always present (no omitempty).
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = !slices.Contains(strings.Split(opts, ","), "omitempty")
	}
	return out
}

// validateRequired returns the JSON names of t's fields whose validate tag
// includes "required".
func validateRequired(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if slices.Contains(strings.Split(f.Tag.Get("validate"), ","), "required") {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			out = append(out, name)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func sortedSet(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func TestOpenAPIDocument(t *testing.T) {
	d := loadOpenAPI(t)
	if d.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", d.OpenAPI)
	}
	if d.Info.Title != "Quill merchant API" || d.Info.Version != "1" {
		t.Errorf("info = %+v", d.Info)
	}
	// encoding/json keeps the last of repeated keys, which would hide a
	// shadowed member from every other check.
	if err := noDuplicateKeys(json.NewDecoder(bytes.NewReader(OpenAPI)), "#"); err != nil {
		t.Error(err)
	}
	// Every $ref anywhere in the document must resolve.
	var root any
	if err := json.Unmarshal(OpenAPI, &root); err != nil {
		t.Fatal(err)
	}
	refs := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				refs++
				if !resolvePointer(root, ref) {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(root)
	if refs == 0 {
		t.Error("no $ref found; the document should use components")
	}
}

// noDuplicateKeys reads one JSON value from dec and returns an error naming
// the first object member that appears twice.
func noDuplicateKeys(dec *json.Decoder, at string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return err
			}
			k := key.(string)
			if seen[k] {
				return fmt.Errorf("%s: duplicate key %q", at, k)
			}
			seen[k] = true
			if err := noDuplicateKeys(dec, at+"/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(k)); err != nil {
				return err
			}
		}
		_, err = dec.Token() // }
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := noDuplicateKeys(dec, at+"/"+strconv.Itoa(i)); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ]
	}
	return err
}

// resolvePointer reports whether ref, a local JSON pointer ("#/a/b"), names a
// value in root.
func resolvePointer(root any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	v := root
	for tok := range strings.SplitSeq(p, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[tok]; !ok {
			return false
		}
	}
	return true
}

// TestOpenAPIRoutes checks that the document lists exactly NewHandler's routes.
func TestOpenAPIRoutes(t *testing.T) {
	d := loadOpenAPI(t)
	var h http.Handler
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("NewHandler used a dependency at construction: %v", p)
			}
		}()
		h = NewHandler(Deps{})
	}()
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("NewHandler returned %T, not a chi router", h)
	}
	var served []string
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	served = sortedSet(served)
	documented := sortedKeys(d.operations(t))
	if len(served) == 0 {
		t.Fatal("chi.Walk found no routes")
	}
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("openapi.json documents %s, which NewHandler does not serve", r)
		}
	}
}

// TestOpenAPIProblemCodes checks the Problem code enum, and each error
// response's status and codes, against errorTable.
func TestOpenAPIProblemCodes(t *testing.T) {
	d := loadOpenAPI(t)
	byStatus := map[int][]string{internalRule.status: {internalRule.code}}
	all := []string{internalRule.code}
	for _, r := range errorTable {
		byStatus[r.status] = append(byStatus[r.status], r.code)
		all = append(all, r.code)
	}

	problem := d.schema(t, d.Components.Schemas["Problem"])
	if got, want := enumStrings(t, problem.Properties["code"]), sortedSet(all); !slices.Equal(got, want) {
		t.Errorf("Problem.code enum = %v, want errorTable codes + internal = %v", got, want)
	}

	ops := d.operations(t)
	for _, name := range sortedKeys(ops) {
		op := ops[name]
		for _, status := range sortedKeys(op.Responses) {
			resp := op.Responses[status]
			n, err := strconv.Atoi(status)
			if err != nil || n < 400 {
				continue
			}
			t.Run(name+" "+status, func(t *testing.T) {
				mt, ok := d.response(t, resp).Content["application/problem+json"]
				if !ok || mt.Schema == nil || len(mt.Schema.AllOf) != 2 {
					t.Fatal("want application/problem+json with allOf [Problem, {status, code}]")
				}
				if base := d.schema(t, mt.Schema.AllOf[0]); base != problem {
					t.Error("allOf[0] is not the Problem schema")
				}
				narrow := mt.Schema.AllOf[1]
				if narrow.Properties["status"] == nil {
					t.Fatal("allOf[1] does not narrow status")
				}
				if c, _ := narrow.Properties["status"].Const.(float64); int(c) != n {
					t.Errorf("status const = %v, want %d", narrow.Properties["status"].Const, n)
				}
				want := sortedSet(byStatus[n])
				if len(want) == 0 {
					t.Fatalf("errorTable has no rule with status %d", n)
				}
				if got := enumStrings(t, narrow.Properties["code"]); !slices.Equal(got, want) {
					t.Errorf("code enum = %v, want errorTable's codes for %d: %v", got, n, want)
				}
			})
		}
	}
}

func enumStrings(tb testing.TB, s *oaSchema) []string {
	tb.Helper()
	if s == nil {
		tb.Fatal("no code property")
	}
	var out []string
	for _, v := range s.Enum {
		str, ok := v.(string)
		if !ok {
			tb.Fatalf("enum value %v is not a string", v)
		}
		out = append(out, str)
	}
	return sortedSet(out)
}

// TestOpenAPISchemasMatchTypes checks each documented body against the Go type
// that is decoded or encoded: the same JSON members; in a response, a member
// without omitempty is required; in a request, a member with validate
// "required" is required and unknown members are refused.
// TestOpenAPIReasons keeps Problem.reason's enum equal to the error table's.
func TestOpenAPIReasons(t *testing.T) {
	d := loadOpenAPI(t)
	want := map[string]bool{internalRule.reason: true}
	for _, r := range errorTable {
		want[r.reason] = true
	}
	var got []string
	for _, v := range d.Components.Schemas["Problem"].Properties["reason"].Enum {
		got = append(got, fmt.Sprint(v))
	}
	slices.Sort(got)
	if w := sortedKeys(want); !slices.Equal(got, w) {
		t.Errorf("Problem.reason enum = %v, want %v", got, w)
	}
}

func TestOpenAPISchemasMatchTypes(t *testing.T) {
	d := loadOpenAPI(t)
	for _, c := range []struct {
		schema  string
		typ     reflect.Type
		request bool
	}{
		{"PaymentRequest", reflect.TypeFor[policy.PaymentRequest](), true},
		{"DepositRequest", reflect.TypeFor[policy.DepositRequest](), true},
		{"Payment", reflect.TypeFor[paymentResponse](), false},
		{"RefundRequest", reflect.TypeFor[policy.RefundRequest](), true},
		{"Refund", reflect.TypeFor[refundResponse](), false},
		{"Certificate", reflect.TypeFor[certificate](), false},
		{"PaymentList", reflect.TypeFor[listPage](), false},
		{"RefundList", reflect.TypeFor[listPage](), false},
		{"Problem", reflect.TypeFor[Problem](), false},
		{"FieldError", reflect.TypeFor[policy.FieldError](), false},
	} {
		t.Run(c.schema, func(t *testing.T) {
			s := d.schema(t, d.Components.Schemas[c.schema])
			fields := jsonFields(c.typ)
			if got, want := sortedKeys(s.Properties), sortedKeys(fields); !slices.Equal(got, want) {
				t.Errorf("properties = %v, want the json fields of %v = %v", got, c.typ, want)
			}
			var want []string
			if c.request {
				want = validateRequired(c.typ)
				if s.AdditionalProperties == nil || *s.AdditionalProperties {
					t.Error("request schema must set additionalProperties: false")
				}
			} else {
				for name, always := range fields {
					if always {
						want = append(want, name)
					}
				}
			}
			if got, want := sortedSet(s.Required), sortedSet(want); !slices.Equal(got, want) {
				t.Errorf("required = %v, want %v", got, want)
			}
		})
	}
}

// TestOpenAPIOperations checks what every operation must carry: both security
// schemes, the request body, and the signed headers on every response.
func TestOpenAPIOperations(t *testing.T) {
	d := loadOpenAPI(t)
	if s := d.Components.SecuritySchemes["schemeA"]; s != (oaSecurityScheme{Type: "apiKey", In: "header", Name: "Authorization"}) {
		t.Errorf("schemeA = %+v, want apiKey in header Authorization", s)
	}
	if s := d.Components.SecuritySchemes["mTLS"]; s.Type != "mutualTLS" {
		t.Errorf("mTLS = %+v, want type mutualTLS", s)
	}
	if s := d.Components.SecuritySchemes["schemeB"]; s != (oaSecurityScheme{Type: "apiKey", In: "header", Name: "Signature"}) {
		t.Errorf("schemeB = %+v, want apiKey in header Signature", s)
	}
	// Either signature scheme, each together with the client certificate.
	bothSchemes := []map[string][]string{{"schemeA": {}, "mTLS": {}}, {"schemeB": {}, "mTLS": {}}}
	if !reflect.DeepEqual(d.Security, bothSchemes) {
		t.Errorf("top-level security = %v, want %v", d.Security, bothSchemes)
	}
	bodies := map[string]string{
		"POST /v1/payments": "PaymentRequest",
		"POST /v1/deposits": "DepositRequest",
		"POST /v1/refunds":  "RefundRequest",
	}
	okBodies := map[string]string{
		"POST /v1/payments":           "Payment",
		"GET /v1/payments/{order_id}": "Payment",
		"POST /v1/deposits":           "Payment",
		"GET /v1/certificates":        "CertificateList",
		"GET /v1/payments":            "PaymentList",
		"GET /v1/statements/{date}":   "", // text/csv
		"POST /v1/refunds":            "Refund",
		"GET /v1/refunds/{refund_id}": "Refund",
		"GET /v1/refunds":             "RefundList",
	}
	ops := d.operations(t)
	if got, want := sortedKeys(ops), sortedKeys(okBodies); !slices.Equal(got, want) {
		t.Fatalf("operations = %v; this test's tables list %v", got, want)
	}
	for _, name := range sortedKeys(ops) {
		op := ops[name]
		t.Run(name, func(t *testing.T) {
			if !reflect.DeepEqual(op.Security, bothSchemes) {
				t.Errorf("security = %v, want both schemes required together: %v", op.Security, bothSchemes)
			}
			if want, ok := bodies[name]; ok {
				if op.RequestBody == nil || !op.RequestBody.Required {
					t.Fatal("want a required request body")
				}
				mt, ok := op.RequestBody.Content["application/json"]
				if !ok || len(op.RequestBody.Content) != 1 || d.schema(t, mt.Schema) != d.Components.Schemas[want] {
					t.Errorf("request body must be application/json %s only", want)
				}
			} else if op.RequestBody != nil {
				t.Error("unexpected request body")
			}
			if op.Responses["200"] == nil {
				t.Fatal("no 200 response")
			}
			for _, status := range sortedKeys(op.Responses) {
				resp := d.response(t, op.Responses[status])
				// Which signature headers a response carries depends on the
				// request's scheme (and the 503 of an unavailable signer has
				// none), so only Request-ID is always there.
				for _, h := range append(slices.Clone(signedHeaders), "Request-ID") {
					hd := d.header(t, resp.Headers[h])
					if hd == nil {
						t.Errorf("%s response lacks header %s", status, h)
					} else if hd.Required != (h == "Request-ID") {
						t.Errorf("%s response header %s: required = %v", status, h, hd.Required)
					}
				}
				replayed := d.header(t, resp.Headers["Idempotent-Replayed"])
				if wantReplayed := status == "200" && strings.HasPrefix(name, "POST "); (replayed != nil) != wantReplayed {
					t.Errorf("%s response: Idempotent-Replayed documented = %v, want %v", status, replayed != nil, wantReplayed)
				}
				if status == "200" && okBodies[name] == "" {
					if mt, ok := resp.Content["text/csv"]; !ok || len(resp.Content) != 1 || mt.Schema == nil || mt.Schema.Type != "string" {
						t.Error("200 must be text/csv, a string")
					}
				} else if status == "200" {
					mt, ok := resp.Content["application/json"]
					if !ok || d.schema(t, mt.Schema) != d.Components.Schemas[okBodies[name]] {
						t.Errorf("200 must be application/json %s", okBodies[name])
					}
				}
			}
		})
	}
	list := d.schema(t, d.Components.Schemas["CertificateList"])
	if data := list.Properties["data"]; len(list.Properties) != 1 || data == nil || data.Type != "array" ||
		d.schema(t, data.Items) != d.Components.Schemas["Certificate"] {
		t.Error(`CertificateList must be {"data": [Certificate]}`)
	}
}
