package certs

import (
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/quillpay/quill/merchant"
)

// MerchantID returns the merchant a client certificate names. A SAN URI
// quill://merchant/<id> wins over the subject CN; a certificate with more
// than one quill: URI, or a malformed one, is refused rather than guessed
// at. The id must be a merchant id (merchant.ParseID). Errors wrap ErrNoIdentity.
func MerchantID(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", ErrNoIdentity
	}
	var id string
	n := 0
	for _, u := range cert.URIs {
		if !strings.EqualFold(u.Scheme, "quill") {
			continue
		}
		if n++; n > 1 {
			return "", fmt.Errorf("%w: more than one merchant URI", ErrNoIdentity)
		}
		s := u.String()
		if !strings.HasPrefix(s, MerchantURIPrefix) || u.Host != "merchant" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return "", fmt.Errorf("%w: malformed merchant URI", ErrNoIdentity)
		}
		id = strings.TrimPrefix(s, MerchantURIPrefix)
	}
	if n == 0 {
		id = cert.Subject.CommonName
	}
	mid, err := merchant.ParseID(id)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoIdentity, err)
	}
	return string(mid), nil
}
