package console

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

//go:embed assets
var assets embed.FS

// Prefix is where the console is mounted on the auditor listener.
const Prefix = "/console/"

// ContentSecurityPolicy is sent with every console response. Scripts, styles,
// images and API calls come from the console's own origin only; nothing
// inline, no eval, no plugins, no <base>, no framing, no form posts (the
// sign-in form is handled by script).
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options configure the console.
type Options struct {
	// DevToken mints a dev auditor token. Set it only when the server runs
	// the dev configuration: when it is nil, POST /console/dev-token is 404
	// and the sign-in page offers no dev button.
	DevToken func(ctx context.Context) (string, error)
	Log      zerolog.Logger
}

// Handler serves the console under Prefix: the pages and their assets, the
// console's configuration (config.json) and, in dev mode only, the dev-token
// route.
func Handler(o Options) http.Handler {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /console/config.json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"dev_sign_in": o.DevToken != nil})
	})
	mux.HandleFunc("/console/dev-token", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case o.DevToken == nil:
			problem(w, http.StatusNotFound, "not_found", "No such page")
		case r.Method != http.MethodPost:
			w.Header().Set("Allow", http.MethodPost)
			problem(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST only")
		case !sameOrigin(r):
			// A cross-site page can make the browser POST here (it cannot read
			// the answer); refuse it anyway.
			problem(w, http.StatusForbidden, "forbidden", "Cross-site request refused")
		default:
			tok, err := o.DevToken(r.Context())
			if err != nil {
				o.Log.Error().Err(err).Msg("console: dev token not minted")
				problem(w, http.StatusInternalServerError, "internal", "internal error")
				return
			}
			o.Log.Info().Str("listener", "audit").Str("remote", r.RemoteAddr).Msg("console: dev auditor token minted")
			writeJSON(w, http.StatusOK, map[string]string{"token": tok})
		}
	})
	mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			problem(w, http.StatusMethodNotAllowed, "method_not_allowed", "GET only")
			return
		}
		p := strings.TrimPrefix(r.URL.Path, "/console")
		if p == "/" || p == "/index.html" {
			serveIndex(w, r, static)
			return
		}
		if strings.HasSuffix(p, "/") || path.Ext(p) == ".html" {
			problem(w, http.StatusNotFound, "not_found", "No such page")
			return
		}
		serveAsset(w, r, static, p)
	})
	return secure(mux)
}

func serveIndex(w http.ResponseWriter, r *http.Request, static fs.FS) {
	b, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// serveAsset answers one embedded asset, whole. It is not http.FileServer:
// the assets are small, so Range requests (whose parsing is the costly part
// of ServeContent, GO-2026-6609 on the Go this machine runs) and directory
// listings have no use here.
func serveAsset(w http.ResponseWriter, r *http.Request, static fs.FS, p string) {
	name := strings.TrimPrefix(path.Clean(p), "/")
	ctype := mime.TypeByExtension(path.Ext(name))
	b, err := fs.ReadFile(static, name)
	if !fs.ValidPath(name) || err != nil || ctype == "" {
		problem(w, http.StatusNotFound, "not_found", "No such page")
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// sameOrigin accepts a request the browser marks as same-origin (or one not
// from a browser at all: no Sec-Fetch-Site), and refuses cross-site ones.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "https://"+r.Host {
		return false
	}
	return true
}

// secure sets the security headers on every console response.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

func problem(w http.ResponseWriter, status int, code, title string) {
	b, _ := json.Marshal(map[string]any{"type": "https://quill.dev/problems/" + code, "title": title, "status": status, "code": code})
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
