package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/certs"
	"github.com/quillpay/quill/internal/buildinfo"
	"github.com/quillpay/quill/internal/metrics"
	"github.com/quillpay/quill/internal/netlimit"
	"github.com/quillpay/quill/keys"
	"github.com/quillpay/quill/ledger/postgres"
	"github.com/quillpay/quill/policy"
	policyredis "github.com/quillpay/quill/policy/redis"
	"github.com/quillpay/quill/signing"
	signingredis "github.com/quillpay/quill/signing/redis"
)

func newLogger(level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(os.Stderr).Level(lvl).With().Timestamp().Str("svc", "quill").Logger()
}

// runOptions are what tests inject: sockets already bound (port 0) and a clock.
type runOptions struct {
	api, ops net.Listener     // nil: listen on c.Addr and c.OpsAddr
	audit    net.Listener     // nil: listen on c.Audit.Addr (unless "off")
	now      func() time.Time // nil: time.Now
}

// run wires the server from c and serves until ctx ends, then drains.
func run(ctx context.Context, c config, log zerolog.Logger, o runOptions) error {
	if o.now == nil {
		o.now = time.Now
	}
	routeLibraryLogs(log)
	if c.Migrate {
		if err := postgres.Migrate(ctx, c.migrateDSN()); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	met := metrics.New()
	store, err := postgres.Open(ctx, c.PostgresDSN, postgres.Options{MaxBatch: c.MaxBatch, Logger: log, Now: o.now, Observer: met})
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer store.Close()
	met.LedgerQueue(store.QueueDepth)
	reads, closeReads, err := openReadStore(ctx, c, log, o.now, store) // lag-tolerant reads: a standby
	if err != nil {
		return fmt.Errorf("ledger read replica: %w", err)
	}
	defer closeReads()
	reports := reads
	if c.AuditDSN != "" {
		if reports, err = postgres.Open(ctx, c.AuditDSN, postgres.Options{Logger: log, Now: o.now}); err != nil {
			return fmt.Errorf("ledger (auditor role): %w", err)
		}
		defer reports.Close()
	}

	rdb := newRedis(c) // redis.go: single, sentinel or cluster
	defer rdb.Close()

	ks, err := openKeys(ctx, c, log, o.now)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	defer ks.close()
	if ks.loadedAt != nil {
		met.KeyStore(ks.loadedAt, o.now, c.Keys.MaxStale)
	}
	merchants, closeMerchants, err := openMerchants(ctx, c, log, o.now)
	if err != nil {
		return fmt.Errorf("merchants: %w", err)
	}
	defer closeMerchants()

	liveTLS := openTLS(ctx, ks, tlsRefresh(c), log, o.now) // tls.go
	tlsOpts := liveTLS.ServerOptions()
	tlsConf := certs.ServerTLSConfig(tlsOpts)

	cryp, err := openCrypto(c.Crypto, log)
	if err != nil {
		return err
	}
	platform := signing.NewBackendKeys(platformSigner{ks, keys.PlatformOwner}, cryp)
	if err := loadPlatformKey(ctx, platform); err != nil {
		return err
	}

	// Scheme B responses are signed with the Ed25519 platform key on Go's
	// crypto whatever --crypto says: Go signs Ed25519 about twice as fast as
	// OpenSSL here (docs/BENCHMARKS.md).
	platformB := signing.NewBackendKeys(platformSigner{ks, keys.PlatformEd25519Owner}, signing.GoCrypto{})
	if _, _, err := platformB.SigningKey(ctx); err != nil {
		log.Warn().Err(err).Msg("no usable scheme B (Ed25519) platform key: scheme B requests are refused 503 until one is added (quillctl dev init creates it in dev)")
	}
	nonceStore := signingredis.NewNonceStore(rdb, c.RedisPrefix).WaitForReplicas(c.RedisWaitReplicas, c.RedisWaitTimeout).
		GuardEviction(evictionRecheck)
	// A Redis that may evict keys would drop nonces without an error: refuse
	// to start on one. One that cannot be asked now is checked again before
	// the first claim (GuardEviction), which fails closed until then.
	if err := nonceStore.CheckEviction(ctx); errors.Is(err, signingredis.ErrEvictingPolicy) {
		return fmt.Errorf("redis: %w", err)
	} else if err != nil {
		log.Warn().Err(err).Msg("redis eviction policy unknown at start: nonce claims are refused 503 until it can be checked")
	}
	nonces := met.NonceStore(nonceStore)
	verifier := verifiers{
		Verifier: &signing.Verifier{
			Keys:             merchantKeys{ks},
			Nonces:           nonces,
			Window:           c.Window,
			Now:              o.now,
			IsPlatformSerial: platformSerials{ks}.is,
			Crypto:           cryp,
		},
		b: &signing.MessageVerifier{
			Keys:          merchantKeys{ks},
			Nonces:        nonces,
			Window:        c.Window,
			Now:           o.now,
			IsPlatformKey: platformSerials{ks}.is,
		},
	}
	checker := policy.NewChecker(&policy.TokenVerifier{
		Keys:      payerKeys{ks, o.now},
		Denylist:  policyredis.NewDenylist(rdb, c.RedisPrefix),
		Issuer:    c.PayerIssuer,
		Audience:  c.PayerAudience,
		Algorithm: c.PayerAlgorithm,
		Leeway:    5 * time.Second,
		Now:       o.now,
	})
	failures := api.NewFailureLimiter(c.AuthFailMax, c.AuthFailWindow, c.AuthFailDelay, o.now)
	met.FailureLimiter(failures)
	handler := api.NewHandler(api.Deps{
		// Metrics count both schemes' verifications (scheme B on Go's crypto).
		Auth:     met.Authenticator(verifier, cryp.Name()),
		Identify: func(r *http.Request) (string, error) { return tlsOpts.Identify(r.TLS) },
		Signer:   &signing.ResponseSigner{Keys: met.PlatformKeys(platform, metrics.SchemeA, cryp.Name()), Now: o.now},
		// Scheme B answers: RFC 9421 with the Ed25519 platform key, always on
		// Go's crypto.
		MessageSigner: &signing.MessageResponseSigner{Keys: met.PlatformKeys(platformB, metrics.SchemeB, signing.GoCrypto{}.Name()), Now: o.now},
		Merchants:     merchants,
		Rules:         checker,
		Ledger:        store,
		Reader:        store,
		Platform:      publishedKeys{ks, o.now},
		Log:           log,
		MaxBody:       c.MaxBody,
		Failures:      failures,
		Observe:       met.ObserveRequest,
		Listings:      reads, // merchant listings and statements may lag like reports
		CursorKey:     merchantCursorKey(c, log),
	})
	var draining atomic.Bool
	ops := api.NewOpsHandler(buildinfo.Version(), 2*time.Second,
		api.ReadyCheck{Name: "serving", Check: func(context.Context) error {
			if draining.Load() {
				return errors.New("shutting down")
			}
			return nil
		}},
		api.ReadyCheck{Name: "postgres", Check: store.Ping},
		api.ReadyCheck{Name: "redis", Check: nonceStore.CheckEviction},
		api.ReadyCheck{Name: "keys", Check: ks.ready},
		api.ReadyCheck{Name: "tls", Check: liveTLS.Ready},
		api.ReadyCheck{Name: "merchants", Check: merchants.Ready},
		api.ReadyCheck{Name: "platform_key", Check: func(ctx context.Context) error { _, err := ks.PlatformKey(ctx); return err }},
		cryptoReady(cryp, platform),
	)
	opsMux := http.NewServeMux()
	opsMux.Handle("/", ops)
	opsMux.Handle("GET /metrics", met.Handler())
	if c.Pprof {
		opsMux.HandleFunc("/debug/pprof/", pprof.Index)
		opsMux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		opsMux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ops = opsMux

	stopAudit, err := serveAudit(c, log, o, store, reports, ks, tlsOpts)
	if err != nil {
		return fmt.Errorf("auditor API: %w", err)
	}
	defer stopAudit()

	if o.api == nil {
		if o.api, err = net.Listen("tcp", c.Addr); err != nil {
			return err
		}
	}
	if o.ops == nil {
		if o.ops, err = net.Listen("tcp", c.OpsAddr); err != nil {
			o.api.Close()
			return err
		}
	}
	errLog := log.With().Str("component", "http").Logger()
	apiSrv := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: min(5*time.Second, c.ReadTimeout),
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    api.ServerMaxHeaderBytes, // a signed 431 past api.MaxHeaderBytes; net/http's own beyond this
		// OPTIONS * would otherwise be answered by net/http, unsigned.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     stdLogger(errLog),
	}
	opsSrv := &http.Server{Handler: ops, ReadHeaderTimeout: 5 * time.Second, ErrorLog: stdLogger(errLog)}

	apiLn := netlimit.Listen(o.api, tlsConf, netlimit.Options{
		MaxConns:         c.MaxConns,
		MaxHandshakes:    c.MaxHandshakes,
		MaxConnsPerKey:   c.MaxConnsPerMerchant,
		HandshakeTimeout: c.HandshakeTimeout,
		Key: func(cs tls.ConnectionState) string {
			m, _ := certs.PeerMerchant(&cs) // VerifyConnection already refused a certificate without one
			return m
		},
	})
	met.Listener(apiLn)
	statsCtx, stopStats := context.WithCancel(context.Background())
	statsDone := make(chan struct{})
	go func() {
		defer close(statsDone)
		logConnStats(statsCtx, apiLn, log.With().Str("component", "tls").Logger(), c.ConnLogInterval)
	}()
	defer func() { stopStats(); <-statsDone }()

	errc := make(chan error, 2)
	go func() { errc <- apiSrv.Serve(apiLn) }()
	go func() { errc <- opsSrv.Serve(o.ops) }()
	log.Info().Str("addr", o.api.Addr().String()).Str("ops_addr", o.ops.Addr().String()).
		Dur("replay_window", c.Window).Msg("quill serving")

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("listener failed")
		}
	}
	// Not ready first, so a load balancer stops sending; then stop accepting
	// and drain. Past the budget, cut what is left before the ledger and
	// Redis close under it (the deferred closes).
	draining.Store(true)
	log.Info().Msg("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	err = apiSrv.Shutdown(sctx)
	if err != nil {
		log.Error().Err(err).Msg("drain budget exceeded: closing remaining connections")
		apiSrv.Close()
	}
	opsSrv.Shutdown(sctx)
	log.Info().Err(err).Msg("stopped")
	return err
}

// evictionRecheck is how often nonce claims re-check Redis's eviction policy
// (signingredis.GuardEviction): a CONFIG SET to an evicting policy stops
// claims within twice this.
const evictionRecheck = 5 * time.Second

// keyStore is what the server needs of a key backend (the dev file store, or
// Vault through keys.Cache): lookups by owner and id, the platform keys to
// publish, and the signing key of either platform ring.
type keyStore interface {
	keys.Store
	api.PlatformKeys
	PlatformKeyOf(ctx context.Context, owner string) (keys.PrivateKey, error)
}

// verifiers is the api's one Authenticator over both schemes: scheme A's
// Verifier and scheme B's MessageVerifier, sharing the key store, the nonce
// store and the window.
type verifiers struct {
	*signing.Verifier
	b *signing.MessageVerifier
}

func (v verifiers) VerifyMessage(ctx context.Context, r signing.MessageRequest) (signing.Verified, error) {
	return v.b.Verify(ctx, r)
}

// merchantKeys adapts the key store to the verifiers: a key usable at the
// request time, with the algorithm its ring version was registered with.
// Scheme A takes only keys registered for RSASSA-PKCS1-v1_5 with SHA-256.
type merchantKeys struct{ s keyStore }

func (m merchantKeys) lookup(ctx context.Context, merchant, id string, at time.Time) (keys.PublicKey, error) {
	k, err := m.s.PublicKey(ctx, merchant, id)
	switch {
	case errors.Is(err, keys.ErrUnavailable):
		return k, fmt.Errorf("%w: %w", signing.ErrUnavailable, err)
	case err != nil:
		return k, fmt.Errorf("%w: %w", signing.ErrUnknownKey, err)
	case !k.UsableAt(at):
		return k, fmt.Errorf("%w: %s is %s", signing.ErrUnknownKey, id, k.Status)
	}
	return k, nil
}

func (m merchantKeys) VerifyingKey(ctx context.Context, merchant, id string, at time.Time) (crypto.PublicKey, error) {
	k, err := m.lookup(ctx, merchant, id, at)
	switch {
	case err != nil:
		return nil, err
	case k.Algorithm != keys.RSAPKCS1SHA256:
		return nil, fmt.Errorf("%w: key registered for %s", signing.ErrUnknownKey, k.Algorithm)
	}
	return k.Public, nil
}

// RegisteredKey serves scheme B: keys.Algorithm names are the RFC 9421 ones.
func (m merchantKeys) RegisteredKey(ctx context.Context, merchant, id string, at time.Time) (signing.RegisteredKey, error) {
	k, err := m.lookup(ctx, merchant, id, at)
	if err != nil {
		return signing.RegisteredKey{}, err
	}
	return signing.RegisteredKey{Public: k.Public, Algorithm: signing.Algorithm(k.Algorithm)}, nil
}

// platformSigner gives a response signer the current key of one platform
// ring (keys.PlatformOwner for scheme A, keys.PlatformEd25519Owner for B).
type platformSigner struct {
	s     keyStore
	owner string
}

func (p platformSigner) SigningKey(ctx context.Context) (string, crypto.Signer, error) {
	k, err := p.s.PlatformKeyOf(ctx, p.owner)
	if err != nil {
		return "", nil, err
	}
	return k.ID(), k.Signer(), nil
}

// platformSerials tells the verifiers which key ids are Quill's own, for the
// "you sent the platform serial" hint.
type platformSerials struct{ s keyStore }

func (p platformSerials) is(serial string) bool {
	for _, owner := range []string{keys.PlatformOwner, keys.PlatformEd25519Owner} {
		if _, err := p.s.PublicKey(context.Background(), owner, serial); err == nil {
			return true
		}
	}
	return false
}

// payerKeys gives the payer-token verifier the login service's keys.
type payerKeys struct {
	s   keyStore
	now func() time.Time
}

func (p payerKeys) TokenKey(ctx context.Context, kid string) (crypto.PublicKey, error) {
	k, err := p.s.PublicKey(ctx, keys.PayerOwner, kid)
	if errors.Is(err, keys.ErrUnavailable) {
		return nil, fmt.Errorf("%w: %w", policy.ErrUnavailable, err)
	}
	if err != nil {
		return nil, err
	}
	if !k.UsableAt(p.now()) {
		return nil, keys.ErrRevoked
	}
	return k.Public, nil
}
