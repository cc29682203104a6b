// Package sandbox gives fault tests servers of their own that they may kill:
// a private PostgreSQL (initdb once per test process, a copy of that cluster
// per instance, postgres on a free loopback port), a private redis-server,
// Quill itself as a `quill serve` process built once per test process, and a
// TCP proxy that cuts, refuses or stops traffic at a PostgreSQL COMMIT.
//
// Nothing here touches the shared servers on 5432/6379: a test that SIGKILLs
// a process only kills its own. Processes run in their own process groups
// (internal/cluster) and are killed when the test ends; their logs and data
// live in temporary directories removed with them. When a binary is missing
// the helpers fail the test and name the Debian package (scripts/test.sh
// installs them).
//
// Helpers never assert on timing; their waits are generous deadlines because
// the machine may be loaded.
package sandbox
