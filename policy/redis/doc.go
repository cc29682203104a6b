// Package redis is the Redis-backed payer-token denylist of package policy.
//
// A revoked token id lives at <prefix>deny:jti:<jti> and a revoked subject at
// <prefix>deny:sub:<subject>, each with an optional TTL (a token id need only
// be denied until the token expires). Denied checks both keys in one
// pipelined round trip; the two keys may live on different Redis Cluster
// nodes, and the pipeline is cluster-safe where a multi-key MGET would not be.
//
// On a cluster client every failure also asks the client to reload its slot
// map, so checks reach a promoted replica as soon as the cluster has one.
//
// Guarantee: every Redis failure, timeout or cancellation is returned as an
// error wrapping policy.ErrUnavailable, never as "not denied", so callers
// fail closed.
package redis
