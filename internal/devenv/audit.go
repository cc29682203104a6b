package devenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/keys"
)

// Auditor-token settings of the dev identity provider; the server's defaults match.
const (
	AuditorIssuer   = "quill-dev-audit"
	AuditorAudience = "quill-audit"
)

// Files of the audit dev material.
const (
	auditorSignerFile = "auditor-signer.key.pem"
	auditorKIDFile    = "auditor-signer.kid"
	// AuditCursorSecretFile holds the hex HMAC key that seals auditor API cursors.
	AuditCursorSecretFile = "audit-cursor.secret"
)

// ensureAuditMaterial creates the dev auditor signing key (registered under
// keys.AuditorOwner) and the cursor secret, if missing.
func ensureAuditMaterial(dir string, store *keys.FileStore, now time.Time) error {
	if !exists(filepath.Join(dir, auditorSignerFile)) {
		signer, err := keys.Generate(keys.Ed25519, rand.Reader)
		if err != nil {
			return err
		}
		kid := keys.NewKeyID("AUDITOR_", rand.Reader)
		if err := store.AddPublicKey(context.Background(), keys.AuditorOwner, keys.PublicKey{
			ID: kid, Owner: keys.AuditorOwner, Algorithm: keys.Ed25519, Status: keys.Active,
			Public: signer.Public(), CreatedAt: now,
		}); err != nil {
			return err
		}
		if err := writeKey(filepath.Join(dir, auditorSignerFile), signer); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, auditorKIDFile), []byte(kid+"\n"), 0o644); err != nil {
			return err
		}
	}
	if !exists(filepath.Join(dir, AuditCursorSecretFile)) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, AuditCursorSecretFile), []byte(hex.EncodeToString(b)+"\n"), privateFileMod); err != nil {
			return err
		}
	}
	return nil
}

// IsDev reports whether dir holds dev material (the dev CA's private key and
// the dev auditor signer): production installations have neither.
func IsDev(dir string) bool {
	return exists(filepath.Join(dir, "ca.key.pem")) && exists(filepath.Join(dir, auditorSignerFile))
}

// AuditorToken issues a dev auditor JWT for subject, limited to scope (audit.All
// for every merchant), as the auditors' identity provider would.
func AuditorToken(dir, subject string, scope audit.Scope, ttl time.Duration, now time.Time) (string, error) {
	if !IsDev(dir) {
		return "", fmt.Errorf("devenv: %s holds no dev material: auditor tokens are minted only from dev keys", dir)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, auditorSignerFile))
	if err != nil {
		return "", err
	}
	signer, err := keys.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return "", err
	}
	kid, err := os.ReadFile(filepath.Join(dir, auditorKIDFile))
	if err != nil {
		return "", err
	}
	return audit.IssueToken(signer, audit.TokenOptions{
		KeyID: strings.TrimSpace(string(kid)), Issuer: AuditorIssuer, Audience: AuditorAudience,
		Subject: subject, Scope: scope, TTL: ttl, Now: now,
	})
}

// AuditCursorSecret reads the cursor HMAC key written by Init.
func AuditCursorSecret(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, AuditCursorSecretFile))
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(strings.TrimSpace(string(b)))
}
