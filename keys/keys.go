package keys

import (
	"context"
	"crypto"
	"errors"
	"time"
)

// Errors returned by this package and its backends.
var (
	ErrNotFound = errors.New("keys: not found")
	ErrRevoked  = errors.New("keys: key revoked or past its grace period")
	// ErrUnavailable means the backend cannot be read and the cache is too stale.
	ErrUnavailable = errors.New("keys: store unavailable")
)

// Reserved owners. Merchant keys are owned by the merchant id.
const (
	PlatformOwner = "_platform" // Quill's response-signing keys
	PayerOwner    = "_payer"    // the login service's payer-JWT verification keys
	AuditorOwner  = "_auditor"  // the auditor-token (JWT) verification keys
)

// Status is where a key version is in its life.
type Status string

// Key statuses.
const (
	Active   Status = "active"   // signs and verifies
	Retiring Status = "retiring" // verifies until NotAfter, no longer signs
	Revoked  Status = "revoked"  // refused
)

// Algorithm is fixed by a key's registration, never chosen by a request.
type Algorithm string

// Algorithms.
const (
	RSAPKCS1SHA256  Algorithm = "rsa-v1_5-sha256"
	RSAPSSSHA512    Algorithm = "rsa-pss-sha512"
	ECDSAP256SHA256 Algorithm = "ecdsa-p256-sha256"
	Ed25519         Algorithm = "ed25519"
)

// PublicKey is one registered verification key.
type PublicKey struct {
	ID        string
	Owner     string
	Algorithm Algorithm
	Status    Status
	Public    crypto.PublicKey
	CreatedAt time.Time
	// NotAfter ends a retiring key's grace period (zero: no end until revoked).
	NotAfter time.Time
}

// UsableAt reports whether k verifies at t: active, or retiring before NotAfter.
func (k PublicKey) UsableAt(t time.Time) bool {
	switch k.Status {
	case Active:
		return true
	case Retiring:
		return k.NotAfter.IsZero() || t.Before(k.NotAfter)
	}
	return false
}

// Store reads keys. Implementations cache and refresh without restart.
type Store interface {
	// PublicKey returns owner's key id, or an error wrapping ErrNotFound
	// (or ErrUnavailable).
	PublicKey(ctx context.Context, owner, id string) (PublicKey, error)
	// PublicKeys lists all of owner's keys, newest first.
	PublicKeys(ctx context.Context, owner string) ([]PublicKey, error)
	// PlatformKey returns the active platform signing key (the newest active one).
	PlatformKey(ctx context.Context) (PrivateKey, error)
}
