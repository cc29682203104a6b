package attack

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// secrets is everything the tests sent or received that must never reach a
// log: request and response signatures, payer and auditor tokens, request
// bodies. TestMain checks the servers' logs against it.
type secrets struct {
	mu  sync.Mutex
	all map[string]bool
}

var sent = &secrets{all: map[string]bool{}}

// minSecret: shorter values (a "{}" body) are not distinctive enough to
// search for.
const minSecret = 24

func (s *secrets) add(v string) {
	if len(v) < minSecret {
		return
	}
	s.mu.Lock()
	s.all[v] = true
	s.mu.Unlock()
}

func (s *secrets) addBody(b []byte) { s.add(string(b)) }

// addRequest records the body of a raw request.
func (s *secrets) addRequest(raw string) {
	if _, body, ok := strings.Cut(raw, "\r\n\r\n"); ok {
		s.add(body)
	}
}

func (s *secrets) snapshot() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.all))
	for k := range s.all {
		out[k] = true
	}
	return out
}

var (
	pemBlock   = regexp.MustCompile(`-----BEGIN [A-Z ]+-----`)
	jwtShape   = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}`)
	vaultToken = regexp.MustCompile(`\bhv[sbr]\.[A-Za-z0-9_-]{20,}`)
	// A base64 run this long is a signature or a key: nothing Quill logs
	// legitimately is (hashes are 64 hex digits).
	longBase64 = regexp.MustCompile(`[A-Za-z0-9+/]{100,}={0,2}`)
)

// checkLog reads a server's whole log and returns what breaks log hygiene
// (issue 11 item 17): a line that is not exactly one JSON object with a
// level, a PEM block, a JWT, a Vault token, a long base64 run, any value in
// known in full, or an event with a field the tests tried to inject.
func checkLog(path string, known map[string]bool) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	// Index each secret by its first and middle minSecret bytes, so each
	// log position costs one map lookup, whatever the number of secrets.
	windows := map[string][]string{}
	for v := range known {
		for _, at := range []int{0, len(v)/2 - minSecret/2} {
			w := v[at : at+minSecret]
			windows[w] = append(windows[w], v)
		}
	}
	var problems []string
	report := func(line int, what string, text string) {
		if len(problems) < 20 {
			if len(text) > 300 {
				text = text[:300] + "…"
			}
			problems = append(problems, fmt.Sprintf("line %d: %s: %s", line, what, text))
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			report(n, "not one JSON object", line)
			continue
		}
		switch ev["level"] {
		case "debug", "info", "warn", "error":
		default:
			report(n, "no level", line)
		}
		for k := range ev {
			if strings.Contains(strings.ToLower(k), "injected") {
				report(n, "an injected field became a field", line)
			}
		}
		for _, re := range []*regexp.Regexp{pemBlock, jwtShape, vaultToken} {
			if m := re.FindString(line); m != "" {
				report(n, "matches "+re.String(), m)
			}
		}
		for _, m := range longBase64.FindAllString(line, -1) {
			if mixed(m) {
				report(n, "a long base64 run (a signature or a key)", m)
			}
		}
		// Values are searched decoded too: a body logged inside a JSON
		// string has its quotes escaped.
		text := line + "\n" + strings.Join(stringValues(ev), "\n")
		for i := 0; i+minSecret <= len(text); i++ {
			for _, v := range windows[text[i:i+minSecret]] {
				if strings.Contains(text, v) {
					report(n, "a signature, token or body sent in the tests", v)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, err.Error())
	}
	if n == 0 {
		problems = append(problems, "the log is empty: nothing was captured")
	}
	return problems
}

// mixed reports whether s looks like base64 of random bytes: many distinct
// characters (a padded order id in a path has a dozen).
func mixed(s string) bool {
	seen := map[rune]bool{}
	for _, c := range s {
		seen[c] = true
	}
	return len(seen) >= 24
}

// stringValues returns every string in a decoded JSON value.
func stringValues(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case map[string]any:
		var out []string
		for _, x := range v {
			out = append(out, stringValues(x)...)
		}
		return out
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, stringValues(x)...)
		}
		return out
	}
	return nil
}

// TestLogHygieneCheckerCatches: the checker TestMain runs over the servers'
// logs finds each kind of leak it is for, so a clean result means something.
func TestLogHygieneCheckerCatches(t *testing.T) {
	raw := make([]byte, 256) // an RSA-2048 signature's length
	rand.Read(raw)
	sig := base64.StdEncoding.EncodeToString(raw)
	body := `{"order_id":"ORD000000000001","amount":"1.00"}`
	for _, c := range []struct{ name, line string }{
		{"plain text", `TLS handshake error from 127.0.0.1`},
		{"two objects", `{"level":"info"}{"level":"info"}`},
		{"no level", `{"message":"x"}`},
		{"PEM", `{"level":"info","k":"-----BEGIN PRIVATE KEY-----"}`},
		{"JWT", `{"level":"info","t":"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"}`},
		{"Vault token", `{"level":"info","t":"hvs.CAESIJlWh3mlfQ1ArW3ZxQjG6N8x"}`},
		{"signature", `{"level":"info","s":"` + sig[:100] + `"}`},
		{"a key's base64", `{"level":"info","s":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u"}`},
		{"known body", `{"level":"warn","reason":"` + strings.ReplaceAll(body, `"`, `\"`) + `"}`},
		{"injected field", `{"level":"info","injected":"1"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := t.TempDir() + "/log"
			if err := os.WriteFile(path, []byte(`{"level":"info","message":"fine"}`+"\n"+c.line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := checkLog(path, map[string]bool{body: true}); len(got) == 0 {
				t.Fatalf("%q passed the check", c.line)
			}
		})
	}
	path := t.TempDir() + "/log"
	os.WriteFile(path, []byte(`{"level":"info","message":"fine","path":"/v1/payments"}`+"\n"), 0o600)
	if got := checkLog(path, map[string]bool{body: true}); len(got) != 0 {
		t.Fatalf("a clean log failed: %v", got)
	}
}

// TestLogInjectionNeutralized is issue 11 item 17 (injection): header
// values, the path and body fields carrying quotes, braces and encoded
// newlines are refused as usual and logged as data: TestMain's check then
// finds every line one JSON object and no injected field.
func TestLogInjectionNeutralized(t *testing.T) {
	s := shared(t)
	before := s.state(t)
	inject := `","level":"error","injected":"1`
	newline := "%0A%7B%22level%22%3A%22error%22%2C%22injected%22%3A%221%22%7D"
	for _, c := range []struct {
		name   string
		raw    func() string
		status int
	}{
		{"header value", func() string {
			return s.sign(t, honest, "GET", "/v1/certificates", nil).raw("User-Agent: x"+inject, "X-Forwarded-For: 1.2.3.4"+inject)
		}, http.StatusOK},
		{"encoded newline in the path", func() string {
			return s.sign(t, honest, "GET", "/v1/payments/ORD1"+newline, nil).raw()
		}, http.StatusNotFound},
		{"encoded newline in the query", func() string {
			return s.sign(t, honest, "GET", "/v1/certificates?q="+newline+"&"+url.QueryEscape(inject)+"=1", nil).raw()
		}, http.StatusOK},
		{"newline in a body field", func() string {
			body := []byte(`{"order_id":"ORD1\n{\"level\":\"error\",\"injected\":1}","amount":"1.00","currency":"CNY","payer_token":"x"}`)
			return s.sign(t, honest, "POST", "/v1/payments", body).raw()
		}, http.StatusUnprocessableEntity},
		{"quotes in the nonce", func() string {
			sg := s.sign(t, honest, "GET", "/v1/certificates", nil)
			sg.auth = strings.Replace(sg.auth, `nonce_str="`, `nonce_str="`+strings.ReplaceAll(inject, `"`, `\"`), 1)
			return sg.raw()
		}, http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.exchange(t, s.cert(honest), c.raw())
			if !r.Signed || r.Status != c.status {
				t.Fatalf("status %d signed=%v, want %d: %s", r.Status, r.Signed, c.status, r.Body)
			}
		})
	}
	s.unchanged(t, before)
}
