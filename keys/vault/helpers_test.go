package vault

import (
	"context"
	"testing"
	"time"
)

var bg = context.Background()

// openStore opens a Store on the Vault at addr under prefix with token.
func openStore(tb testing.TB, addr, token, prefix string, now func() time.Time) *Store {
	tb.Helper()
	s, err := Open(Config{Address: addr, Token: token, Prefix: prefix, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}
