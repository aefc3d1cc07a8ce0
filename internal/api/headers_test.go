package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestSecurityHeaders: every response, whatever route, status or auth
// outcome, says nosniff; under TLS it also says Strict-Transport-Security,
// which a plain-HTTP response must not (browsers ignore it there, and a
// proxy in front may serve both).
func TestSecurityHeaders(t *testing.T) {
	en := newEnv(t, engines(t)[0])
	tlsSrv := httptest.NewTLSServer(en.api)
	t.Cleanup(tlsSrv.Close)
	paths := []struct{ path, key string }{
		{"/api/license/management/v4/openapi.json", ""},
		{"/api/license/management/v4/products", ""},            // 401
		{"/api/license/management/v4/products", en.readKey},    // 200
		{"/api/license/management/v4/licenses/99", en.readKey}, // 404
		{"/no/such/route", ""},
	}
	for _, srv := range []*httptest.Server{en.srv, tlsSrv} {
		tls := srv == tlsSrv
		for _, p := range paths {
			req, err := http.NewRequest(http.MethodGet, srv.URL+p.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.key != "" {
				req.Header.Set("Authorization", "Apikey "+p.key)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("tls=%v GET %s (%d): X-Content-Type-Options = %q, want nosniff", tls, p.path, resp.StatusCode, got)
			}
			hsts := resp.Header.Get("Strict-Transport-Security")
			switch {
			case tls && hsts != "max-age=31536000":
				t.Errorf("GET %s over TLS (%d): Strict-Transport-Security = %q", p.path, resp.StatusCode, hsts)
			case !tls && hsts != "":
				t.Errorf("GET %s over plain HTTP (%d): Strict-Transport-Security = %q, want none", p.path, resp.StatusCode, hsts)
			}
		}
	}
}
