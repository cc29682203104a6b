// Package dist holds Quill's topology tests: several real `quill serve`
// processes on one PostgreSQL and a six-node Redis Cluster, and Quill on a
// pg_auto_failover formation whose primary is killed under load. The engines
// are started on loopback by internal/cluster; the server is the quill binary
// built by TestMain, so each node has its own process, pools and ledger
// writer, exactly as in production. There is no non-test code here.
//
// The tests take a couple of minutes on two cores; `go test -short` skips them.
package dist
