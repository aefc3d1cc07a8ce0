package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/licensor/licensor/internal/api"
)

const endUserBase = "/api/license/v4"

// raw sends a request without the harness's OpenAPI check (a preflight is
// protocol, not an operation of the document).
func raw(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestCORSHeaders: with --cors-origin, a preflight from an allowed origin
// gets 204 and the Access-Control-Allow-* headers (Authorization and
// Idempotency-Key among them), one from another origin 403
// ORIGIN_NOT_ALLOWED and no Access-Control-Allow-Origin; responses name the
// allowed origin only, never *, never with credentials, and vary on Origin.
// Off by default, and never on the management API.
func TestCORSHeaders(t *testing.T) {
	const app, other = "https://viewer.example", "https://evil.example"
	en := newEnv(t, engines(t)[0], withTokens, func(o *api.Options) { o.CORSOrigins = []string{"HTTPS://Viewer.Example:443"} })
	tok := en.token("41", nil)
	licenses := en.srv.URL + endUserBase + "/users/41/licenses"
	pre := func(origin, url string) (*http.Response, string) {
		return raw(t, "OPTIONS", url, map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
	}

	resp, body := pre(app, licenses)
	h := resp.Header
	if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != app || h.Get("Access-Control-Allow-Methods") != "GET, POST" ||
		h.Get("Access-Control-Max-Age") == "" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("preflight from %s: %d %v %s", app, resp.StatusCode, h, body)
	}
	for _, want := range []string{"Authorization", "Idempotency-Key", "Content-Type", "If-None-Match"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
		}
	}
	if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Errorf("preflight Vary %q", h.Values("Vary"))
	}

	resp, body = pre(other, licenses)
	if resp.StatusCode != 403 || !strings.Contains(body, `"ORIGIN_NOT_ALLOWED"`) || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from %s: %d %v %s", other, resp.StatusCode, resp.Header, body)
	}
	if resp, _ := raw(t, "OPTIONS", licenses, nil); resp.StatusCode != 405 {
		t.Errorf("OPTIONS that is no preflight: %d, want 405", resp.StatusCode)
	}

	// Actual requests: the allowed origin is named, with the headers the app
	// may read; errors too (a 401 the app must see); another origin gets
	// nothing.
	for _, c := range []struct {
		origin, auth string
		status       int
		acao         string
	}{{app, "Bearer " + tok, 200, app}, {app, "", 401, app}, {other, "Bearer " + tok, 200, ""}} {
		resp, body := raw(t, "GET", licenses, map[string]string{"Origin": c.origin, "Authorization": c.auth})
		if resp.StatusCode != c.status || resp.Header.Get("Access-Control-Allow-Origin") != c.acao ||
			!strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("GET from %s (auth %t): %d, Allow-Origin %q, Vary %q; want %d, %q; %s",
				c.origin, c.auth != "", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Values("Vary"), c.status, c.acao, body)
		}
		if c.acao != "" && !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
			t.Errorf("Access-Control-Expose-Headers %q", resp.Header.Get("Access-Control-Expose-Headers"))
		}
	}

	// The management API: no CORS, even for an allowed origin.
	resp, _ = pre(app, en.srv.URL+base+"/licenses")
	if resp.StatusCode != 405 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("management preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = raw(t, "GET", en.srv.URL+base+"/licenses", map[string]string{"Origin": app, "Authorization": "Apikey " + en.readKey})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("management GET: Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}

	// Off by default: a preflight is a 405 as before, and nothing is added.
	off := newEnv(t, engines(t)[0], withTokens)
	resp, _ = pre(app, off.srv.URL+endUserBase+"/users/41/licenses")
	if resp.StatusCode != 405 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off: preflight %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = raw(t, "GET", off.srv.URL+endUserBase+"/users/41/licenses", map[string]string{"Origin": app, "Authorization": "Bearer " + off.token("41", nil)})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" || len(resp.Header.Values("Vary")) != 0 {
		t.Errorf("CORS off: GET %d, Allow-Origin %q, Vary %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Values("Vary"))
	}
}

func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://app.example.com":      "https://app.example.com",
		"HTTPS://App.Example.COM:443/": "https://app.example.com",
		"http://localhost:3000":        "http://localhost:3000",
		"http://[::1]:8080":            "http://[::1]:8080",
	} {
		if got, err := api.ParseOrigin(in); err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"*", "https://*.example.com", "app.example.com", "ftp://app.example.com", "https://app.example.com/path",
		"https://user@app.example.com", "https://app.example.com?x=1", "null", ""} {
		if got, err := api.ParseOrigin(bad); err == nil {
			t.Errorf("ParseOrigin(%q) = %q, want an error", bad, got)
		}
	}
}

// TestCORSFromBrowser: a viewer app served from one origin calls the
// end-user API on another (two servers on different ports), in headless
// Chromium: from the allowed origin the list and a purchase (a preflight
// with Authorization, Content-Type and Idempotency-Key) go through and the
// app reads the answers and their headers; from a refused origin the
// browser blocks the call.
func TestCORSFromBrowser(t *testing.T) {
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><link rel="icon" href="data:,"></head><body>viewer app</body></html>`)
	}
	allowed := httptest.NewServer(http.HandlerFunc(page))
	defer allowed.Close()
	refused := httptest.NewServer(http.HandlerFunc(page))
	defer refused.Close()

	en := newEnv(t, engines(t)[0], withTokens, func(o *api.Options) { o.CORSOrigins = []string{allowed.URL} })
	product := en.createProduct(map[string]any{"is_buyable": true, "price_currency_amount": 499, "price_currency_iso4217": "EUR"})
	tok := en.token("41", nil)

	// The app's calls: the user's licenses, then a purchase; it reports
	// what its script could read.
	script := fmt.Sprintf(`(async () => {
		const api = %q, auth = { Authorization: 'Bearer ' + %q };
		const out = {};
		try {
			const list = await fetch(api + '/users/41/licenses', { headers: auth });
			out.list = list.status + ' ' + (await list.json()).data.length;
			const purchase = () => fetch(api + '/users/41/licenses', { method: 'POST',
				headers: { ...auth, 'Content-Type': 'application/vnd.api+json', 'Idempotency-Key': 'cors-test-1' },
				body: JSON.stringify({ data: { type: 'License', attributes: { purchase_record: { payment_method: 'billing' } },
					relationships: { product: { data: { type: 'Product', id: %q } } } } }) });
			const buy = await purchase();
			out.buy = buy.status + ' ' + (await buy.json()).data.type;
			out.requestId = buy.headers.get('X-Request-Id') || '';
			const again = await purchase(); // the retry of a flaky network: replayed
			out.replayed = again.status + ' ' + again.headers.get('Idempotent-Replayed');
		} catch (e) { out.error = e.name + ': ' + e.message }
		return out;
	})()`, en.srv.URL+endUserBase, tok, product)

	type result struct {
		List, Buy, RequestID, Replayed, Error string
	}
	b := newBrowser(t)
	b.run(t, chromedp.Navigate(allowed.URL+"/"))
	got := eval[result](t, b, script)
	if got.Error != "" || got.List != "200 0" || got.Buy != "201 License" || got.RequestID == "" || got.Replayed != "201 true" {
		t.Errorf("from the allowed origin %s: %+v\nconsole: %s", allowed.URL, got, strings.Join(b.consoleLines(), "\n"))
	}

	b.run(t, chromedp.Navigate(refused.URL+"/"))
	got = eval[result](t, b, script)
	if !strings.HasPrefix(got.Error, "TypeError") || got.List != "" {
		t.Errorf("from the refused origin %s: %+v, want the browser to block the call", refused.URL, got)
	}
	if !strings.Contains(strings.Join(b.consoleLines(), "\n"), "CORS policy") {
		t.Errorf("the browser reported no CORS refusal: %s", strings.Join(b.consoleLines(), "\n"))
	}
	// The purchase went through once, from the allowed origin only.
	resp := en.must(200, req{method: "GET", path: base + "/users/41/licenses"})
	if n := len(resp.json(t)["data"].([]any)); n != 1 {
		t.Errorf("%d licenses after the two apps ran, want 1", n)
	}
}
