// Package devenv creates and reads the dev material of a Quill installation: a
// dev CA, the server certificate, the platform signing key, the dev login
// service's payer-token key, and merchants (RSA signing key, key id, client
// certificate). Merchant profiles live in the registry (merchant/postgres),
// not here. quillctl, the dev script and the end-to-end tests use
// it so they agree on one layout:
//
//	<dir>/ca.pem, ca.key.pem              dev CA (trusts clients and signs the server)
//	<dir>/server.pem, server.key.pem      server certificate for 127.0.0.1 and localhost
//	<dir>/revoked-serials.txt             revoked client certificate serials (hex)
//	<dir>/keys/                           the dev key store (keys.FileStore)
//	<dir>/platform.pub.pem                the current platform public key; its serial
//	                                      is in platform.serial
//	<dir>/payer-signer.key.pem, .kid      the dev login service's payer-JWT key
//	<dir>/merchants/<id>/client.pem, client.key.pem   mTLS client certificate
//	<dir>/merchants/<id>/signing.key.pem, key_id      request-signing key and serial_no
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
	if !exists(filepath.Join(dir, "server.pem")) {
		certPEM, keyPEM, err := ca.IssueServer([]string{"127.0.0.1", "localhost", "::1"}, leafValidity, now)
		if err != nil {
			return err
		}
		if err := writePair(dir, "server", certPEM, keyPEM); err != nil {
			return err
		}
	}
	store, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := store.PlatformKey(ctx); errors.Is(err, keys.ErrNotFound) {
		if _, err := RotatePlatformKey(dir, 0, now); err != nil {
			return err
		}
	} else if err != nil {
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
	TLS        tls.Certificate
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
	ca, err := loadCA(dir)
	if err != nil {
		return fmt.Errorf("devenv: load CA (run quillctl dev init first): %w", err)
	}
	if err := os.MkdirAll(md, 0o700); err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.IssueClient(id, leafValidity, now)
	if err != nil {
		return err
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
// profile in reg, recorded as an operator event by "devenv".
func AddMerchant(ctx context.Context, dir string, reg merchant.Registry, profile policy.Merchant, now time.Time) (Merchant, error) {
	if err := policy.ValidateMerchant(profile); err != nil {
		return Merchant{}, err
	}
	if err := IssueClientCert(dir, profile.ID, now); err != nil {
		return Merchant{}, err
	}
	signer, err := keys.Generate(keys.RSAPKCS1SHA256, rand.Reader)
	if err != nil {
		return Merchant{}, err
	}
	kid := keys.NewKeyID("", rand.Reader)
	store, err := keys.OpenFileStore(filepath.Join(dir, "keys"), keys.FileOptions{})
	if err != nil {
		return Merchant{}, err
	}
	if err := (keys.Manager{Rings: store}).Create(ctx, profile.ID, keys.PublicKey{
		ID: kid, Algorithm: keys.RSAPKCS1SHA256, Public: signer.Public(), CreatedAt: now,
	}); err != nil {
		return Merchant{}, err
	}
	if _, err := reg.Add(ctx, profile, merchant.Event{Actor: "devenv", NewKeyID: kid}); err != nil {
		return Merchant{}, err
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
	return Merchant{ID: id, KeyID: strings.TrimSpace(string(kid)), SigningKey: signer, TLS: pair}, nil
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

// ServerTLS returns the paths of the server certificate and key.
func ServerTLS(dir string) (certFile, keyFile string) {
	return filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key.pem")
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
