package main

import (
	"fmt"
	"os"
	"testing"
)

// sharedTB lets the first test start a server that outlives it: cleanups and
// temp dirs belong to the process (run by TestMain), not to that test.
type sharedTB struct{ *testing.T }

var (
	sharedCleanups []func()
	sharedFailed   bool
)

func (s *sharedTB) Cleanup(f func()) { sharedCleanups = append(sharedCleanups, f) }

func (s *sharedTB) TempDir() string {
	d, err := os.MkdirTemp("", "quill-e2e-")
	if err != nil {
		s.T.Fatal(err)
	}
	s.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (s *sharedTB) Errorf(format string, args ...any) {
	sharedFailed = true
	fmt.Fprintf(os.Stderr, "shared server: "+format+"\n", args...)
}

func (s *sharedTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "shared server: "+format+"\n", args...)
}

func exitWith(code int) { os.Exit(code) }
