package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quillpay/quill/api"
	"github.com/quillpay/quill/internal/netlimit"
)

// Latency buckets, in seconds. Requests and commits: 1 ms to 5 s. Signatures
// and nonce claims are sub-millisecond when healthy, so they start at 50 µs.
var (
	requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	fastBuckets    = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
	batchBuckets   = prometheus.ExponentialBuckets(1, 2, 12) // 1 … 2048 entries
)

// Metrics holds Quill's collectors in their own registry (not the global
// one, so tests and several servers in one process do not collide). It is
// safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	verifications   *prometheus.CounterVec
	signatures      *prometheus.CounterVec
	signDuration    *prometheus.HistogramVec
	nonceClaims     *prometheus.CounterVec
	nonceDuration   prometheus.Histogram
	batchSize       prometheus.Histogram
	commitDuration  prometheus.Histogram
}

// New registers Quill's collectors, with the Go runtime and process ones.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quill_http_requests_total",
		Help: "Merchant API requests answered, by chi route pattern, method, status and problem code (none for a success).",
	}, []string{"route", "method", "status", "code"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "quill_http_request_duration_seconds",
		Help:    "Merchant API request latency from routing to the last byte handed to the connection, by route and method.",
		Buckets: requestBuckets,
	}, []string{"route", "method"})
	m.verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quill_signature_verifications_total",
		Help: "Request signature verifications, by scheme, algorithm, crypto backend and result (ok or the refusal).",
	}, []string{"scheme", "algorithm", "backend", "result"})
	m.signatures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quill_response_signatures_total",
		Help: "Response signatures made with the platform key, by scheme, algorithm, crypto backend and result (ok or error).",
	}, []string{"scheme", "algorithm", "backend", "result"})
	m.signDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "quill_response_signature_duration_seconds",
		Help:    "Time to sign one response digest with the platform key.",
		Buckets: fastBuckets,
	}, []string{"scheme", "algorithm", "backend"})
	m.nonceClaims = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quill_nonce_claims_total",
		Help: "Nonce claims in the replay guard, by result: ok, replay, or error (store unreachable or uncertain: the request got a 503).",
	}, []string{"result"})
	m.nonceDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "quill_nonce_claim_duration_seconds",
		Help:    "Latency of one nonce claim (Redis SET NX PX), whatever its result.",
		Buckets: fastBuckets,
	})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "quill_ledger_batch_entries",
		Help:    "Entries written per committed ledger transaction (group commit).",
		Buckets: batchBuckets,
	})
	m.commitDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "quill_ledger_commit_duration_seconds",
		Help:    "Duration of the COMMIT of one ledger batch (the durable flush every 2xx waits for).",
		Buckets: requestBuckets,
	})
	m.reg.MustRegister(m.requests, m.requestDuration, m.verifications, m.signatures, m.signDuration,
		m.nonceClaims, m.nonceDuration, m.batchSize, m.commitDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format, for /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is where the collectors are registered, for tests and gatherers.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// unmatched is the route label of requests no route matched.
const unmatched = "unmatched"

// ObserveRequest counts one answered request; it is api.Deps.Observe.
func (m *Metrics) ObserveRequest(r api.RequestRecord) {
	route := r.Route
	if route == "" {
		route = unmatched
	}
	code := r.Code
	if code == "" {
		code = "none"
	}
	method := methodLabel(r.Method)
	m.requests.WithLabelValues(route, method, statusLabel(r.Status), code).Inc()
	m.requestDuration.WithLabelValues(route, method).Observe(r.Latency.Seconds())
}

// methodLabel keeps the method label bounded: a client may send any token.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// statusLabel is the status as text; net/http only writes 100–999.
func statusLabel(status int) string {
	if status < 100 || status > 999 {
		return "other"
	}
	return strconv.Itoa(status)
}

// BatchCommitted records one committed ledger batch; with it Metrics is a
// postgres.Options.Observer.
func (m *Metrics) BatchCommitted(size int, commit time.Duration) {
	m.batchSize.Observe(float64(size))
	m.commitDuration.Observe(commit.Seconds())
}

// LedgerQueue exports depth (postgres.Store.QueueDepth) as a gauge read at
// each scrape.
func (m *Metrics) LedgerQueue(depth func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quill_ledger_queue_depth",
		Help: "Entries waiting for the ledger writer; it grows when commits cannot keep up.",
	}, func() float64 { return float64(depth()) }))
}

// KeyStore exports the age of the keys served (now minus loadedAt, the last
// successful refresh of keys.Cache) and the staleness limit past which they
// are refused. Before the first load the age is -1.
func (m *Metrics) KeyStore(loadedAt func() time.Time, now func() time.Time, maxStale time.Duration) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quill_keys_age_seconds",
		Help: "Seconds since the key store last loaded the keys it serves (-1: never loaded).",
	}, func() float64 {
		at := loadedAt()
		if at.IsZero() {
			return -1
		}
		return now().Sub(at).Seconds()
	}), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quill_keys_max_stale_seconds",
		Help: "Key age past which the key store refuses to serve (answers 503).",
	}, func() float64 { return maxStale.Seconds() }))
}

// FailureLimiter exports the throttled-refusal count of l.
func (m *Metrics) FailureLimiter(l *api.FailureLimiter) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "quill_auth_failures_throttled_total",
		Help: "Refused, unauthenticated requests answered with the cached, signed 429 because their merchant passed --auth-fail-max.",
	}, func() float64 { return float64(l.Throttled()) }))
}

// Listener exports the merchant listener's limits: refused connections,
// failed handshakes and the open-connection and handshake gauges.
func (m *Metrics) Listener(ln *netlimit.Listener) {
	m.reg.MustRegister(listenerCollector{ln})
}

var (
	descHandshakeFailures = prometheus.NewDesc("quill_tls_handshake_failures_total",
		"TLS handshakes on the merchant listener that failed or timed out.", nil, nil)
	descRefused = prometheus.NewDesc("quill_conns_refused_total",
		"Connections closed by a limit: max_conns (at accept) or max_conns_per_merchant (after the handshake).", []string{"limit"}, nil)
	descConns = prometheus.NewDesc("quill_conns_open",
		"Open connections on the merchant listener.", nil, nil)
	descHandshakes = prometheus.NewDesc("quill_tls_handshakes_in_progress",
		"TLS handshakes holding a slot (at most --max-handshakes).", nil, nil)
)

// listenerCollector reads the listener's totals once per scrape.
type listenerCollector struct{ ln *netlimit.Listener }

var _ prometheus.Collector = listenerCollector{}

func (c listenerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHandshakeFailures
	ch <- descRefused
	ch <- descConns
	ch <- descHandshakes
}

func (c listenerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.ln.Totals()
	ch <- prometheus.MustNewConstMetric(descHandshakeFailures, prometheus.CounterValue, float64(s.HandshakeFailures))
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(s.RefusedConns), "max_conns")
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(s.RefusedPerKey), "max_conns_per_merchant")
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(s.Conns))
	ch <- prometheus.MustNewConstMetric(descHandshakes, prometheus.GaugeValue, float64(s.Handshakes))
}
