package keys

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// ErrExists is returned when a key id is already registered for its owner.
var ErrExists = errors.New("keys: key id already exists")

// ErrInvalid is returned for a key or keyring that breaks the store's rules
// (bad id or owner, unknown status, platform key without its private half…).
var ErrInvalid = errors.New("keys: invalid key")

var (
	ownerPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	idPattern    = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
)

// keyringVersion is the only file format version this package reads.
const keyringVersion = 1

// document is the keyring as stored: records per owner in insertion order.
// It holds private-key PEM for the platform owner, so it is never printed.
type document struct {
	Version int                 `json:"version"`
	Owners  map[string][]record `json:"owners"`
}

// record is one key version as stored.
type record struct {
	ID            string    `json:"id"`
	Algorithm     Algorithm `json:"algorithm"`
	Status        Status    `json:"status"`
	PublicKeyPEM  string    `json:"public_key_pem"`
	PrivateKeyPEM string    `json:"private_key_pem,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	NotAfter      time.Time `json:"not_after,omitzero"`
}

// Format keeps records (which may carry private PEM) out of any printed error.
func (r record) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "record{id=%s, REDACTED}", r.ID) }

// decodeDocument parses a keyring file strictly; empty input is an empty keyring.
func decodeDocument(b []byte) (*document, error) {
	doc := &document{Version: keyringVersion, Owners: map[string][]record{}}
	if len(bytes.TrimSpace(b)) == 0 {
		return doc, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(doc); err != nil {
		// json errors quote at most a type or field name, never values.
		return nil, fmt.Errorf("%w: keyring: %w", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: keyring: trailing data", ErrInvalid)
	}
	if doc.Version != keyringVersion {
		return nil, fmt.Errorf("%w: keyring version %d, want %d", ErrInvalid, doc.Version, keyringVersion)
	}
	if doc.Owners == nil {
		doc.Owners = map[string][]record{}
	}
	return doc, nil
}

// snapshot is an immutable, parsed keyring: what every read is served from.
type snapshot struct {
	owners map[string]*ownerKeys
}

type ownerKeys struct {
	newestFirst []PublicKey
	byID        map[string]PublicKey
	signers     map[string]crypto.Signer // platform owner only
	platform    PrivateKey               // newest active platform key; zero if none
}

// buildSnapshot validates every record of doc and parses its keys.
func buildSnapshot(doc *document) (*snapshot, error) {
	s := &snapshot{owners: make(map[string]*ownerKeys, len(doc.Owners))}
	for owner, recs := range doc.Owners {
		if !ownerPattern.MatchString(owner) {
			return nil, fmt.Errorf("%w: owner %q", ErrInvalid, owner)
		}
		ok := &ownerKeys{byID: make(map[string]PublicKey, len(recs))}
		signers := map[string]crypto.Signer{}     // platform owner only
		for _, r := range slices.Backward(recs) { // later records are newer on ties
			k, signer, err := parseRecord(owner, r)
			if err != nil {
				return nil, err
			}
			if _, dup := ok.byID[k.ID]; dup {
				return nil, fmt.Errorf("%w: %s/%s", ErrExists, owner, k.ID)
			}
			ok.byID[k.ID] = k
			ok.newestFirst = append(ok.newestFirst, k)
			if signer != nil {
				signers[k.ID] = signer
			}
		}
		slices.SortStableFunc(ok.newestFirst, func(a, b PublicKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
		for _, k := range ok.newestFirst {
			if owner == PlatformOwner && k.Status == Active {
				ok.platform = NewPrivateKey(k.ID, k.Algorithm, signers[k.ID])
				break
			}
		}
		s.owners[owner] = ok
	}
	return s, nil
}

// parseRecord checks r and returns its public key and, for the platform
// owner, its signer.
func parseRecord(owner string, r record) (PublicKey, crypto.Signer, error) {
	if !idPattern.MatchString(r.ID) {
		return PublicKey{}, nil, fmt.Errorf("%w: %s: key id %q", ErrInvalid, owner, r.ID)
	}
	where := owner + "/" + r.ID
	switch r.Status {
	case Active, Retiring, Revoked:
	default:
		return PublicKey{}, nil, fmt.Errorf("%w: %s: status %q", ErrInvalid, where, r.Status)
	}
	pub, err := ParsePublicKeyPEM([]byte(r.PublicKeyPEM))
	if err != nil {
		return PublicKey{}, nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := checkAlgorithm(r.Algorithm, pub); err != nil {
		return PublicKey{}, nil, fmt.Errorf("%s: %w", where, err)
	}
	var signer crypto.Signer
	switch {
	case owner == PlatformOwner:
		if r.PrivateKeyPEM == "" {
			return PublicKey{}, nil, fmt.Errorf("%w: %s: platform key without private key", ErrInvalid, where)
		}
		if signer, err = ParsePrivateKeyPEM([]byte(r.PrivateKeyPEM)); err != nil {
			return PublicKey{}, nil, fmt.Errorf("%s: %w", where, err)
		}
		if !samePublic(signer.Public(), pub) {
			return PublicKey{}, nil, fmt.Errorf("%w: %s: private key does not match public key", ErrInvalid, where)
		}
	case r.PrivateKeyPEM != "":
		return PublicKey{}, nil, fmt.Errorf("%w: %s: only platform keys may hold a private key", ErrInvalid, where)
	}
	return PublicKey{
		ID: r.ID, Owner: owner, Algorithm: r.Algorithm, Status: r.Status,
		Public: pub, CreatedAt: r.CreatedAt, NotAfter: r.NotAfter,
	}, signer, nil
}

func samePublic(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// newRecord validates k for owner and encodes it for storage; created and
// the Active status fill in zero values.
func newRecord(owner string, k PublicKey, created time.Time) (record, error) {
	if k.Owner != "" && k.Owner != owner {
		return record{}, fmt.Errorf("%w: key owner %q, adding to %q", ErrInvalid, k.Owner, owner)
	}
	if k.Public == nil {
		return record{}, fmt.Errorf("%w: no public key", ErrInvalid)
	}
	if k.Algorithm == "" {
		alg, err := AlgorithmOf(k.Public)
		if err != nil {
			return record{}, err
		}
		k.Algorithm = alg
	}
	if k.Status == "" {
		k.Status = Active
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = created
	}
	pemBytes, err := MarshalPublicKeyPEM(k.Public)
	if err != nil {
		return record{}, err
	}
	return record{
		ID: k.ID, Algorithm: k.Algorithm, Status: k.Status, PublicKeyPEM: string(pemBytes),
		CreatedAt: k.CreatedAt.UTC(), NotAfter: k.NotAfter.UTC(),
	}, nil
}

// newPlatformRecord encodes an active platform key pair created at created.
func newPlatformRecord(k PrivateKey, created time.Time) (record, error) {
	if k.Signer() == nil {
		return record{}, fmt.Errorf("%w: platform key %q has no signer", ErrInvalid, k.ID())
	}
	r, err := newRecord(PlatformOwner, PublicKey{ID: k.ID(), Algorithm: k.Algorithm(), Public: k.Public()}, created)
	if err != nil {
		return record{}, err
	}
	priv, err := MarshalPrivateKeyPEM(k.Signer())
	if err != nil {
		return record{}, err
	}
	r.PrivateKeyPEM = string(priv)
	return r, nil
}

// add appends r to owner's keys; the caller validates the result with
// buildSnapshot, which also rejects duplicate ids.
func (d *document) add(owner string, r record) error {
	if slices.ContainsFunc(d.Owners[owner], func(x record) bool { return x.ID == r.ID }) {
		return fmt.Errorf("%w: %s/%s", ErrExists, owner, r.ID)
	}
	d.Owners[owner] = append(d.Owners[owner], r)
	return nil
}

// rotate retires owner's active keys until notAfter and adds r, which must be active.
func (d *document) rotate(owner string, r record, notAfter time.Time) error {
	if r.Status != Active {
		return fmt.Errorf("%w: a rotated-in key must be active, not %q", ErrInvalid, r.Status)
	}
	recs := d.Owners[owner]
	for i := range recs {
		if recs[i].Status == Active {
			recs[i].Status, recs[i].NotAfter = Retiring, notAfter.UTC()
		}
	}
	return d.add(owner, r)
}

// setStatus moves owner's key id to st. Revocation is final: a revoked key
// cannot be brought back (register a new key instead).
func (d *document) setStatus(owner, id string, st Status, notAfter time.Time) error {
	switch st {
	case Active, Retiring, Revoked:
	default:
		return fmt.Errorf("%w: status %q", ErrInvalid, st)
	}
	recs := d.Owners[owner]
	i := slices.IndexFunc(recs, func(r record) bool { return r.ID == id })
	if i < 0 {
		return fmt.Errorf("%w: %s/%s", ErrNotFound, owner, id)
	}
	if recs[i].Status == Revoked && st != Revoked {
		return fmt.Errorf("%w: %s/%s cannot be reinstated", ErrRevoked, owner, id)
	}
	recs[i].Status, recs[i].NotAfter = st, notAfter.UTC()
	return nil
}

// encodeDocument renders doc for storage.
func encodeDocument(d *document) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keys: encode keyring: %w", err)
	}
	return append(b, '\n'), nil
}
