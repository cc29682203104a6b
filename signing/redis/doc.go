// Package redis is the Redis replay guard for package signing: a
// signing.NonceStore that claims each (merchant, nonce) pair with
//
//	SET <prefix>nonce:{<merchant>}:<nonce> 1 NX PX <ttl>
//
// What it guarantees: a nonce is claimed at most once per merchant while its key
// lives in Redis; a claim that Redis refuses (the key exists) is signing.ErrReplay;
// any error, timeout or cancelled context is an error wrapping
// signing.ErrUnavailable, because the outcome is then uncertain and the request
// must be refused with 503 (fail closed).
//
// The merchant id is a Redis Cluster hash tag, so all of a merchant's nonces hash
// to one slot and the store works unchanged on a cluster (each claim is a single
// key anyway).
//
// Optionally (WaitForReplicas) a claim counts only once Redis WAIT reports
// that enough replicas received it; fewer in time is ErrUnavailable. On a
// cluster client every failure also asks the client to reload its slot map,
// so claims reach a promoted replica as soon as the cluster has one.
//
// Caveats:
//
//   - This is not the durable replay stop. Redis loses keys on restart without
//     persistence, on failover to a replica that had not received them, and on
//     eviction under memory pressure. Nonce keys carry a TTL, so volatile-*
//     policies evict them as readily as allkeys-*: only noeviction (or no
//     maxmemory) is safe, and under it a full server refuses the SET, which
//     fails closed. CheckEviction asks the servers (INFO memory) and
//     GuardEviction makes claims fail closed until it passes, re-checking
//     periodically. The ledger's unique constraint on (merchant,
//     order id), checked in the same transaction as the postings, is what makes a
//     replayed payment harmless.
//   - SET NX is not idempotent. If a reply is lost after Redis stored the key, the
//     caller sees ErrUnavailable, and a retried command (by the client library or
//     the merchant) sees ErrReplay. Configure the client with short timeouts and
//     MaxRetries -1; merchants should retry with a fresh nonce.
package redis
