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

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/certs"
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
	now      func() time.Time // nil: time.Now
}

// run wires the server from c and serves until ctx ends, then drains.
func run(ctx context.Context, c config, log zerolog.Logger, o runOptions) error {
	if o.now == nil {
		o.now = time.Now
	}
	routeLibraryLogs(log)
	if c.Migrate {
		if err := postgres.Migrate(ctx, c.PostgresDSN); err != nil {
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

	rdb := redis.NewClient(&redis.Options{
		Addr:         c.RedisAddr,
		DialTimeout:  c.RedisTimeout,
		ReadTimeout:  c.RedisTimeout,
		WriteTimeout: c.RedisTimeout,
		PoolSize:     64,
		MaxRetries:   -1, // a retried SET NX could report a replay of our own claim
	})
	defer rdb.Close()

	ks, err := openKeys(ctx, c, log, o.now)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	defer ks.close()
	if ks.loadedAt != nil {
		met.KeyStore(ks.loadedAt, o.now, c.Keys.MaxStale)
	}
	merchants, err := policy.LoadDirectory(c.merchants())
	if err != nil {
		return fmt.Errorf("merchants: %w", err)
	}

	tlsOpts, err := serverTLS(c)
	if err != nil {
		return err
	}
	tlsConf := certs.ServerTLSConfig(tlsOpts)

	cryp, err := openCrypto(c.Crypto, log)
	if err != nil {
		return err
	}
	platform := signing.NewBackendKeys(platformSigner{ks}, cryp)
	if err := loadPlatformKey(ctx, platform); err != nil {
		return err
	}

	verifier := &signing.Verifier{
		Keys:             merchantKeys{ks},
		Nonces:           met.NonceStore(signingredis.NewNonceStore(rdb, c.RedisPrefix)),
		Window:           c.Window,
		Now:              o.now,
		IsPlatformSerial: platformSerials{ks}.is,
		Crypto:           cryp,
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
		Auth:      met.Authenticator(verifier, cryp.Name()),
		Identify:  func(r *http.Request) (string, error) { return tlsOpts.Identify(r.TLS) },
		Signer:    &signing.ResponseSigner{Keys: met.PlatformKeys(platform, metrics.SchemeA, cryp.Name()), Now: o.now},
		Merchants: merchants,
		Rules:     checker,
		Ledger:    store,
		Reader:    store,
		Platform:  publishedKeys{ks},
		Log:       log,
		MaxBody:   c.MaxBody,
		Failures:  failures,
		Observe:   met.ObserveRequest,
	})
	var draining atomic.Bool
	ops := api.NewOpsHandler(2*time.Second,
		api.ReadyCheck{Name: "serving", Check: func(context.Context) error {
			if draining.Load() {
				return errors.New("shutting down")
			}
			return nil
		}},
		api.ReadyCheck{Name: "postgres", Check: store.Ping},
		api.ReadyCheck{Name: "redis", Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		api.ReadyCheck{Name: "keys", Check: ks.ready},
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
		MaxHeaderBytes:    16 << 10,
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

func serverTLS(c config) (certs.ServerOptions, error) {
	var o certs.ServerOptions
	pool, err := certs.LoadCertPool(c.clientCA())
	if err != nil {
		return o, fmt.Errorf("client CA: %w", err)
	}
	reloader, err := certs.NewReloader(c.tlsCert(), c.tlsKey())
	if err != nil {
		return o, fmt.Errorf("server certificate: %w", err)
	}
	revoked, err := certs.LoadRevocationList(c.revoked())
	if err != nil {
		return o, fmt.Errorf("revocation list: %w", err)
	}
	return certs.ServerOptions{
		ClientCAs:   pool,
		Certificate: reloader.GetCertificate,
		IsRevoked:   revoked.IsRevoked,
	}, nil
}

// keyStore is what the server needs of a key backend (the dev file store, or
// Vault through keys.Cache): lookups by owner and id, and the platform keys
// to publish.
type keyStore interface {
	keys.Store
	api.PlatformKeys
}

// merchantKeys adapts the key store to the verifier: scheme A takes only keys
// registered for RSASSA-PKCS1-v1_5 with SHA-256 and usable at the request time.
type merchantKeys struct{ s keyStore }

func (m merchantKeys) VerifyingKey(ctx context.Context, merchant, id string, at time.Time) (crypto.PublicKey, error) {
	k, err := m.s.PublicKey(ctx, merchant, id)
	switch {
	case errors.Is(err, keys.ErrUnavailable):
		return nil, fmt.Errorf("%w: %w", signing.ErrUnavailable, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", signing.ErrUnknownKey, err)
	case !k.UsableAt(at):
		return nil, fmt.Errorf("%w: %s is %s", signing.ErrUnknownKey, id, k.Status)
	case k.Algorithm != keys.RSAPKCS1SHA256:
		return nil, fmt.Errorf("%w: key registered for %s", signing.ErrUnknownKey, k.Algorithm)
	}
	return k.Public, nil
}

// platformSigner gives the response signer the current platform key.
type platformSigner struct{ s keyStore }

func (p platformSigner) SigningKey(ctx context.Context) (string, crypto.Signer, error) {
	k, err := p.s.PlatformKey(ctx)
	if err != nil {
		return "", nil, err
	}
	return k.ID(), k.Signer(), nil
}

// platformSerials tells the verifier which serials are Quill's own, for the
// "you sent the platform serial" hint.
type platformSerials struct{ s keyStore }

func (p platformSerials) is(serial string) bool {
	_, err := p.s.PublicKey(context.Background(), keys.PlatformOwner, serial)
	return err == nil
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
