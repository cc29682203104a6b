package ledger

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// ErrBadCheckpoint means a checkpoint's signature does not verify with the
// key it names, or the key is not a platform key.
var ErrBadCheckpoint = errors.New("ledger: checkpoint signature does not verify")

const checkpointTag = "quill.ledger.checkpoint.v1"

// Checkpoint algorithms, named like the key store's (keys.Algorithm) values.
const (
	CheckpointRSA     = "rsa-v1_5-sha256"
	CheckpointECDSA   = "ecdsa-p256-sha256"
	CheckpointEd25519 = "ed25519"
)

// Checkpoint is a signed statement by Quill that the chain had Head as the
// hash of entry Seq (GenesisHash for Seq 0) at CreatedAt.
type Checkpoint struct {
	ID        int64 // storage order
	Seq       int64
	Head      [32]byte
	CreatedAt time.Time // microsecond precision, UTC (CanonicalTime)
	KeyID     string    // the platform key that signed
	Algorithm string    // one of the Checkpoint* algorithms
	Signature []byte
}

// CheckpointMessage returns the bytes a checkpoint's signature covers, in the
// package's canonical encoding: "quill.ledger.checkpoint.v1", seq (integer),
// head (32 bytes, length-prefixed), created_at (integer, microseconds since the
// Unix epoch), key id (string).
func CheckpointMessage(c Checkpoint) []byte {
	var e encoder
	e.str(checkpointTag)
	e.i64(c.Seq)
	e.bytes(c.Head[:])
	e.i64(c.CreatedAt.UnixMicro())
	e.str(c.KeyID)
	return e.b
}

// CheckpointAlgorithm returns the algorithm a platform public key signs
// checkpoints with: RSASSA-PKCS1-v1_5 with SHA-256 for RSA, ECDSA P-256 with
// SHA-256 (ASN.1 DER signature) or Ed25519.
func CheckpointAlgorithm(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return CheckpointRSA, nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return CheckpointECDSA, nil
		}
	case ed25519.PublicKey:
		return CheckpointEd25519, nil
	}
	return "", fmt.Errorf("ledger: no checkpoint algorithm for %T", pub)
}

// SignCheckpoint fills c's Algorithm and Signature, signing CheckpointMessage(c)
// with key (keyID names it; any crypto.Signer works, so an HSM or Vault does).
func SignCheckpoint(c Checkpoint, keyID string, key crypto.Signer) (Checkpoint, error) {
	alg, err := CheckpointAlgorithm(key.Public())
	if err != nil {
		return c, err
	}
	c.KeyID, c.Algorithm, c.CreatedAt = keyID, alg, CanonicalTime(c.CreatedAt)
	msg := CheckpointMessage(c)
	if alg == CheckpointEd25519 {
		c.Signature, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	} else {
		d := sha256.Sum256(msg)
		c.Signature, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		return c, fmt.Errorf("ledger: sign checkpoint: %w", err)
	}
	return c, nil
}

// VerifyCheckpoint checks c's signature with pub, the platform public key c
// names. The algorithm must be the one pub's type pins. It returns an error
// wrapping ErrBadCheckpoint if not.
func VerifyCheckpoint(c Checkpoint, pub crypto.PublicKey) error {
	alg, err := CheckpointAlgorithm(pub)
	if err != nil || alg != c.Algorithm {
		return fmt.Errorf("%w: checkpoint %d: algorithm %q does not match the key", ErrBadCheckpoint, c.ID, c.Algorithm)
	}
	msg := CheckpointMessage(c)
	d := sha256.Sum256(msg)
	ok := false
	switch k := pub.(type) {
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], c.Signature) == nil
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, d[:], c.Signature)
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, msg, c.Signature)
	}
	if !ok {
		return fmt.Errorf("%w: checkpoint %d at entry %d", ErrBadCheckpoint, c.ID, c.Seq)
	}
	return nil
}

// CheckpointKeys finds the platform public keys checkpoints name.
type CheckpointKeys interface {
	// CheckpointKey returns platform key id's public key, or an error if it is
	// unknown or revoked.
	CheckpointKey(ctx context.Context, id string) (crypto.PublicKey, error)
}

// ChainReport is the outcome of recomputing the chain over a range.
type ChainReport struct {
	From, To int64 // the range checked (entry ids)
	Head     int64 // the chain head when checked
	Entries  int64 // entries recomputed and found good
	// FirstBad is the first entry that fails (0: none), and Reason says how.
	// When only a checkpoint reveals a rewrite, FirstBad is the first entry
	// after the last checkpoint that still matched.
	FirstBad int64
	Reason   string
	// Checkpoints is how many checkpoints in the range were checked;
	// BadCheckpoint the id of the first that failed (0: none) and
	// CheckpointReason why.
	Checkpoints      int
	BadCheckpoint    int64
	CheckpointReason string
}

// OK reports whether nothing failed.
func (r ChainReport) OK() bool { return r.FirstBad == 0 && r.BadCheckpoint == 0 }

// Err returns nil if r is OK and otherwise an error wrapping ErrIntegrity
// (and ErrBadCheckpoint for a bad signature) that names the failure.
func (r ChainReport) Err() error {
	switch {
	case r.FirstBad != 0:
		return fmt.Errorf("%w: entry %d: %s", ErrIntegrity, r.FirstBad, r.Reason)
	case r.BadCheckpoint != 0:
		return fmt.Errorf("%w: %w: checkpoint %d: %s", ErrIntegrity, ErrBadCheckpoint, r.BadCheckpoint, r.CheckpointReason)
	}
	return nil
}

// Checkpoints stores and checks signed chain heads.
type Checkpoints interface {
	// CreateCheckpoint signs the current head at now with key (platform key
	// keyID) and stores it. If skipUnchanged and the newest checkpoint is
	// already at the head, it returns that one and false.
	CreateCheckpoint(ctx context.Context, now time.Time, keyID string, key crypto.Signer, skipUnchanged bool) (Checkpoint, bool, error)
	// ListCheckpoints returns up to limit checkpoints with id > afterID, oldest first.
	ListCheckpoints(ctx context.Context, afterID int64, limit int) ([]Checkpoint, error)
	// AuditChain recomputes the chain over entries from..to (0: open bounds)
	// and checks the checkpoints with seq in that range against it and their
	// signatures with keys. Integrity failures are in the report, not the
	// error, which is for a store that cannot answer (ErrUnavailable).
	AuditChain(ctx context.Context, from, to int64, keys CheckpointKeys) (ChainReport, error)
}
