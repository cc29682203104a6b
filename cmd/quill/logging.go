package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/quillpay/quill/internal/netlimit"
)

// Every log line is one JSON event with a level: the libraries that write
// their own lines (net/http's ErrorLog, go-redis, the standard logger) are
// routed through zerolog here, and failed TLS handshakes, one line each in
// net/http, are counted by netlimit and summarised by logConnStats.

// levelWriter makes each line written by a standard *log.Logger one zerolog
// event at a fixed level.
type levelWriter struct {
	log   zerolog.Logger
	level zerolog.Level
}

func (w levelWriter) Write(p []byte) (int, error) {
	w.log.WithLevel(w.level).Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// stdLogger is a *log.Logger (for http.Server.ErrorLog) writing warnings to l:
// net/http reports there what went wrong with a client or a connection.
func stdLogger(l zerolog.Logger) *log.Logger {
	return log.New(levelWriter{l, zerolog.WarnLevel}, "", 0)
}

// redisLogger routes go-redis's messages (failed dials, pool trouble) to
// zerolog as warnings; the request that suffered is logged on its own with
// its status.
type redisLogger struct{ log zerolog.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.log.Warn().Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// routeLibraryLogs sends the process-wide loggers of the standard library
// and go-redis to l. They are globals: the last server started wins, which
// only matters to tests running several.
func routeLibraryLogs(l zerolog.Logger) {
	redis.SetLogger(redisLogger{l.With().Str("component", "redis").Logger()})
	log.SetFlags(0)
	log.SetOutput(levelWriter{l.With().Str("component", "stdlog").Logger(), zerolog.WarnLevel})
}

// logConnStats writes, every interval in which something happened, one line
// with the number of failed TLS handshakes (and a sample error) and of
// connections closed by a cap, instead of one line per event that anyone
// able to connect could trigger at will. It writes a last summary when ctx
// ends.
func logConnStats(ctx context.Context, ln *netlimit.Listener, l zerolog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			summarise(ln.TakeStats(), l, every)
			return
		case <-t.C:
			summarise(ln.TakeStats(), l, every)
		}
	}
}

func summarise(s netlimit.Stats, l zerolog.Logger, every time.Duration) {
	if s.HandshakeFailures == 0 && s.RefusedConns == 0 && s.RefusedPerKey == 0 {
		return
	}
	ev := l.Warn().Int64("tls_handshake_failures", s.HandshakeFailures).
		Int64("refused_max_conns", s.RefusedConns).
		Int64("refused_max_conns_per_merchant", s.RefusedPerKey).
		Int("open_conns", s.Conns).
		Dur("interval", every)
	if s.LastFailure != "" {
		ev = ev.Str("last_failure", s.LastFailure)
	}
	ev.Msg("connection summary")
}
