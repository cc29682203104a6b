package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/certs"
	"github.com/quillpay/quill/keys"
)

// tlsSource reads the server's TLS material from the key store (the dev
// file store or Vault): tls/server, tls/client-ca, tls/crl.
type tlsSource struct{ s keys.TLSStore }

func (t tlsSource) ServerPair(ctx context.Context) ([]byte, []byte, error) {
	it, err := t.s.TLSItem(ctx, keys.TLSServer)
	return it.CertificatePEM, it.PrivateKeyPEM, err
}

func (t tlsSource) ClientCABundle(ctx context.Context) ([]byte, error) {
	it, err := t.s.TLSItem(ctx, keys.TLSClientCA)
	return it.BundlePEM, err
}

func (t tlsSource) CRL(ctx context.Context) ([]byte, error) {
	it, err := t.s.TLSItem(ctx, keys.TLSCRL)
	return it.CRLPEM, err
}

// tlsRefresh is how often the server re-reads its TLS material: with the
// keys from Vault (--keys-refresh), every second from the dev file store
// (as the file store looks for key changes).
func tlsRefresh(c config) time.Duration {
	if c.Keys.VaultAddr != "" {
		return c.Keys.Refresh
	}
	return keys.DefaultReloadEvery
}

// openTLS loads the TLS material from the key store and keeps it fresh:
// every interval and on SIGHUP, which also reloads the keys. Material that
// fails to load at start leaves handshakes failing closed and /readyz
// saying why until a reload succeeds; a failure later keeps the last good
// material. Changes and failures are logged once each.
func openTLS(ctx context.Context, ks servingKeys, interval time.Duration, log zerolog.Logger, now func() time.Time) *certs.Live {
	tlog := log.With().Str("component", "tls").Logger()
	live := certs.NewLive(tlsSource{ks.tls}, certs.LiveOptions{
		Now: now,
		OnChange: func(what string, err error) {
			if err != nil {
				tlog.Error().Err(err).Str("material", what).Msg("TLS material failed to load; the last good version stays in force")
				return
			}
			tlog.Info().Str("material", what).Msg("TLS material loads again")
		},
		OnUpdate: func(what string) { tlog.Info().Str("material", what).Msg("TLS material loaded; new handshakes use it") },
	})
	_ = live.Reload(ctx) // failures are logged and on /readyz
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	trigger := make(chan struct{})
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				tlog.Info().Msg("SIGHUP: reloading keys and TLS material")
				if err := ks.reload(ctx); err != nil {
					tlog.Warn().Err(err).Msg("key reload on SIGHUP failed; the last good keys serve")
				}
				select {
				case trigger <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	go live.Run(ctx, interval, trigger)
	return live
}
