package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/licensor/licensor"
)

// CORS for the end-user API (/api/license/v4/...), so that a viewer's web
// app on another origin can call it with the user's bearer token. Off
// unless the operator names origins (Options.CORSOrigins); only those are
// answered, each by its own name: never "*", and never
// Access-Control-Allow-Credentials, since the token travels in the
// Authorization header, not in a cookie. The management API has no CORS: a
// BSS is no browser, and its API keys do not belong in one.

// corsAllowHeaders are the request headers a viewer app may send.
const corsAllowHeaders = "Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-Id"

// corsExposeHeaders are the response headers its scripts may read.
const corsExposeHeaders = "ETag, Location, Retry-After, X-Request-Id, Idempotent-Replayed, WWW-Authenticate"

// corsMaxAge is how long (seconds) a browser may reuse a preflight answer.
const corsMaxAge = "600"

// ParseOrigin checks an origin an operator allows for CORS: http or https,
// a host and an optional port, nothing else (no path, query, user or
// wildcard). It returns the origin as browsers send it in the Origin header:
// scheme and host in lower case, without a default port.
func ParseOrigin(s string) (string, error) {
	if strings.Contains(s, "*") {
		return "", fmt.Errorf("CORS origin %q: wildcards are not allowed; name each origin (https://app.example.com)", s)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("CORS origin %q must be scheme://host[:port] with http or https and nothing after it", s)
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	origin := u.Scheme + "://" + host
	if port != "" {
		origin += ":" + port
	}
	return origin, nil
}

// corsOrigins is the set of allowed origins; nil when CORS is off.
func corsOrigins(list []string) map[string]bool {
	var set map[string]bool
	for _, o := range list {
		origin, err := ParseOrigin(o)
		if err != nil {
			continue // the binary refuses to start with one (ParseOrigin)
		}
		if set == nil {
			set = map[string]bool{}
		}
		set[origin] = true
	}
	return set
}

// cors adds the CORS headers of an allowed origin to an end-user response
// (errors included, so that the app can read a 401 or a 403).
func (s *Server) cors(h http.Handler) http.Handler {
	if s.corsOrigins == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); s.corsOrigins[origin] {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		h.ServeHTTP(w, r)
	})
}

// preflight answers a CORS preflight (OPTIONS with Origin and
// Access-Control-Request-Method) on an end-user path whose methods are
// allow: 204 with the Access-Control-Allow-* headers for an allowed origin,
// 403 ORIGIN_NOT_ALLOWED for another. An OPTIONS that is no preflight gets
// the 405 of any other method the path does not have.
func (s *Server) preflight(allow string) handlerFunc {
	notAllowed := methodNotAllowed(allow)
	return func(w http.ResponseWriter, r *http.Request) error {
		origin := r.Header.Get("Origin")
		if origin == "" || r.Header.Get("Access-Control-Request-Method") == "" {
			return notAllowed(w, r)
		}
		w.Header().Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
		if !s.corsOrigins[origin] {
			return licensor.Errorf(licensor.CodeOriginNotAllowed, "the origin %q may not call this API from a browser; the operator allows origins with --cors-origin", origin)
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", allow)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
