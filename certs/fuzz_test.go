package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"strings"
	"testing"

	"github.com/quillpay/quill/merchant"
)

func FuzzMerchantID(f *testing.F) {
	f.Add("M100", "quill://merchant/M200", "")
	f.Add("M100", "quill://merchant/M1", "quill://merchant/M2")
	f.Add("", "QUILL://merchant/M%31", "spiffe://x/y")
	f.Add("a b", "quill://merchant/../x", "")
	f.Fuzz(func(t *testing.T, cn, uri1, uri2 string) {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
		for _, s := range []string{uri1, uri2} {
			if u, err := url.Parse(s); err == nil && s != "" {
				c.URIs = append(c.URIs, u)
			}
		}
		id, err := MerchantID(c)
		if err != nil {
			return
		}
		if !merchant.ValidID(id) {
			t.Fatalf("invalid id %q accepted", id)
		}
		quill := 0
		for _, u := range c.URIs {
			if strings.EqualFold(u.Scheme, "quill") {
				quill++
			}
		}
		switch {
		case quill > 1:
			t.Fatalf("accepted %d merchant URIs", quill)
		case quill == 0 && id != cn:
			t.Fatalf("id %q is not the CN %q", id, cn)
		}
	})
}
