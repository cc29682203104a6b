package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/quillpay/quill/internal/reload"
)

// Source is where the TLS material comes from: the key store (file or
// Vault), adapted by cmd/quill. Each method returns the PEM as stored now.
type Source interface {
	ServerPair(ctx context.Context) (certPEM, keyPEM []byte, err error)
	ClientCABundle(ctx context.Context) ([]byte, error)
	CRL(ctx context.Context) ([]byte, error)
}

// LiveOptions configures NewLive.
type LiveOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnChange is called when loading one kind of material starts failing,
	// fails differently, or recovers (err nil), for the log.
	OnChange func(what string, err error)
	// OnUpdate is called when new material of one kind was loaded.
	OnUpdate func(what string)
}

// Live is the server's current TLS material — server certificate, client
// CA bundle, CRL — reloaded from a Source without restart. Each kind
// reloads on its own: a bad CRL keeps the last good CRL in force (and
// Ready reports it) without holding back a new server certificate.
// Existing connections keep the material they were established with;
// new handshakes use the new material.
type Live struct {
	src    Source
	now    func() time.Time
	server *reload.Value[*tls.Certificate]
	bundle *reload.Value[*Bundle]
	crl    *reload.Value[*CRL]
	noCAs  *x509.CertPool
}

// Names of the kinds of material, in logs and readiness.
const (
	WhatServer   = "TLS server certificate"
	WhatClientCA = "TLS client CA bundle"
	WhatCRL      = "TLS client CRL"
)

// NewLive returns material that has not loaded yet: call Reload (and Run).
// Until a kind loads, handshakes fail closed: no server certificate, no
// client CA trusted, every client certificate revoked.
func NewLive(src Source, o LiveOptions) *Live {
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Live{src: src, now: o.Now, noCAs: x509.NewCertPool()}
	opts := func(what string) reload.Options {
		ro := reload.Options{Name: what, Now: o.Now}
		if o.OnChange != nil {
			ro.OnChange = func(err error) { o.OnChange(what, err) }
		}
		if o.OnUpdate != nil {
			ro.OnUpdate = func() { o.OnUpdate(what) }
		}
		return ro
	}
	var lastPair, lastBundle, lastCRL []byte
	var crlBundle *Bundle
	l.server = reload.New(opts(WhatServer), func(ctx context.Context) (*tls.Certificate, bool, error) {
		certPEM, keyPEM, err := src.ServerPair(ctx)
		if err != nil {
			return nil, false, err
		}
		raw := append(append([]byte{}, certPEM...), keyPEM...)
		if bytes.Equal(raw, lastPair) {
			return nil, false, nil
		}
		pair, err := ParseServerPair(certPEM, keyPEM)
		if err != nil {
			return nil, false, err
		}
		lastPair = raw
		return pair, true, nil
	})
	l.bundle = reload.New(opts(WhatClientCA), func(ctx context.Context) (*Bundle, bool, error) {
		b, err := src.ClientCABundle(ctx)
		if err != nil {
			return nil, false, err
		}
		if bytes.Equal(b, lastBundle) {
			return nil, false, nil
		}
		bundle, err := ParseBundle(b)
		if err != nil {
			return nil, false, err
		}
		lastBundle = b
		return bundle, true, nil
	})
	l.crl = reload.New(opts(WhatCRL), func(ctx context.Context) (*CRL, bool, error) {
		b, err := src.CRL(ctx)
		if err != nil {
			return nil, false, err
		}
		bundle, ok := l.bundle.Current()
		if !ok {
			return nil, false, fmt.Errorf("%w: no client CA bundle to check the CRL against", ErrNotLoaded)
		}
		if bytes.Equal(b, lastCRL) && bundle == crlBundle {
			return nil, false, nil
		}
		crl, err := ParseCRL(b, bundle.CAs)
		if err != nil {
			return nil, false, err
		}
		lastCRL, crlBundle = b, bundle
		return crl, true, nil
	})
	return l
}

// Reload loads every kind of material now (the CA bundle before the CRL it
// checks) and returns the failures joined; each failing kind keeps its last
// good version.
func (l *Live) Reload(ctx context.Context) error {
	return errors.Join(l.server.Reload(ctx), l.bundle.Reload(ctx), l.crl.Reload(ctx))
}

// Run reloads every interval and on each trigger until ctx ends.
func (l *Live) Run(ctx context.Context, interval time.Duration, trigger <-chan struct{}) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-trigger:
		}
		_ = l.Reload(ctx) // reported through Ready and OnChange
	}
}

// Ready returns nil when the latest load of every kind succeeded, else why
// not (which kind, since when, the error; the last good version serves).
func (l *Live) Ready(context.Context) error {
	return errors.Join(l.server.Err(), l.bundle.Err(), l.crl.Err())
}

// GetCertificate is a tls.Config.GetCertificate serving the current server
// certificate.
func (l *Live) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, ok := l.server.Current()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotLoaded, WhatServer)
	}
	return c, nil
}

// ClientCAs returns the current client CA pool (an empty pool, trusting
// nothing, before one loaded).
func (l *Live) ClientCAs() *x509.CertPool {
	if b, ok := l.bundle.Current(); ok {
		return b.Pool
	}
	return l.noCAs
}

// IsRevoked checks c against the current CRL; before one loaded every
// certificate counts as revoked.
func (l *Live) IsRevoked(c *x509.Certificate) bool {
	crl, _ := l.crl.Current()
	return crl.IsRevoked(c)
}

// ServerOptions returns options for ServerTLSConfig serving this material.
func (l *Live) ServerOptions() ServerOptions {
	return ServerOptions{ClientCAs: l.ClientCAs, Certificate: l.GetCertificate, IsRevoked: l.IsRevoked, Now: l.now}
}
