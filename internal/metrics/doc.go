// Package metrics is Quill's Prometheus adapter: the one package that imports
// the Prometheus client. The domain packages know nothing of it; each exposes
// a small hook (api.Deps.Observe, postgres.Options.Observer, the interfaces
// signing already declares, a few read-only counters), and cmd/quill wires
// this package's collectors to them and serves Handler on the ops listener.
//
// What it guarantees: every label has a small, fixed set of values, whatever
// clients send. Routes are chi route patterns (unmatched requests share one
// value), methods outside the standard ones are "other", results are named
// outcomes rather than error text, and no label carries a merchant, key id,
// nonce or path. The series count therefore does not grow with traffic.
//
// It lives under internal/ rather than next to one domain because it observes
// several (api, signing, the ledger writer, keys, the listener); and not in
// api, so that the HTTP layer does not depend on a metrics library either.
package metrics
