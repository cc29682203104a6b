package api

import (
	"errors"
	"net/http"
)

// Header limits. net/http answers a request whose header block exceeds the
// server's MaxHeaderBytes itself, with an unsigned text/plain 431, before any
// handler runs. So the server's cap (ServerMaxHeaderBytes, which cmd/quill
// sets) is well above the limit Quill enforces (MaxHeaderBytes): between the
// two, the request reaches the envelope and is refused with a signed 431
// problem like every other refusal. Only past the server's cap, which an
// honest client never nears, is the answer net/http's own.
const (
	// MaxHeaderBytes is the largest request line plus header block Quill
	// serves; larger is a signed 431 headers_too_large.
	MaxHeaderBytes = 16 << 10
	// ServerMaxHeaderBytes is http.Server.MaxHeaderBytes for Quill's
	// listeners: the hard cap on what is read of a header block per request
	// (net/http reads up to 4 KiB beyond it), and so on its memory.
	ServerMaxHeaderBytes = 64 << 10
)

var errHeadersTooLarge = errors.New("api: request headers too large")

// headerSize is what the request line and header block of r take on the
// wire in HTTP/1.1 ("Name: value\r\n" per field, Host included), counted
// the same whichever protocol carried them.
func headerSize(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	n += len("Host: ") + len(r.Host) + 2
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + 2 + len(v) + 2
		}
	}
	return n + 2
}

// limitHeaders refuses a request whose header block is over max with
// errHeadersTooLarge, answered by write (signed, inside the merchant
// envelope). It runs first, before the request's headers are parsed for
// anything else.
func limitHeaders(max int, write func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if headerSize(r) > max {
				write(w, r, errHeadersTooLarge)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
