// Package attack holds Quill's attack suite (issue 11, "Bad input and
// attacks"): the real `quill serve`, built by TestMain, on fresh dev material,
// its own PostgreSQL database and its own Redis key prefix, attacked over
// mutual TLS on loopback. Every case asserts two things: the request is
// refused with the documented status and stable code (or at the TLS
// handshake), and nothing changed — the ledger's entries, postings, balances
// and chain head, and where the check runs before the nonce is claimed, the
// nonce store. After the tests, TestMain stops the servers and reads their
// whole logs: no PEM block, token, signature or request body, and every line
// one JSON event.
//
// What each test shows is listed in SECURITY.md ("Attacks and what held").
// `go test -short` skips the package; the long fuzzing runs only from
// scripts/fuzz.sh. There is no non-test code here.
package attack
