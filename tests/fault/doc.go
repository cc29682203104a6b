// Package fault holds Quill's fault tests: each breaks a dependency or Quill
// itself for real and checks what must hold — the ledger's invariants under
// concurrent load, double spends, duplicate storms, PostgreSQL SIGKILLed and
// its connection cut at COMMIT, Quill SIGKILLed with requests in flight,
// Redis down, restarted empty or evicting, and the replay window under a
// skewed or jumping clock. The servers are private (internal/sandbox):
// PostgreSQL, Redis and quill processes of this package's own, never the
// shared ones. Each test logs its figure; docs/RELIABILITY.md lists them.
//
// The package takes about a minute on two cores; QUILL_FAULT_LONG=1 runs
// longer loads, and `go test -short` skips the tests that start processes.
// There is no non-test code here.
package fault
