package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/quillpay/quill/internal/atomicfile"
)

// TLSName names one item of TLS material in the key store.
type TLSName string

// TLS material items. The server reads the first three; TLSIssuer (the
// client CA's signing key) is for the operator CLI only.
const (
	TLSServer   TLSName = "server"    // the server certificate chain and its private key
	TLSClientCA TLSName = "client-ca" // the CA bundle client certificates must chain to
	TLSCRL      TLSName = "crl"       // the client CA's certificate revocation list
	TLSIssuer   TLSName = "issuer"    // the client CA certificate and key that issue client certificates and sign the CRL
)

// TLSNames lists every item, in the order the operator CLI shows them.
var TLSNames = []TLSName{TLSServer, TLSClientCA, TLSCRL, TLSIssuer}

// SecretPEM is the PEM text of a private key. It cannot be printed: fmt
// and JSON logging of a struct holding it show REDACTED.
type SecretPEM []byte

// String redacts the key.
func (SecretPEM) String() string { return "REDACTED" }

// Format redacts the key for every verb, including %#v.
func (p SecretPEM) Format(f fmt.State, _ rune) { fmt.Fprint(f, p.String()) }

// GoString redacts the key.
func (p SecretPEM) GoString() string { return p.String() }

// TLSItem is one item of TLS material as PEM text. Which fields an item
// holds is fixed by its name: server and issuer a certificate (chain) and a
// private key, client-ca a bundle, crl a CRL. The key store checks only the
// PEM framing; package certs checks the contents.
type TLSItem struct {
	Name           TLSName
	CertificatePEM []byte
	PrivateKeyPEM  SecretPEM
	BundlePEM      []byte
	CRLPEM         []byte
	UpdatedAt      time.Time
}

// MarshalJSON redacts the private key: an item that reaches a log shows
// its certificates but never its key. Backends store items through
// TLSFields, not through this.
func (it TLSItem) MarshalJSON() ([]byte, error) {
	f := it.Fields()
	if _, ok := f["private_key_pem"]; ok {
		f["private_key_pem"] = "REDACTED"
	}
	return json.Marshal(f)
}

// Fields is the item as a backend stores it: format, name, updated_at and
// the PEM fields it holds (certificate_pem, private_key_pem, bundle_pem,
// crl_pem), as strings. It includes the private key: never log it.
func (it TLSItem) Fields() map[string]any {
	f := map[string]any{"format": tlsFormat, "name": string(it.Name)}
	if !it.UpdatedAt.IsZero() {
		f["updated_at"] = it.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	for k, v := range map[string][]byte{
		"certificate_pem": it.CertificatePEM, "private_key_pem": it.PrivateKeyPEM,
		"bundle_pem": it.BundlePEM, "crl_pem": it.CRLPEM,
	} {
		if len(v) > 0 {
			f[k] = string(v)
		}
	}
	return f
}

// TLSItemFromFields parses what Fields returned (from a file or a Vault
// secret) as item name and validates it. Errors wrap ErrInvalid and never
// quote the material.
func TLSItemFromFields(name TLSName, f map[string]any) (TLSItem, error) {
	it := TLSItem{Name: name}
	bad := func(what string) (TLSItem, error) {
		return TLSItem{}, fmt.Errorf("%w: TLS item %s: %s", ErrInvalid, name, what)
	}
	if fmt.Sprint(f["format"]) != fmt.Sprint(tlsFormat) {
		return bad(fmt.Sprintf("format %v, want %d", f["format"], tlsFormat))
	}
	if n, _ := f["name"].(string); n != string(name) {
		return bad(fmt.Sprintf("names item %q", n))
	}
	for k, v := range f {
		var dst *[]byte
		switch k {
		case "format", "name":
			continue
		case "updated_at":
			s, _ := v.(string)
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return bad("updated_at is not an RFC 3339 time")
			}
			it.UpdatedAt = t
			continue
		case "certificate_pem":
			dst = &it.CertificatePEM
		case "private_key_pem":
			dst = (*[]byte)(&it.PrivateKeyPEM)
		case "bundle_pem":
			dst = &it.BundlePEM
		case "crl_pem":
			dst = &it.CRLPEM
		default:
			return bad("unknown field " + k)
		}
		s, ok := v.(string)
		if !ok {
			return bad(k + " is not a string")
		}
		*dst = []byte(s)
	}
	if err := it.Validate(); err != nil {
		return TLSItem{}, err
	}
	return it, nil
}

// TLSStore reads and changes TLS material. The file store and keys/vault
// implement it.
type TLSStore interface {
	// TLSItem returns item name, an error wrapping ErrNotFound if there is
	// none, ErrInvalid if it is malformed, or ErrUnavailable.
	TLSItem(ctx context.Context, name TLSName) (TLSItem, error)
	// EditTLS reads item name (empty if none), calls change with it and the
	// backend's clock, checks the result and persists it only if nobody
	// changed the item in between. It returns change's error, ErrInvalid,
	// ErrConflict or ErrUnavailable; in every error case the stored item is
	// unchanged.
	EditTLS(ctx context.Context, name TLSName, change func(it *TLSItem, now time.Time) error) error
}

// pemTypes are the PEM block types each field may hold.
var (
	certTypes = []string{"CERTIFICATE"}
	keyTypes  = []string{"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"}
	crlTypes  = []string{"X509 CRL"}
)

// Validate checks that it holds exactly the fields its name calls for, each
// PEM of the right block types. Errors wrap ErrInvalid and never quote the
// material.
func (it TLSItem) Validate() error {
	type field struct {
		name  string
		val   []byte
		types []string
	}
	var want, other []field
	all := map[string]field{
		"certificate_pem": {"certificate_pem", it.CertificatePEM, certTypes},
		"private_key_pem": {"private_key_pem", it.PrivateKeyPEM, keyTypes},
		"bundle_pem":      {"bundle_pem", it.BundlePEM, certTypes},
		"crl_pem":         {"crl_pem", it.CRLPEM, crlTypes},
	}
	var names []string
	switch it.Name {
	case TLSServer, TLSIssuer:
		names = []string{"certificate_pem", "private_key_pem"}
	case TLSClientCA:
		names = []string{"bundle_pem"}
	case TLSCRL:
		names = []string{"crl_pem"}
	default:
		return fmt.Errorf("%w: unknown TLS item %q", ErrInvalid, it.Name)
	}
	for _, n := range names {
		want = append(want, all[n])
		delete(all, n)
	}
	for _, f := range all {
		other = append(other, f)
	}
	for _, f := range other {
		if len(f.val) > 0 {
			return fmt.Errorf("%w: TLS item %s may not hold %s", ErrInvalid, it.Name, f.name)
		}
	}
	for _, f := range want {
		if err := checkPEM(f.val, f.types, f.name == "private_key_pem"); err != nil {
			return fmt.Errorf("%w: TLS item %s field %s: %w", ErrInvalid, it.Name, f.name, err)
		}
	}
	return nil
}

// checkPEM checks that b is one or more PEM blocks of the given types (one
// only for a key) and nothing else but whitespace.
func checkPEM(b []byte, types []string, single bool) error {
	n := 0
	for rest := b; len(bytes.TrimSpace(rest)) > 0; n++ {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return errors.New("not PEM")
		}
		ok := false
		for _, t := range types {
			ok = ok || blk.Type == t
		}
		if !ok {
			return fmt.Errorf("PEM block %q, want %v", blk.Type, types)
		}
	}
	switch {
	case n == 0:
		return errors.New("empty")
	case single && n > 1:
		return errors.New("more than one key")
	}
	return nil
}

// tlsFormat is the only TLS item file format the file store reads and writes.
const tlsFormat = 1

// tlsPath is where the file store keeps TLS item name: one 0600 JSON file each.
func (s *FileStore) tlsPath(name TLSName) string {
	return filepath.Join(s.dir, "tls", string(name)+".json")
}

// TLSItem reads item name from its file, or ErrNotFound. The file is read
// on every call: callers cache (cmd/quill reloads on an interval).
func (s *FileStore) TLSItem(ctx context.Context, name TLSName) (TLSItem, error) {
	if err := ctx.Err(); err != nil {
		return TLSItem{}, err
	}
	b, err := os.ReadFile(s.tlsPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return TLSItem{}, fmt.Errorf("%w: TLS item %s", ErrNotFound, name)
	}
	if err != nil {
		return TLSItem{}, fmt.Errorf("keys: TLS item %s: %w", name, err)
	}
	return decodeTLSFile(name, b)
}

func decodeTLSFile(name TLSName, b []byte) (TLSItem, error) {
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		return TLSItem{}, fmt.Errorf("%w: TLS item %s: not a TLS item file", ErrInvalid, name)
	}
	return TLSItemFromFields(name, f)
}

// EditTLS changes item name under the writers' lock (writers serialize
// rather than conflict) and replaces its file atomically.
func (s *FileStore) EditTLS(ctx context.Context, name TLSName, change func(it *TLSItem, now time.Time) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validTLSName(name) {
		return fmt.Errorf("%w: unknown TLS item %q", ErrInvalid, name)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "tls"), 0o700); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	unlock, err := atomicfile.Lock(filepath.Join(s.dir, lockFile))
	if err != nil {
		return err
	}
	defer unlock()
	it, err := s.TLSItem(ctx, name)
	if errors.Is(err, ErrNotFound) {
		it, err = TLSItem{Name: name}, nil
	}
	if err != nil {
		return err // never build on an item we cannot read
	}
	now := s.now()
	if err := change(&it, now); err != nil {
		return err
	}
	it.Name, it.UpdatedAt = name, now.UTC()
	if err := it.Validate(); err != nil {
		return err
	}
	out, err := json.MarshalIndent(it.Fields(), "", "  ")
	if err != nil {
		return fmt.Errorf("keys: TLS item %s: %w", name, err)
	}
	return s.writeFile(s.tlsPath(name), append(out, '\n'), 0o600)
}

func validTLSName(name TLSName) bool { return slices.Contains(TLSNames, name) }

var _ TLSStore = (*FileStore)(nil)

// ImportTLS copies every TLS item of from that to does not hold yet (for
// moving a dev store into Vault) and returns the names copied. An item
// already in to is left alone.
func ImportTLS(ctx context.Context, from, to TLSStore) ([]TLSName, error) {
	var copied []TLSName
	for _, name := range TLSNames {
		it, err := from.TLSItem(ctx, name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return copied, err
		}
		err = to.EditTLS(ctx, name, func(cur *TLSItem, _ time.Time) error {
			if cur.Validate() == nil {
				return ErrExists
			}
			*cur = it
			return nil
		})
		switch {
		case errors.Is(err, ErrExists):
		case err != nil:
			return copied, fmt.Errorf("TLS item %s: %w", name, err)
		default:
			copied = append(copied, name)
		}
	}
	return copied, nil
}
