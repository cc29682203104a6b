package ledger

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"time"
)

// ErrIntegrity means a stored entry, its hash chain or a balance does not
// match what recomputing it from the stored rows gives: the ledger was altered
// outside Quill, or there is a bug.
var ErrIntegrity = errors.New("ledger: integrity check failed")

// Domain-separation tags, the first field of each canonical encoding, so a
// digest of one kind can never be mistaken for another.
const (
	fingerprintTag = "quill.ledger.fingerprint.v1"
	evidenceTag    = "quill.ledger.evidence.v1"
	entryTag       = "quill.ledger.entry.v1"
)

// encoder builds a canonical encoding: every string or byte field is its
// length as a 4-byte big-endian unsigned integer followed by its bytes; every
// integer is 8 bytes big-endian two's complement. Fixed-width and
// length-prefixed fields make the encoding unambiguous.
type encoder struct {
	b  []byte
	ps []Posting // scratch for sorting postings
}

func (e *encoder) str(s string) {
	e.b = binary.BigEndian.AppendUint32(e.b, uint32(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bytes(p []byte) {
	e.b = binary.BigEndian.AppendUint32(e.b, uint32(len(p)))
	e.b = append(e.b, p...)
}

func (e *encoder) i64(v int64) { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }

// postings appends the count then each posting (account, currency, amount),
// sorted by account, then currency, then amount, so the order in which they
// were given or stored does not matter.
func (e *encoder) postings(ps []Posting) {
	e.i64(int64(len(ps)))
	e.ps = append(e.ps[:0], ps...)
	slices.SortFunc(e.ps, comparePostings)
	for _, p := range e.ps {
		e.str(p.Account)
		e.str(p.Currency)
		e.i64(p.Amount)
	}
}

func comparePostings(a, b Posting) int {
	return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Currency, b.Currency), cmp.Compare(a.Amount, b.Amount))
}

// SortedPostings returns a sorted copy of ps in canonical order: by account,
// then currency, then amount.
func SortedPostings(ps []Posting) []Posting {
	s := slices.Clone(ps)
	slices.SortFunc(s, comparePostings)
	return s
}

// Digester computes Fingerprint, EvidenceDigest and ChainHash — the same
// encodings, the same digests — reusing its buffers, for verifiers that
// hash millions of entries. The zero value is ready; it is not safe for
// concurrent use.
type Digester struct{ e encoder }

// Fingerprint returns Fingerprint(e).
func (d *Digester) Fingerprint(e Entry) [32]byte {
	d.e.b = d.e.b[:0]
	d.e.fingerprintInput(e)
	return sha256.Sum256(d.e.b)
}

// EvidenceDigest returns EvidenceDigest(ev).
func (d *Digester) EvidenceDigest(ev Evidence) [32]byte {
	d.e.b = d.e.b[:0]
	d.e.evidenceInput(ev)
	return sha256.Sum256(d.e.b)
}

// ChainHash returns ChainHash(prev, r, postings, evidenceDigest).
func (d *Digester) ChainHash(prev [32]byte, r Recorded, postings []Posting, evidenceDigest [32]byte) [32]byte {
	d.e.b = d.e.b[:0]
	d.e.chainInput(prev, r, postings, evidenceDigest)
	return sha256.Sum256(d.e.b)
}

// Fingerprint returns the digest of e's content: SHA-256 of its canonical
// encoding (see the package documentation), stored with the entry and
// covered by its chain hash. The evidence is not part of it, so a retry
// signed with a fresh nonce has the same fingerprint. Idempotency compares
// with Matches, which looks at fewer fields (not the derived fee).
func Fingerprint(e Entry) [32]byte {
	return sha256.Sum256(FingerprintInput(e))
}

// EvidenceDigest returns SHA-256 of the canonical encoding of ev: scheme, key
// id, authorization, method, target, body.
func EvidenceDigest(ev Evidence) [32]byte {
	return sha256.Sum256(EvidenceInput(ev))
}

// GenesisHash is the prev hash of the first entry: 32 zero bytes.
var GenesisHash [32]byte

// CanonicalTime truncates t to PostgreSQL's timestamptz precision
// (microseconds) in UTC; created_at must pass through it before hashing.
func CanonicalTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// ChainHash returns SHA-256(prev ‖ canonical entry) for the entry r with its
// postings and evidence digest. r.Replayed and r.Hash are not part of it.
func ChainHash(prev [32]byte, r Recorded, postings []Posting, evidenceDigest [32]byte) [32]byte {
	return sha256.Sum256(ChainInput(prev, r, postings, evidenceDigest))
}
