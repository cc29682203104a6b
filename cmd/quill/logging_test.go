package main

import (
	"context"
	"encoding/json"
	"log"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestLibraryLoggersWriteLeveledJSON checks each adapter: one JSON event
// with a level per line the library writes.
func TestLibraryLoggersWriteLeveledJSON(t *testing.T) {
	for _, c := range []struct {
		name  string
		write func(zerolog.Logger)
		msg   string
	}{
		{"http.Server ErrorLog", func(l zerolog.Logger) {
			stdLogger(l).Printf("http: superfluous response.WriteHeader call\n")
		}, "http: superfluous response.WriteHeader call"},
		{"go-redis", func(l zerolog.Logger) {
			redisLogger{l}.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 5, "refused")
		}, "redis: connection pool: failed to dial after 5 attempts: refused"},
		{"standard logger", func(l zerolog.Logger) {
			defer log.SetOutput(log.Writer())
			defer log.SetFlags(log.Flags())
			routeLibraryLogs(l)
			log.Printf("something a library said")
		}, "something a library said"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := &syncBuffer{} // routeLibraryLogs is global: other servers' goroutines may write here later
			c.write(zerolog.New(out))
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d lines: %q", len(lines), out.String())
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
				t.Fatalf("not JSON: %q", lines[0])
			}
			if ev["level"] != "warn" || ev["message"] != c.msg {
				t.Fatalf("event %v, want level warn and message %q", ev, c.msg)
			}
		})
	}
}
