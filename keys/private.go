package keys

import (
	"crypto"
	"fmt"
)

// PrivateKey is a signing key that cannot be printed: String and Format redact
// the material and show only the id.
type PrivateKey struct {
	id  string
	alg Algorithm
	// signer is reached through a closure: fmt and reflection print a func
	// as an address, so even a PrivateKey in an unexported field (where fmt
	// cannot call Format) never shows material such as ed25519 key bytes.
	signer func() crypto.Signer
}

// NewPrivateKey wraps signer as key id with algorithm alg.
func NewPrivateKey(id string, alg Algorithm, signer crypto.Signer) PrivateKey {
	k := PrivateKey{id: id, alg: alg}
	if signer != nil {
		k.signer = func() crypto.Signer { return signer }
	}
	return k
}

// ID returns the key id (the serial clients select it by).
func (k PrivateKey) ID() string { return k.id }

// Algorithm returns the key's registered algorithm.
func (k PrivateKey) Algorithm() Algorithm { return k.alg }

// Signer returns the signer. Handle with care: never log it.
func (k PrivateKey) Signer() crypto.Signer {
	if k.signer == nil {
		return nil
	}
	return k.signer()
}

// Public returns the public half.
func (k PrivateKey) Public() crypto.PublicKey {
	if k.signer == nil {
		return nil
	}
	return k.signer().Public()
}

// String redacts the key material.
func (k PrivateKey) String() string { return "keys.PrivateKey{id=" + k.id + ", REDACTED}" }

// Format redacts the key material for every verb, including %#v.
func (k PrivateKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// GoString redacts the key material.
func (k PrivateKey) GoString() string { return k.String() }
