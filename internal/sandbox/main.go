package sandbox

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// state is what Main prepares for the whole test process.
var state struct {
	dir   string // removed when the tests end
	quill string // the quill binary, "" under -short
}

// Main is a test package's TestMain body: it builds cmd/quill once (unless
// -short), runs the tests and removes what the package's sandboxes left in
// its temporary directory. Use it as os.Exit(sandbox.Main(m)).
func Main(m *testing.M) int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "quill-sandbox-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// PostgreSQL runs as the postgres user when the tests run as root: it
	// must reach the template cluster below this directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	state.dir = dir
	if !testing.Short() {
		state.quill = filepath.Join(dir, "quill")
		cmd := exec.Command("go", "build", "-o", state.quill, "github.com/quillpay/quill/cmd/quill")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "sandbox: build quill:", err)
			return 1
		}
	}
	return m.Run()
}

// QuillBinary returns the quill binary Main built; it fails tb when there is
// none (Main not used, or -short).
func QuillBinary(tb testing.TB) string {
	tb.Helper()
	if state.quill == "" {
		tb.Fatal("sandbox: no quill binary: call sandbox.Main from TestMain, without -short")
	}
	return state.quill
}

// poll calls f every interval until it returns nil, an error wrapping errStop
// (which ends the wait at once), or timeout passes; it returns the last error.
func poll(timeout, every time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || errors.Is(err, errStop) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(every)
	}
}
