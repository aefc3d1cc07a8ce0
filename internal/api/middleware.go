package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

// handlerFunc is a handler that returns its failure; adapt turns the
// failure into a JSON:API error response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) adapt(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// writeError sends err as a JSON:API error document. Internal errors are
// logged with their detail and answered with a bare 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		err = &licensor.Error{Code: licensor.CodeUnavailable, Detail: "the request was cancelled"}
	}
	if s.classify != nil && licensor.ErrorCode(err) == licensor.CodeInternal {
		err = s.classify(err)
	}
	status, objs := jsonapi.ErrorResponse(err)
	for _, o := range objs {
		s.metrics.Rejected(o.Code)
	}
	info := infoOf(r)
	if status >= 500 {
		info.err = err
	}
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Apikey realm="licensor"`)
	}
	_ = jsonapi.Write(w, status, jsonapi.ErrorDocument{Errors: objs})
}

// reqInfo is what the layers of one request tell the access log. It is
// the request's context (the parent's, plus itself under infoKey), so that
// a request costs one allocation for both, and it holds the access log's
// statusRecorder.
type reqInfo struct {
	context.Context
	requestID string
	keyID     int64
	keyName   string
	claim     *licensor.IdempotencyClaim // the request's Idempotency-Key, if any
	err       error                      // the internal error behind a 5xx
	rec       statusRecorder
	// values is room for the response's header values of the hot path
	// (X-Request-Id; an entitlement answer's Etag and Content-Length), so
	// that they cost no allocation of their own (see headerValue).
	values  [3]string
	nvalues int
}

// headerValue returns v as the value of a response header ([]string{v}),
// in the request's own room while there is some: the slice has capacity
// 1, so that a Header.Add copies it rather than writing into the next
// value.
func (info *reqInfo) headerValue(v string) []string {
	i := info.nvalues
	if i == len(info.values) {
		return []string{v}
	}
	info.nvalues++
	info.values[i] = v
	return info.values[i : i+1 : i+1]
}

type infoKey struct{}

func (info *reqInfo) Value(key any) any {
	if _, ok := key.(infoKey); ok {
		return info
	}
	return info.Context.Value(key)
}

func infoOf(r *http.Request) *reqInfo {
	if info, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		return info
	}
	return &reqInfo{}
}

// validRequestID reports whether a client's X-Request-Id is sane enough to
// keep: 1 to 128 characters of A-Z a-z 0-9 . _ : -
func validRequestID(id string) bool {
	if len(id) < 1 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// Security headers of every response (shared; never changed in place):
// no content sniffing, and under TLS, HTTPS only for a year.
var (
	headerNoSniff = []string{"nosniff"}
	headerHSTS    = []string{"max-age=31536000"}
)

// requestID gives every request an id: the client's X-Request-Id when it
// is sane, a random one otherwise. It is echoed on every response, with
// X-Content-Type-Options: nosniff and, when the connection is TLS,
// Strict-Transport-Security.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Content-Type-Options"] = headerNoSniff
		if r.TLS != nil {
			w.Header()["Strict-Transport-Security"] = headerHSTS
		}
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			var b [12]byte
			var x [24]byte
			_, _ = rand.Read(b[:])
			hex.Encode(x[:], b[:])
			id = string(x[:])
		}
		info := &reqInfo{Context: r.Context(), requestID: id}
		w.Header()["X-Request-Id"] = info.headerValue(id)
		next.ServeHTTP(w, r.WithContext(info))
	})
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog writes one structured line per request to the access log: 5xx
// at Error with the internal error, everything else at Info. It runs
// inside requestID, whose reqInfo holds its recorder.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := infoOf(r)
		rec := &info.rec
		rec.ResponseWriter = w
		s.metrics.Start()
		next.ServeHTTP(rec, r)
		elapsed := time.Since(start)
		s.metrics.Done(r.Pattern, r.Method, rec.status, elapsed)
		level := slog.LevelInfo
		if info.err != nil {
			level = slog.LevelError
		}
		ctx := r.Context()
		if !s.access.Enabled(ctx, level) {
			return
		}
		attrs := [10]slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", r.Pattern),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", elapsed),
			slog.String("request_id", info.requestID),
			slog.String("remote", r.RemoteAddr),
		}
		n := 8
		if info.keyName != "" {
			attrs[n] = slog.String("key", info.keyName)
			n++
		}
		if info.err != nil {
			attrs[n] = slog.String("err", info.err.Error())
			n++
		}
		line := slog.NewRecord(start.Add(elapsed), level, "request", 0)
		line.AddAttrs(attrs[:n]...) // at once: one allocation for the attributes past the fifth
		_ = s.access.Handler().Handle(ctx, line)
	})
}

// recoverPanics turns a panic into a logged 500 (http.ErrAbortHandler
// still aborts).
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// cacheNoStore is the value of Cache-Control on management responses,
// shared by all of them (a header value is never changed in place).
var cacheNoStore = []string{"no-store"}

// noStore marks management responses as uncacheable.
func (s *Server) noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Cache-Control"] = cacheNoStore
		next.ServeHTTP(w, r)
	})
}

// limitBody caps the request body; a declared length over the cap is
// refused before reading.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		if r.ContentLength > s.opts.MaxBodyBytes {
			return licensor.Errorf(licensor.CodeBodyTooLarge, "the request body is larger than %d bytes", s.opts.MaxBodyBytes)
		}
		if r.Body != http.NoBody { // no body (a GET): nothing to limit
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
		return nil
	})
}

// authenticate admits a request with a usable API key whose scope covers
// need, from an allowed network.
func (s *Server) authenticate(need licensor.Scope, next http.Handler) http.Handler {
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		scheme, secret, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		secret = strings.TrimSpace(secret)
		if !strings.EqualFold(scheme, "Apikey") || secret == "" {
			return licensor.Errorf(licensor.CodeAPIKeyMissing, "send the header Authorization: Apikey <key>")
		}
		key, err := s.keys.Verify(r.Context(), secret)
		if err != nil {
			return err
		}
		info := infoOf(r)
		info.keyID, info.keyName = key.ID, key.Name
		if len(key.Networks) > 0 { // else usable from anywhere: no need of the client's address
			if addr, bad := s.clientAddr(r); !key.AllowsAddr(addr) {
				if bad != "" {
					return licensor.Errorf(licensor.CodeAddressNotAllowed, "the API key %q is limited to networks, and the client address is unknown: the X-Forwarded-For hop %q is not an IP address", key.Name, jsonapi.Truncate(bad, 64))
				}
				return licensor.Errorf(licensor.CodeAddressNotAllowed, "the API key %q may not be used from %s", key.Name, addr)
			}
		}
		if !key.Scope.Covers(need) {
			return licensor.Errorf(licensor.CodeInsufficientScope, "the API key %q has scope %s; this route needs %s", key.Name, key.Scope, need)
		}
		s.keys.Used(key)
		next.ServeHTTP(w, r)
		return nil
	})
}

// clientAddr is the TCP peer, or, when the peer is a trusted proxy, the
// right-most X-Forwarded-For address that is not a trusted proxy.
//
// It fails closed: when the walk from the right meets a hop that is not a
// bare IP address ("203.0.113.7:4711", "[2001:db8::7]", "unknown", an empty
// element), the client is unknown, and clientAddr returns the zero Addr,
// which no network of an API key contains, with the offending hop. Falling
// back to the last address read would make the client a trusted proxy,
// whose address an allow-list may well accept.
func (s *Server) clientAddr(r *http.Request) (addr netip.Addr, badHop string) {
	peer := parseAddr(r.RemoteAddr)
	if !s.trusted(peer) {
		return peer, ""
	}
	hops := r.Header.Values("X-Forwarded-For")
	addr = peer
	for i := len(hops) - 1; i >= 0; i-- {
		rest := hops[i]
		for last := false; !last; {
			hop := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				hop, rest = rest[j+1:], rest[:j]
			} else {
				last = true
			}
			hop = strings.TrimSpace(hop)
			a, err := netip.ParseAddr(hop)
			if err != nil || a.Zone() != "" {
				return netip.Addr{}, hop
			}
			addr = a.Unmap()
			if !s.trusted(addr) {
				return addr, ""
			}
		}
	}
	return addr, ""
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func parseAddr(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func methodNotAllowed(allow string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		allow := allow // per request: a batch path must not change the path's own answer
		if isBatchPath(r) {
			allow = "POST"
		}
		w.Header().Set("Allow", allow)
		return licensor.Errorf(licensor.CodeMethodNotAllowed, "%s is not allowed here; use %s", r.Method, allow)
	}
}

// isBatchPath reports whether a request matched .../licenses/{license_id}
// with one of the batch paths, which only take POST.
func isBatchPath(r *http.Request) bool {
	v := r.PathValue("license_id")
	return v == "batch_create" || v == "batch_delete"
}

func notFound(w http.ResponseWriter, r *http.Request) error {
	return licensor.Errorf(licensor.CodeNotFound, "no route for %s", jsonapi.Truncate(r.URL.Path, 200))
}

func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) error {
	return jsonapi.WriteJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ok"})
}

func (s *Server) getReadiness(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		return licensor.Errorf(licensor.CodeUnavailable, "the database is not reachable")
	}
	if s.warming.Load() {
		// Expected for a moment at every start, not a failure: written
		// here, not returned, so that the access log has it at Info.
		status, objs := jsonapi.ErrorResponse(licensor.Errorf(licensor.CodeUnavailable, "the entitlement cache is warming up (--entitlement-warm-timeout)"))
		return jsonapi.Write(w, status, jsonapi.ErrorDocument{Errors: objs})
	}
	return jsonapi.WriteJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ready"})
}
