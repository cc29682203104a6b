package api

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// routeMethods are the methods chi can route, in the order Allow lists them.
var routeMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace,
}

// allowed returns the methods routes serves at path, asking the router
// itself (Find), so the list cannot drift from the registered routes.
func allowed(routes chi.Routes, path string) []string {
	var out []string
	for _, m := range routeMethods {
		if routes.Find(chi.NewRouteContext(), m, path) != "" {
			out = append(out, m)
		}
	}
	return out
}

// routingPath is the path chi routes r by: the escaped form when the
// request's path has one.
func routingPath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	if r.URL.Path == "" {
		return "/"
	}
	return r.URL.Path
}

// methodNotAllowed is a router's 405 handler: a 405 must say which methods
// the resource does serve (RFC 9110 §15.5.6), so Allow lists them as the
// router knows them. A method chi cannot route at all (FOO, or a method
// with no route anywhere) on a path that no method serves is a 404: there
// is no resource to allow anything on. write answers the error the way the
// router's own errors are answered.
func methodNotAllowed(routes chi.Routes, write func(http.ResponseWriter, *http.Request, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		methods := allowed(routes, routingPath(r))
		if len(methods) == 0 {
			write(w, r, errRouteNotFound)
			return
		}
		w.Header().Set("Allow", strings.Join(methods, ", "))
		write(w, r, errMethodNotAllowed)
	}
}
