package keys

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"
)

// ErrExists is returned when a key id is already registered for its owner.
var ErrExists = errors.New("keys: key id already exists")

// ErrInvalid is returned for a key or keyring that breaks the store's rules
// (bad id or owner, unknown status, platform key without its private half…).
var ErrInvalid = errors.New("keys: invalid key")

// ErrConflict is returned when a ring changed between the read and the write
// of a change (another rotation won the race). Nothing was written; reading
// the ring again and retrying the change is safe.
var ErrConflict = errors.New("keys: ring changed concurrently, nothing written; retry")

var (
	ownerPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	idPattern    = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
)

// ValidOwner reports whether owner can name a ring (a merchant id or one of
// the reserved owners); backends use it before building a storage path.
func ValidOwner(owner string) bool { return ownerPattern.MatchString(owner) }

// record is one key version as stored.
type record struct {
	Version       int       `json:"version"`
	ID            string    `json:"id"`
	Algorithm     Algorithm `json:"algorithm"`
	Status        Status    `json:"status"`
	PublicKeyPEM  string    `json:"public_key_pem"`
	PrivateKeyPEM string    `json:"private_key_pem,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	RotatedAt     time.Time `json:"rotated_at,omitzero"`
	NotAfter      time.Time `json:"not_after,omitzero"`
}

// Format keeps records (which may carry private PEM) out of any printed error.
func (r record) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "record{id=%s, REDACTED}", r.ID) }

// Ring is one owner's key versions, as a backend stores it: version numbers
// 1, 2, … in the order the keys were added, and a minimum version below which
// every version is refused (like Vault transit's min_decryption_version).
// A ring accepts min_version <= v <= latest, minus revoked versions and
// retiring versions past their NotAfter.
//
// A Ring can hold platform private-key PEM, so it cannot be printed. Backends
// move it as bytes (MarshalJSON, DecodeRing) and change it only through
// RingEditor.EditRing, which keys' own operations (Manager) drive.
type Ring struct {
	owner string
	min   int
	recs  []record // ascending by Version
}

// ringJSON is a ring's stored form, the same in the file and in Vault.
type ringJSON struct {
	MinVersion int      `json:"min_version"`
	Versions   []record `json:"versions"`
}

// NewRing returns an empty ring for owner, or ErrInvalid for a bad owner.
func NewRing(owner string) (*Ring, error) {
	if !ValidOwner(owner) {
		return nil, fmt.Errorf("%w: owner %q", ErrInvalid, owner)
	}
	return &Ring{owner: owner, min: 1}, nil
}

// DecodeRing parses owner's ring from its stored JSON strictly and checks
// every version (key material, algorithms, version order). Empty input is an
// empty ring.
func DecodeRing(owner string, b []byte) (*Ring, error) {
	r, err := NewRing(owner)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return r, err
	}
	var rj ringJSON
	if err := decodeStrict(b, &rj); err != nil {
		return nil, fmt.Errorf("%w: ring %s: %w", ErrInvalid, owner, err)
	}
	r.min, r.recs = rj.MinVersion, rj.Versions
	if _, err := r.parse(); err != nil {
		return nil, err
	}
	return r, nil
}

// MarshalJSON encodes the ring in its stored form.
func (r *Ring) MarshalJSON() ([]byte, error) {
	return json.Marshal(ringJSON{MinVersion: r.min, Versions: r.recs})
}

// Owner returns whose keys the ring holds.
func (r *Ring) Owner() string { return r.owner }

// Latest returns the newest version number (0 for an empty ring).
func (r *Ring) Latest() int {
	if len(r.recs) == 0 {
		return 0
	}
	return r.recs[len(r.recs)-1].Version
}

// MinVersion returns the oldest version the ring still accepts.
func (r *Ring) MinVersion() int { return r.min }

// String identifies the ring without key material.
func (r *Ring) String() string {
	return fmt.Sprintf("keys.Ring{owner=%s, versions=%d..%d, REDACTED}", r.owner, r.min, r.Latest())
}

// Format prints only String, for every verb.
func (r *Ring) Format(f fmt.State, _ rune) { fmt.Fprint(f, r.String()) }

// Keys lists the ring's keys, newest first, with effective statuses (a
// version below MinVersion reads as Revoked).
func (r *Ring) Keys() ([]PublicKey, error) {
	ok, err := r.parse()
	if err != nil {
		return nil, err
	}
	return slices.Clone(ok.newestFirst), nil
}

func (r *Ring) clone() *Ring {
	return &Ring{owner: r.owner, min: r.min, recs: slices.Clone(r.recs)}
}

// decodeStrict decodes one JSON value, refusing unknown fields and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err // json errors quote at most a type or field name, never values
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// ownerKeys is one parsed ring: what reads are served from.
type ownerKeys struct {
	newestFirst []PublicKey
	byID        map[string]PublicKey
	platform    PrivateKey // newest active platform key; zero if none
}

// parse validates every version of r and parses its keys.
func (r *Ring) parse() (*ownerKeys, error) {
	if !ValidOwner(r.owner) {
		return nil, fmt.Errorf("%w: owner %q", ErrInvalid, r.owner)
	}
	if r.min < 1 || r.min > max(r.Latest(), 1) {
		return nil, fmt.Errorf("%w: %s: min_version %d outside 1..%d", ErrInvalid, r.owner, r.min, r.Latest())
	}
	ok := &ownerKeys{byID: make(map[string]PublicKey, len(r.recs))}
	signers := map[string]crypto.Signer{} // platform owner only
	for i, rec := range r.recs {
		if rec.Version < 1 || (i > 0 && rec.Version <= r.recs[i-1].Version) {
			return nil, fmt.Errorf("%w: %s: version %d out of order", ErrInvalid, r.owner, rec.Version)
		}
		k, signer, err := parseRecord(r.owner, rec)
		if err != nil {
			return nil, err
		}
		if _, dup := ok.byID[k.ID]; dup {
			return nil, fmt.Errorf("%w: %s/%s", ErrExists, r.owner, k.ID)
		}
		if k.Version < r.min {
			k.Status = Revoked
		}
		ok.byID[k.ID] = k
		ok.newestFirst = append(ok.newestFirst, k)
		if signer != nil {
			signers[k.ID] = signer
		}
	}
	slices.Reverse(ok.newestFirst)
	for _, k := range ok.newestFirst {
		if IsPlatformOwner(r.owner) && k.Status == Active {
			ok.platform = NewPrivateKey(k.ID, k.Algorithm, signers[k.ID])
			break
		}
	}
	return ok, nil
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
	if owner == PlatformEd25519Owner && r.Algorithm != Ed25519 && r.Algorithm != ECDSAP256SHA256 {
		return PublicKey{}, nil, fmt.Errorf("%w: %s: the scheme B platform ring holds Ed25519 or ECDSA P-256 keys, not %s", ErrInvalid, where, r.Algorithm)
	}
	switch {
	case IsPlatformOwner(owner):
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
		ID: r.ID, Owner: owner, Version: r.Version, Algorithm: r.Algorithm, Status: r.Status,
		Public: pub, CreatedAt: r.CreatedAt, RotatedAt: r.RotatedAt, NotAfter: r.NotAfter,
	}, signer, nil
}

func samePublic(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// newRecord validates k for owner and encodes it for storage; created and
// the Active status fill in zero values. The ring assigns the version.
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

// newPlatformRecord encodes an active key pair of platform ring owner created at created.
func newPlatformRecord(owner string, k PrivateKey, created time.Time) (record, error) {
	if k.Signer() == nil {
		return record{}, fmt.Errorf("%w: platform key %q has no signer", ErrInvalid, k.ID())
	}
	if owner == PlatformEd25519Owner && k.Algorithm() != Ed25519 && k.Algorithm() != ECDSAP256SHA256 {
		return record{}, fmt.Errorf("%w: the scheme B platform ring holds Ed25519 or ECDSA P-256 keys, not %s", ErrInvalid, k.Algorithm())
	}
	r, err := newRecord(owner, PublicKey{ID: k.ID(), Algorithm: k.Algorithm(), Public: k.Public()}, created)
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

// add appends rec to the ring as the next version.
func (r *Ring) add(rec record) error {
	if slices.ContainsFunc(r.recs, func(x record) bool { return x.ID == rec.ID }) {
		return fmt.Errorf("%w: %s/%s", ErrExists, r.owner, rec.ID)
	}
	rec.Version = r.Latest() + 1
	r.recs = append(r.recs, rec)
	return nil
}

// rotate retires the ring's active versions until notAfter and adds rec,
// which must be active, as the next version.
func (r *Ring) rotate(rec record, now, notAfter time.Time) error {
	if rec.Status != Active {
		return fmt.Errorf("%w: a rotated-in key must be active, not %q", ErrInvalid, rec.Status)
	}
	if err := r.add(rec); err != nil {
		return err
	}
	for i := range r.recs[:len(r.recs)-1] {
		if r.recs[i].Status == Active {
			r.recs[i].Status, r.recs[i].NotAfter, r.recs[i].RotatedAt = Retiring, notAfter.UTC(), now.UTC()
		}
	}
	return nil
}

// setStatus moves key id to st. Revocation is final: a revoked key cannot be
// brought back (register a new key instead).
func (r *Ring) setStatus(id string, st Status, notAfter, now time.Time) error {
	switch st {
	case Active, Retiring, Revoked:
	default:
		return fmt.Errorf("%w: status %q", ErrInvalid, st)
	}
	i := slices.IndexFunc(r.recs, func(x record) bool { return x.ID == id })
	if i < 0 {
		return fmt.Errorf("%w: %s/%s", ErrNotFound, r.owner, id)
	}
	rec := &r.recs[i]
	if (rec.Status == Revoked || rec.Version < r.min) && st != Revoked {
		return fmt.Errorf("%w: %s/%s cannot be reinstated", ErrRevoked, r.owner, id)
	}
	if st != Active && rec.Status == Active {
		rec.RotatedAt = now.UTC()
	}
	rec.Status, rec.NotAfter = st, notAfter.UTC()
	return nil
}

// setMinVersion refuses every version below v. It only moves forward: an
// older version, once refused, stays refused.
func (r *Ring) setMinVersion(v int) error {
	switch {
	case len(r.recs) == 0:
		return fmt.Errorf("%w: %s has no keys", ErrNotFound, r.owner)
	case v < r.min:
		return fmt.Errorf("%w: %s: min_version %d below the current %d", ErrRevoked, r.owner, v, r.min)
	case v > r.Latest():
		return fmt.Errorf("%w: %s: min_version %d above the latest version %d", ErrInvalid, r.owner, v, r.Latest())
	}
	r.min = v
	return nil
}

// keyringVersion is the file format this package writes; it also reads
// version 1 (owners with key lists, before versions were numbered).
const keyringVersion = 2

// document is the dev store's keyring file: every ring, by owner. It holds
// private-key PEM for the platform owner, so it is never printed.
type document struct {
	Version int              `json:"version"`
	Rings   map[string]*Ring `json:"rings"`
}

// fileJSON is every form a keyring file may take.
type fileJSON struct {
	Version int                        `json:"version"`
	Rings   map[string]json.RawMessage `json:"rings,omitempty"`
	Owners  map[string][]record        `json:"owners,omitempty"` // version 1
}

// decodeDocument parses a keyring file strictly; empty input is an empty keyring.
func decodeDocument(b []byte) (*document, error) {
	doc := &document{Version: keyringVersion, Rings: map[string]*Ring{}}
	if len(bytes.TrimSpace(b)) == 0 {
		return doc, nil
	}
	var f fileJSON
	if err := decodeStrict(b, &f); err != nil {
		return nil, fmt.Errorf("%w: keyring: %w", ErrInvalid, err)
	}
	switch f.Version {
	case 1:
		for owner, recs := range f.Owners {
			for i := range recs {
				recs[i].Version = i + 1
			}
			doc.Rings[owner] = &Ring{owner: owner, min: 1, recs: recs}
		}
	case keyringVersion:
		if f.Owners != nil {
			return nil, fmt.Errorf("%w: keyring version 2 with version 1 owners", ErrInvalid)
		}
		for owner, raw := range f.Rings {
			var rj ringJSON
			if err := decodeStrict(raw, &rj); err != nil {
				return nil, fmt.Errorf("%w: keyring: ring %q: %w", ErrInvalid, owner, err)
			}
			doc.Rings[owner] = &Ring{owner: owner, min: rj.MinVersion, recs: rj.Versions}
		}
	default:
		return nil, fmt.Errorf("%w: keyring version %d, want %d", ErrInvalid, f.Version, keyringVersion)
	}
	return doc, nil
}

// ring returns owner's ring in d, creating an empty one.
func (d *document) ring(owner string) (*Ring, error) {
	if r := d.Rings[owner]; r != nil {
		return r, nil
	}
	r, err := NewRing(owner)
	if err == nil {
		d.Rings[owner] = r
	}
	return r, err
}

// encodeDocument renders doc for storage.
func encodeDocument(d *document) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("keys: encode keyring: %w", err)
	}
	return append(b, '\n'), nil
}

// snapshot is an immutable set of parsed rings: what every read is served from.
type snapshot struct {
	owners map[string]*ownerKeys
}

// buildSnapshot validates every ring of doc.
func buildSnapshot(doc *document) (*snapshot, error) {
	return newSnapshot(slices.Collect(maps.Values(doc.Rings)))
}

// newSnapshot validates and parses rings; two rings of one owner are invalid.
func newSnapshot(rings []*Ring) (*snapshot, error) {
	s := &snapshot{owners: make(map[string]*ownerKeys, len(rings))}
	for _, r := range rings {
		if _, dup := s.owners[r.owner]; dup {
			return nil, fmt.Errorf("%w: two rings for %q", ErrInvalid, r.owner)
		}
		ok, err := r.parse()
		if err != nil {
			return nil, err
		}
		s.owners[r.owner] = ok
	}
	return s, nil
}

func (s *snapshot) publicKey(owner, id string) (PublicKey, bool) {
	if ok := s.owners[owner]; ok != nil {
		k, found := ok.byID[id]
		return k, found
	}
	return PublicKey{}, false
}

func (s *snapshot) publicKeys(owner string) []PublicKey {
	if ok := s.owners[owner]; ok != nil {
		return slices.Clone(ok.newestFirst)
	}
	return nil
}

func (s *snapshot) platformKey() (PrivateKey, error) { return s.platformKeyOf(PlatformOwner) }

func (s *snapshot) platformKeyOf(owner string) (PrivateKey, error) {
	if !IsPlatformOwner(owner) {
		return PrivateKey{}, fmt.Errorf("%w: %q is not a platform ring", ErrInvalid, owner)
	}
	if ok := s.owners[owner]; ok != nil && ok.platform.Signer() != nil {
		return ok.platform, nil
	}
	return PrivateKey{}, fmt.Errorf("%w: no active key in %s", ErrNotFound, owner)
}

// platformPublicKeys lists the platform keys usable at now, newest first.
func (s *snapshot) platformPublicKeys(now time.Time) []PublicKey {
	return slices.DeleteFunc(s.publicKeys(PlatformOwner), func(k PublicKey) bool { return !k.UsableAt(now) })
}
