package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
)

// RequestRecord is what the access log knows of one finished request, handed
// to Deps.Observe (the metrics adapter) once per request, after the response
// was written. Every field has few values: Route is the chi route pattern
// ("/v1/payments/{order_id}"), never the raw path, and "" when no route
// matched (404, 405); Code is the problem code, "" for a success.
type RequestRecord struct {
	Route   string
	Method  string
	Status  int
	Code    string
	Latency time.Duration
}

// accessHooks are what the access-log point needs beyond the logger: the
// certificate's merchant for refusals that never got verified, and the
// observer (nil: none).
type accessHooks struct {
	identify Identify
	observe  func(RequestRecord)
}

// certMerchant names the merchant the client certificate identified, or "".
// It is only asked for refusals, where nothing verified names one.
func (h accessHooks) certMerchant(r *http.Request) string {
	if h.identify == nil {
		return ""
	}
	m, err := h.identify(r)
	if err != nil {
		return ""
	}
	return m
}

func (h accessHooks) record(r *http.Request, a *access, rec *recorder, took time.Duration) {
	if h.observe == nil {
		return
	}
	var route string
	if rc := chi.RouteContext(r.Context()); rc != nil {
		route = rc.RoutePattern()
	}
	h.observe(RequestRecord{Route: route, Method: r.Method, Status: rec.status, Code: a.code, Latency: took})
}

// millis is a latency in milliseconds, the unit of every *_ms log field.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
