package buildinfo

import (
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	old := version
	defer func() { version = old }()
	version = "v9.8.7"
	if got := Version(); !strings.HasPrefix(got, "v9.8.7") {
		t.Fatalf("Version() = %q with the version set at build time", got)
	}
	version = ""
	if got := Version(); got == "" || strings.HasPrefix(got, " ") {
		t.Fatalf("Version() = %q", got)
	}
}
