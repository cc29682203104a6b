package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/certs"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger/postgres"
	merchantpg "github.com/quillpay/quill/merchant/postgres"
)

// auditConfig configures the auditor listener and the checkpointer.
type auditConfig struct {
	Addr               string        // --audit-addr QUILL_AUDIT_ADDR: auditor API (server TLS, bearer JWT); "off" disables
	Issuer             string        // --audit-issuer QUILL_AUDIT_ISSUER: required iss of auditor JWTs
	Audience           string        // --audit-audience QUILL_AUDIT_AUDIENCE: required aud of auditor JWTs
	CursorSecretFile   string        // --audit-cursor-secret-file QUILL_AUDIT_CURSOR_SECRET_FILE: hex HMAC key of cursors
	CheckpointInterval time.Duration // --checkpoint-interval QUILL_CHECKPOINT_INTERVAL: 0 disables periodic checkpoints
}

// bindAudit registers the auditor flags.
func bindAudit(fs *pflag.FlagSet, c *auditConfig) {
	fs.StringVar(&c.Addr, "audit-addr", envString("QUILL_AUDIT_ADDR", "127.0.0.1:8444"), `auditor API listen address, server TLS with bearer JWTs; "off" disables it (env QUILL_AUDIT_ADDR)`)
	fs.StringVar(&c.Issuer, "audit-issuer", envString("QUILL_AUDIT_ISSUER", "quill-dev-audit"), "required iss of auditor JWTs (env QUILL_AUDIT_ISSUER)")
	fs.StringVar(&c.Audience, "audit-audience", envString("QUILL_AUDIT_AUDIENCE", "quill-audit"), "required aud of auditor JWTs (env QUILL_AUDIT_AUDIENCE)")
	fs.StringVar(&c.CursorSecretFile, "audit-cursor-secret-file", envString("QUILL_AUDIT_CURSOR_SECRET_FILE", ""), "file with the hex HMAC key sealing auditor cursors, shared by every node (default <data-dir>/audit-cursor.secret) (env QUILL_AUDIT_CURSOR_SECRET_FILE)")
	fs.DurationVar(&c.CheckpointInterval, "checkpoint-interval", envDuration("QUILL_CHECKPOINT_INTERVAL", 10*time.Minute), "how often to sign a checkpoint of the chain head when it moved; 0 disables (env QUILL_CHECKPOINT_INTERVAL)")
}

// off reports whether the auditor listener is disabled ("off", or unset as in
// tests that do not want it).
func (c *auditConfig) off() bool { return c.Addr == "off" || c.Addr == "" }

func (c *auditConfig) validate() error {
	switch {
	case c.off():
	case c.Issuer == "" || c.Audience == "":
		return errors.New("auditor tokens need an issuer and an audience")
	case c.CheckpointInterval < 0:
		return errors.New("checkpoint interval must not be negative")
	case c.CheckpointInterval > 0 && c.CheckpointInterval < time.Second:
		return errors.New("checkpoint interval below 1s")
	}
	return nil
}

// auditorKeys adapts the key store to the token verifier: the auditor ring's
// keys usable now, registered for an algorithm a JWT can pin.
type auditorKeys struct {
	s   keyStore
	now func() time.Time
}

func (a auditorKeys) AuditorKey(ctx context.Context, kid string) (crypto.PublicKey, error) {
	k, err := a.s.PublicKey(ctx, keys.AuditorOwner, kid)
	switch {
	case errors.Is(err, keys.ErrUnavailable):
		return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	case err != nil:
		return nil, err
	case !k.UsableAt(a.now()):
		return nil, keys.ErrRevoked
	}
	switch k.Algorithm {
	case keys.Ed25519, keys.ECDSAP256SHA256, keys.RSAPKCS1SHA256:
		return k.Public, nil
	}
	return nil, fmt.Errorf("auditor key %s is registered for %s, which no JWT alg pins", kid, k.Algorithm)
}

// platformHistory gives auditors every platform key version; checkpoints
// verify with any that is not revoked.
type platformHistory struct{ s keyStore }

func (p platformHistory) PlatformKeyHistory(ctx context.Context) ([]keys.PublicKey, error) {
	return p.s.PublicKeys(ctx, keys.PlatformOwner)
}

func (p platformHistory) CheckpointKey(ctx context.Context, id string) (crypto.PublicKey, error) {
	k, err := p.s.PublicKey(ctx, keys.PlatformOwner, id)
	if err != nil {
		return nil, err
	}
	if k.Status == keys.Revoked {
		return nil, keys.ErrRevoked
	}
	return k.Public, nil
}

// auditDSN is the DSN the auditor API reads with: --pg-audit-dsn (the
// read-only role), else the --pg-read-dsn standby, else the primary, as for
// the reports (serve.go).
func (c *config) auditDSN() string {
	switch {
	case c.AuditDSN != "":
		return c.AuditDSN
	case c.PostgresReadDSN != "":
		return c.PostgresReadDSN
	}
	return c.PostgresDSN
}

func readCursorKey(c config) ([]byte, error) {
	path := c.Audit.CursorSecretFile
	if path == "" {
		path = filepath.Join(c.DataDir, "audit-cursor.secret")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit cursor secret (create it with quillctl dev init, point --audit-cursor-secret-file at one, or pass --audit-addr off): %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("audit cursor secret %s: want at least 32 bytes, hex-encoded", path)
	}
	return key, nil
}

// serveAudit starts the auditor listener (unless it is off) and the
// checkpointer, and returns the function that stops both. The checkpointer
// writes through store; auditors read through reports: the read-only role
// when --pg-audit-dsn is set, else the --pg-read-dsn standby, else the
// primary. Reports may lag the primary by the replication delay, which an
// as-of-time report does not mind.
func serveAudit(c config, log zerolog.Logger, o runOptions, store, reports *postgres.Store, ks keyStore, tlsOpts certs.ServerOptions) (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkpointer(ctx, c.Audit.CheckpointInterval, log, store, ks, o.now)
	}()
	stopCheckpointer := func() { cancel(); <-done }
	if c.Audit.off() && o.audit == nil {
		return stopCheckpointer, nil
	}
	key, err := readCursorKey(c)
	if err != nil {
		stopCheckpointer()
		return nil, err
	}
	// The operator audit log, read like the reports: as the read-only role
	// when --pg-audit-dsn is set.
	events, err := merchantpg.Open(ctx, c.auditDSN(), 2)
	if err != nil {
		stopCheckpointer()
		return nil, err
	}
	stopCheckpointer = func() { cancel(); <-done; events.Close() }
	keysAdapter := platformHistory{ks}
	handler, err := api.NewAuditHandler(api.AuditDeps{
		Tokens: &audit.Verifier{
			Keys: auditorKeys{ks, o.now}, Issuer: c.Audit.Issuer, Audience: c.Audit.Audience,
			Now: o.now, Leeway: 5 * time.Second,
		},
		Reports:        reports,
		Checkpoints:    reports,
		CheckpointKeys: keysAdapter,
		PlatformKeys:   keysAdapter,
		Events:         events,
		CursorKey:      key,
		Log:            log,
		MerchantKeys:   ks,
	})
	if err != nil {
		stopCheckpointer()
		return nil, err
	}
	ln := o.audit
	if ln == nil {
		if ln, err = net.Listen("tcp", c.Audit.Addr); err != nil {
			stopCheckpointer()
			return nil, err
		}
	}
	// Server TLS only: auditors authenticate with their token, not a
	// certificate, so this listener never asks for one.
	conf := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: tlsOpts.Certificate, NextProtos: []string{"h2", "http/1.1"}}
	srv := &http.Server{
		Handler:           withConsole(c, handler, ln.Addr(), log, o.now), // console.go
		TLSConfig:         conf,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    api.ServerMaxHeaderBytes, // a signed 431 past api.MaxHeaderBytes; net/http's own beyond this
		// No WriteTimeout: an export streams for as long as it takes.
		ErrorLog: stdLogger(log.With().Str("component", "audit-http").Logger()),
	}
	go func() {
		if err := srv.Serve(tls.NewListener(ln, conf)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("audit listener failed")
		}
	}()
	log.Info().Str("audit_addr", ln.Addr().String()).Dur("checkpoint_interval", c.Audit.CheckpointInterval).Msg("auditor API serving")
	return func() {
		sctx, scancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		stopCheckpointer()
	}, nil
}

// checkpointer signs the chain head with the platform key every interval if
// it moved, until ctx ends. Failures are logged; the next tick tries again.
func checkpointer(ctx context.Context, every time.Duration, log zerolog.Logger, store *postgres.Store, ks keyStore, now func() time.Time) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k, err := ks.PlatformKey(ctx)
		if err != nil {
			log.Error().Err(err).Msg("checkpoint: no platform key")
			continue
		}
		cp, made, err := store.CreateCheckpoint(ctx, now(), k.ID(), k.Signer(), true)
		switch {
		case err != nil:
			log.Error().Err(err).Msg("checkpoint failed")
		case made:
			log.Info().Int64("seq", cp.Seq).Int64("checkpoint", cp.ID).Str("key_id", cp.KeyID).Msg("checkpoint signed")
		}
	}
}
