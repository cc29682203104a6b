// Package cluster starts real distributed engines on loopback for tests: a
// six-node Redis Cluster (three masters, three replicas), a Redis master and
// replica watched by three Sentinels, a pg_auto_failover
// formation (a monitor, a primary and a synchronous secondary) and Quill
// server processes, each on free ports with its state under a private
// directory.
//
// Every process runs in its own process group and is killed (SIGKILL to the
// group) when the test ends, so a failed test leaves nothing behind. Nothing
// here is a stand-in: the processes are redis-server, pg_autoctl/postgres and
// the quill binary. When a binary is missing the helpers fail the test with
// the apt-get package to install (scripts/test.sh installs them).
//
// Helpers never assert on timing; waits are bounded by generous deadlines
// because the machine may be loaded.
package cluster
