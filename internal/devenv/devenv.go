// Package devenv creates and reads the dev material of a Quill installation: a
// dev CA, the server certificate, the platform signing key, the dev login
// service's payer-token key, and merchants (RSA signing key, key id, client
// certificate). Merchant profiles live in the registry (merchant/postgres),
// not here. quillctl, the dev script and the end-to-end tests use
// it so they agree on one layout:
//
//	<dir>/ca.pem, ca.key.pem              dev CA (trusts clients and signs the server)
//	<dir>/keys/                           the dev key store (keys.FileStore), with the
//	                                      TLS material in keys/tls/: server certificate for
//	                                      127.0.0.1 and localhost, client CA bundle, CRL, issuer
//	<dir>/platform.pub.pem                the current platform public key; its serial
//	                                      is in platform.serial
//	<dir>/platform-ed25519.pub.pem        the current scheme B (Ed25519) platform public key
//	<dir>/payer-signer.key.pem, .kid      the dev login service's payer-JWT key
//	<dir>/auditor-signer.key.pem, .kid    the dev auditor identity provider's JWT key
//	<dir>/audit-cursor.secret             HMAC key of the auditor API's opaque cursors
//	<dir>/merchants/<id>/client.pem, client.key.pem   mTLS client certificate
//	<dir>/merchants/<id>/signing.key.pem, key_id      request-signing key and serial_no
//	<dir>/merchants/<id>/algorithm        its algorithm, when not rsa-v1_5-sha256
//
// Every private key file is written 0600. This is dev material: production
// keeps private keys in Vault.
package devenv

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/quillpay/quill/certs"
	"github.com/quillpay/quill/internal/atomicfile"
	"github.com/quillpay/quill/internal/tlsadmin"
	"github.com/quillpay/quill/keys"
	ledgerpg "github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/merchant"
	merchantpg "github.com/quillpay/quill/merchant/postgres"
	"github.com/quillpay/quill/policy"
)

// Payer-token settings of the dev login service; the server's defaults match.
const (
	PayerIssuer    = "quill-dev-login"
	PayerAudience  = "quill"
	PayerAlgorithm = "EdDSA"
)

const (
	caValidity     = 10 * 365 * 24 * time.Hour
	leafValidity   = 2 * 365 * 24 * time.Hour
	privateFileMod = 0o600
)

// Init creates whatever dev material is missing under dir (CA, server
// certificate, platform key, payer-token key); existing material is kept, so it
// is safe to run on every start.
func Init(dir string, now time.Time) error {
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		return err
	}
	ca, err := ensureCA(dir, now)
	if err != nil {
		return err
	}
	store, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := initTLS(ctx, store, ca, now); err != nil {
		return err
	}
	if _, err := store.PlatformKey(ctx); errors.Is(err, keys.ErrNotFound) {
		if _, err := RotatePlatformKey(dir, 0, now); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if _, err := store.PlatformKeyOf(ctx, keys.PlatformEd25519Owner); errors.Is(err, keys.ErrNotFound) {
		if _, err := RotatePlatformEd25519Key(dir, 0, now); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := ensureAuditMaterial(dir, store, now); err != nil {
		return err
	}
	if !exists(filepath.Join(dir, "payer-signer.key.pem")) {
		signer, err := keys.Generate(keys.Ed25519, rand.Reader)
		if err != nil {
			return err
		}
		kid := keys.NewKeyID("PAYER_", rand.Reader)
		if err := store.AddPublicKey(ctx, keys.PayerOwner, keys.PublicKey{
			ID: kid, Owner: keys.PayerOwner, Algorithm: keys.Ed25519, Status: keys.Active,
			Public: signer.Public(), CreatedAt: now,
		}); err != nil {
			return err
		}
		if err := writeKey(filepath.Join(dir, "payer-signer.key.pem"), signer); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "payer-signer.kid"), []byte(kid+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// RotatePlatformKey adds a new RSA-2048 platform key (scheme A clients verify
// RSA) as the active signer; earlier keys keep verifying for overlap. It
// rewrites platform.pub.pem and platform.serial and returns the new serial.
func RotatePlatformKey(dir string, overlap time.Duration, now time.Time) (string, error) {
	store, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		return "", err
	}
	signer, err := keys.Generate(keys.RSAPKCS1SHA256, rand.Reader)
	if err != nil {
		return "", err
	}
	serial := keys.NewKeyID("", rand.Reader)
	if err := store.RotatePlatform(context.Background(), keys.NewPrivateKey(serial, keys.RSAPKCS1SHA256, signer), overlap); err != nil {
		return "", err
	}
	pubPEM, err := keys.MarshalPublicKeyPEM(signer.Public())
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "platform.pub.pem"), pubPEM, 0o644); err != nil {
		return "", err
	}
	return serial, os.WriteFile(filepath.Join(dir, "platform.serial"), []byte(serial+"\n"), 0o644)
}

// RotatePlatformEd25519Key adds a new Ed25519 key to the scheme B platform
// ring (keys.PlatformEd25519Owner) as its active signer; earlier keys keep
// verifying for overlap. Clients find it by id in GET /v1/certificates. It
// rewrites platform-ed25519.pub.pem and returns the new key id.
func RotatePlatformEd25519Key(dir string, overlap time.Duration, now time.Time) (string, error) {
	store, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		return "", err
	}
	signer, err := keys.Generate(keys.Ed25519, rand.Reader)
	if err != nil {
		return "", err
	}
	id := keys.NewKeyID("PB_", rand.Reader)
	if err := (keys.Manager{Rings: store}).RotatePlatformOf(context.Background(), keys.PlatformEd25519Owner, keys.NewPrivateKey(id, keys.Ed25519, signer), overlap); err != nil {
		return "", err
	}
	pubPEM, err := keys.MarshalPublicKeyPEM(signer.Public())
	if err != nil {
		return "", err
	}
	return id, os.WriteFile(filepath.Join(dir, "platform-ed25519.pub.pem"), pubPEM, 0o644)
}

func ensureCA(dir string, now time.Time) (*certs.CA, error) {
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key.pem")
	if exists(certFile) {
		return loadCA(dir)
	}
	ca, err := certs.NewCA("Quill Dev CA", caValidity, now)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.PEM()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, keyPEM, privateFileMod); err != nil {
		return nil, err
	}
	return ca, os.WriteFile(certFile, certPEM, 0o644)
}

func loadCA(dir string) (*certs.CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key.pem"))
	if err != nil {
		return nil, err
	}
	return certs.LoadCA(certPEM, keyPEM)
}

// Merchant is a merchant's dev material, as its own backend would hold it.
type Merchant struct {
	ID         string
	KeyID      string
	SigningKey crypto.Signer
	// Algorithm is the one the signing key is registered with.
	Algorithm keys.Algorithm
	TLS       tls.Certificate
}

// MerchantDir is where a merchant's files live.
func MerchantDir(dir, id string) string { return filepath.Join(dir, "merchants", id) }

// IssueClientCert writes a new merchant's mTLS client certificate and key
// (0600) from the dev CA under MerchantDir(dir, id). It fails if the merchant
// has complete dev material already (key_id, see SaveSigningKey).
func IssueClientCert(dir, id string, now time.Time) error {
	if _, err := merchant.ParseID(id); err != nil {
		return err
	}
	md := MerchantDir(dir, id)
	if exists(filepath.Join(md, "key_id")) {
		return fmt.Errorf("devenv: merchant %s already has dev material in %s", id, md)
	}
	if err := os.MkdirAll(md, 0o700); err != nil {
		return err
	}
	store, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		return err
	}
	// The client certificate comes from the key store's issuer, as
	// `quillctl certs issue` does it.
	certPEM, keyPEM, err := tlsadmin.IssueClient(context.Background(), store, id, nil, leafValidity, now)
	if err != nil {
		return fmt.Errorf("devenv: issue client certificate (run quillctl dev init first): %w", err)
	}
	return writePair(md, "client", certPEM, keyPEM)
}

// HasClientCert reports whether merchant id has a dev client certificate,
// i.e. whether its signing key belongs in the dev layout.
func HasClientCert(dir, id string) bool {
	return exists(filepath.Join(MerchantDir(dir, id), "client.pem"))
}

// SaveSigningKey writes merchant id's request-signing key (0600), its public
// PEM and, last, its key id (key_id), replacing earlier ones atomically, so
// the merchant's dev tools sign with it from then on. Call it once the key
// is registered.
func SaveSigningKey(dir, id string, signer crypto.Signer, kid string) error {
	return saveSigningKey(dir, id, signer, kid, "")
}

// SaveSigningKeyWithAlgorithm is SaveSigningKey for a key registered with
// alg: like AddMerchantWithAlgorithm it writes the algorithm file next to
// key_id when alg is not rsa-v1_5-sha256, and removes an earlier one when it
// is, so LoadMerchant reports the algorithm the new key is registered with.
func SaveSigningKeyWithAlgorithm(dir, id string, signer crypto.Signer, kid string, alg keys.Algorithm) error {
	if alg == "" {
		alg = keys.RSAPKCS1SHA256
	}
	return saveSigningKey(dir, id, signer, kid, alg)
}

// saveSigningKey writes the key files, the algorithm file unless alg is
// empty (leave it as it is), and key_id last.
func saveSigningKey(dir, id string, signer crypto.Signer, kid string, alg keys.Algorithm) error {
	md := MerchantDir(dir, id)
	b, err := keys.MarshalPrivateKeyPEM(signer)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(md, "signing.key.pem"), b, privateFileMod); err != nil {
		return err
	}
	pubPEM, err := keys.MarshalPublicKeyPEM(signer.Public())
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(md, "signing.pub.pem"), pubPEM, 0o644); err != nil {
		return err
	}
	algFile := filepath.Join(md, "algorithm")
	switch alg {
	case "":
	case keys.RSAPKCS1SHA256:
		if err := os.Remove(algFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	default:
		if err := atomicfile.Write(algFile, []byte(string(alg)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return atomicfile.Write(filepath.Join(md, "key_id"), []byte(kid+"\n"), 0o644)
}

// SavePlatformPublic rewrites platform.pub.pem and platform.serial after a
// platform-key rotation, if dir holds dev material (platform.serial exists).
func SavePlatformPublic(dir, serial string, pub crypto.PublicKey) error {
	if !exists(filepath.Join(dir, "platform.serial")) {
		return nil
	}
	pubPEM, err := keys.MarshalPublicKeyPEM(pub)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, "platform.pub.pem"), pubPEM, 0o644); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "platform.serial"), []byte(serial+"\n"), 0o644)
}

// SavePayerSigner replaces the dev login service's payer-JWT key and kid
// after a _payer rotation, if dir holds dev material; it reports whether it did.
func SavePayerSigner(dir string, signer crypto.Signer, kid string) (bool, error) {
	if !exists(filepath.Join(dir, "payer-signer.kid")) {
		return false, nil
	}
	b, err := keys.MarshalPrivateKeyPEM(signer)
	if err != nil {
		return false, err
	}
	if err := atomicfile.Write(filepath.Join(dir, "payer-signer.key.pem"), b, privateFileMod); err != nil {
		return false, err
	}
	return true, atomicfile.Write(filepath.Join(dir, "payer-signer.kid"), []byte(kid+"\n"), 0o644)
}

// AddMerchant onboards profile the way the tests and tools need it in one
// call: a dev client certificate, an RSA-2048 signing key registered as the
// first version of a new ring in the dev key store under dir, and the
// profile in reg, recorded as an operator event by "devenv". With a nil reg
// only the dev material is made: the caller registers the profile itself
// (tests whose database is not known yet).
func AddMerchant(ctx context.Context, dir string, reg merchant.Registry, profile policy.Merchant, now time.Time) (Merchant, error) {
	return AddMerchantWithAlgorithm(ctx, dir, reg, profile, keys.RSAPKCS1SHA256, now)
}

// AddMerchantWithAlgorithm is AddMerchant with a signing key for alg
// (rsa-v1_5-sha256, the only one scheme A takes; rsa-pss-sha512,
// ecdsa-p256-sha256 or ed25519 for scheme B), registered with that algorithm.
// A merchant whose algorithm is not rsa-v1_5-sha256 also gets an algorithm
// file next to key_id.
func AddMerchantWithAlgorithm(ctx context.Context, dir string, reg merchant.Registry, profile policy.Merchant, alg keys.Algorithm, now time.Time) (Merchant, error) {
	if err := policy.ValidateMerchant(profile); err != nil {
		return Merchant{}, err
	}
	if err := IssueClientCert(dir, profile.ID, now); err != nil {
		return Merchant{}, err
	}
	signer, err := keys.Generate(alg, rand.Reader)
	if err != nil {
		return Merchant{}, err
	}
	kid := keys.NewKeyID("", rand.Reader)
	if alg != keys.RSAPKCS1SHA256 {
		if err := os.WriteFile(filepath.Join(MerchantDir(dir, profile.ID), "algorithm"), []byte(string(alg)+"\n"), 0o644); err != nil {
			return Merchant{}, err
		}
	}
	store, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		return Merchant{}, err
	}
	if err := (keys.Manager{Rings: store}).Create(ctx, profile.ID, keys.PublicKey{
		ID: kid, Algorithm: alg, Public: signer.Public(), CreatedAt: now,
	}); err != nil {
		return Merchant{}, err
	}
	if reg != nil {
		if _, err := reg.Add(ctx, profile, merchant.Event{Actor: "devenv", NewKeyID: kid}); err != nil {
			return Merchant{}, err
		}
	}
	if err := SaveSigningKey(dir, profile.ID, signer, kid); err != nil {
		return Merchant{}, err
	}
	return LoadMerchant(dir, profile.ID)
}

// OpenRegistry migrates the database at dsn (as quill serve --migrate does)
// and opens its merchant registry, for tools and tests that onboard merchants
// before a server runs. Close it when done.
func OpenRegistry(ctx context.Context, dsn string) (*merchantpg.Store, error) {
	if err := ledgerpg.Migrate(ctx, dsn); err != nil {
		return nil, err
	}
	return merchantpg.Open(ctx, dsn, 4)
}

// LoadMerchant reads a merchant's dev material.
func LoadMerchant(dir, id string) (Merchant, error) {
	md := MerchantDir(dir, id)
	kid, err := os.ReadFile(filepath.Join(md, "key_id"))
	if err != nil {
		return Merchant{}, fmt.Errorf("devenv: merchant %s: %w", id, err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(md, "signing.key.pem"))
	if err != nil {
		return Merchant{}, err
	}
	signer, err := keys.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return Merchant{}, err
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(md, "client.pem"), filepath.Join(md, "client.key.pem"))
	if err != nil {
		return Merchant{}, err
	}
	alg := keys.RSAPKCS1SHA256
	if b, err := os.ReadFile(filepath.Join(md, "algorithm")); err == nil {
		alg = keys.Algorithm(strings.TrimSpace(string(b)))
	}
	return Merchant{ID: id, KeyID: strings.TrimSpace(string(kid)), SigningKey: signer, Algorithm: alg, TLS: pair}, nil
}

// MerchantExists reports whether id has complete dev material.
func MerchantExists(dir, id string) bool {
	return exists(filepath.Join(MerchantDir(dir, id), "key_id"))
}

// PayerToken issues a dev payer JWT for subject (a user id), as the platform's
// login service would.
func PayerToken(dir, subject string, ttl time.Duration, now time.Time) (string, error) {
	keyPEM, err := os.ReadFile(filepath.Join(dir, "payer-signer.key.pem"))
	if err != nil {
		return "", fmt.Errorf("devenv: payer signer (run quillctl dev init first): %w", err)
	}
	signer, err := keys.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return "", err
	}
	kid, err := os.ReadFile(filepath.Join(dir, "payer-signer.kid"))
	if err != nil {
		return "", err
	}
	return policy.IssuePayerToken(signer, PayerAlgorithm, strings.TrimSpace(string(kid)), PayerIssuer, PayerAudience, subject, ttl, now)
}

// ServerHosts are the names the dev server certificate is issued for.
var ServerHosts = []string{"127.0.0.1", "localhost", "::1"}

// initTLS puts whatever TLS material is missing into the key store: the dev
// CA as issuer and client CA bundle, an empty CRL, a server certificate.
func initTLS(ctx context.Context, store keys.TLSStore, ca *certs.CA, now time.Time) error {
	caPEM, caKey, err := ca.PEM()
	if err != nil {
		return err
	}
	fill := func(name keys.TLSName, f func(it *keys.TLSItem) error) error {
		err := store.EditTLS(ctx, name, func(it *keys.TLSItem, _ time.Time) error {
			if it.Validate() == nil {
				return keys.ErrExists
			}
			return f(it)
		})
		if errors.Is(err, keys.ErrExists) {
			return nil
		}
		return err
	}
	return errors.Join(
		fill(keys.TLSIssuer, func(it *keys.TLSItem) error {
			it.CertificatePEM, it.PrivateKeyPEM = caPEM, caKey
			return nil
		}),
		fill(keys.TLSClientCA, func(it *keys.TLSItem) error { it.BundlePEM = caPEM; return nil }),
		fill(keys.TLSCRL, func(it *keys.TLSItem) (err error) { it.CRLPEM, err = certs.NewCRL(ca, now); return err }),
		fill(keys.TLSServer, func(it *keys.TLSItem) (err error) {
			it.CertificatePEM, it.PrivateKeyPEM, err = ca.IssueServer(ServerHosts, leafValidity, now)
			return err
		}),
	)
}

func writePair(dir, name string, certPEM, keyPEM []byte) error {
	if err := os.WriteFile(filepath.Join(dir, name+".key.pem"), keyPEM, privateFileMod); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".pem"), certPEM, 0o644)
}

func writeKey(path string, k crypto.Signer) error {
	b, err := keys.MarshalPrivateKeyPEM(k)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, privateFileMod)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
