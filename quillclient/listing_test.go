package quillclient_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/quillpay/quill/quillclient"
	"github.com/quillpay/quill/signing"
)

// resign makes the fake server answer body instead, signed as Quill would
// and then apply after to what is sent: a server that answers
// correctly (after nil), or a response altered on the way.
func resign(t *testing.T, f *fakeQuill, body []byte, after func([]byte) []byte) {
	t.Helper()
	signer := &signing.ResponseSigner{Keys: f.platform, Now: f.clock.Now}
	f.setTamper(func(h http.Header, _ []byte) []byte {
		sig, err := signer.Sign(context.Background(), body)
		if err != nil {
			t.Error(err)
		}
		h.Set("Wechatpay-Timestamp", sig.Timestamp)
		h.Set("Wechatpay-Nonce", sig.Nonce)
		h.Set("Wechatpay-Signature", sig.Signature)
		out := bytes.Clone(body)
		if after != nil {
			out = after(out)
		}
		return out
	})
}

func TestClientStatementVerifiesAsItStreams(t *testing.T) {
	f := newFakeQuill(t)
	c, err := quillclient.NewClient(f.srv.URL, f.transport(t))
	if err != nil {
		t.Fatal(err)
	}
	csv := []byte(strings.Repeat("ORD1,,1,payment,1.00,0.01,0.99,CNY,2026-12-04T10:00:00+08:00\n", 5000))

	resign(t, f, csv, nil)
	var buf bytes.Buffer
	n, err := c.Statement(context.Background(), "2026-12-04", "+08:00", &buf)
	if err != nil || n != int64(len(csv)) || !bytes.Equal(buf.Bytes(), csv) {
		t.Fatalf("Statement = %d, %v; wrote %d bytes of %d", n, err, buf.Len(), len(csv))
	}
	if req, _ := f.lastReceived(); len(req) != 0 {
		t.Errorf("a statement request carries a body: %q", req)
	}

	resign(t, f, csv, func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
	buf.Reset()
	if _, err := c.Statement(context.Background(), "2026-12-04", "", &buf); !errors.Is(err, quillclient.ErrUnverified) {
		t.Fatalf("an altered statement: %v, want ErrUnverified", err)
	}

	resign(t, f, csv, func(b []byte) []byte { return b[:len(b)-1] })
	if _, err := c.Statement(context.Background(), "2026-12-04", "", &bytes.Buffer{}); !errors.Is(err, quillclient.ErrUnverified) {
		t.Fatalf("a statement cut short: %v, want ErrUnverified", err)
	}
}

func TestClientListPayments(t *testing.T) {
	f := newFakeQuill(t)
	c, err := quillclient.NewClient(f.srv.URL, f.transport(t))
	if err != nil {
		t.Fatal(err)
	}
	resign(t, f, []byte(`{"data":[{"id":"pay_1","kind":"payment","order_id":"ORD1","amount":"1.00","entry_id":1}],"has_more":false}`), nil)
	var got []string
	for p, err := range c.Payments(context.Background(), quillclient.ListQuery{Limit: 5, Status: "succeeded"}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.OrderID+" "+p.Amount)
	}
	if len(got) != 1 || got[0] != "ORD1 1.00" {
		t.Fatalf("payments %v", got)
	}
	resign(t, f, []byte(`{"data":[],"has_more":false}`), func(b []byte) []byte { return append(b, ' ') })
	if _, err := c.ListPayments(context.Background(), quillclient.ListQuery{}); !errors.Is(err, quillclient.ErrUnverified) {
		t.Fatalf("an altered page: %v, want ErrUnverified", err)
	}
	if _, err := quillclient.NewClient("quill.example", f.transport(t)); err == nil {
		t.Error("a base URL without a scheme was accepted")
	}
}
