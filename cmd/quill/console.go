package main

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/quillpay/quill/audit"
	"github.com/quillpay/quill/console"
	"github.com/quillpay/quill/internal/devenv"
)

// devConsoleTokenTTL is the lifetime of a token from the console's dev sign-in.
const devConsoleTokenTTL = 15 * time.Minute

// withConsole serves the auditor console under /console/ next to the
// auditor API on the same listener.
func withConsole(c config, apiHandler http.Handler, addr net.Addr, log zerolog.Logger, now func() time.Time) http.Handler {
	o := console.Options{Log: log}
	if consoleDevMode(c, addr) {
		o.DevToken = func(context.Context) (string, error) {
			return devenv.AuditorToken(c.DataDir, "console-dev", audit.All, devConsoleTokenTTL, now())
		}
		log.Warn().Msg("auditor console: dev sign-in enabled (dev key store, dev material, loopback listener)")
	}
	ch := console.Handler(o)
	mux := http.NewServeMux()
	mux.Handle("/console", ch)
	mux.Handle(console.Prefix, ch)
	mux.Handle("/", apiHandler)
	return mux
}

// consoleDevMode reports whether the server runs the dev configuration, the
// only one in which the console may mint tokens: keys from the dev file store
// (no Vault), a data directory holding dev material (the dev CA key and the
// dev auditor signer, which production never has), and the auditor listener
// on a loopback address.
func consoleDevMode(c config, addr net.Addr) bool {
	if c.Keys.VaultAddr != "" || !devenv.IsDev(c.DataDir) {
		return false
	}
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
