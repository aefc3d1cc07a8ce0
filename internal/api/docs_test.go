package api_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDocsPage renders the API reference in headless Chromium: every
// operation of the document gets its heading, and the page makes no request
// off the server (no CDN, no fonts, no logo, no telemetry) and breaks no
// rule of its Content-Security-Policy.
func TestDocsPage(t *testing.T) {
	en := newEnv(t, engines(t)[0])
	spec, _, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			want = append(want, op.OperationID)
		}
	}
	slices.Sort(want)

	b := newBrowser(t)
	b.run(t, chromedp.Navigate(en.srv.URL+base+"/docs"))
	waitFor(t, b, fmt.Sprintf(`document.querySelectorAll('[data-section-id*="/operation/"] h2').length >= %d`, len(want)), 60*time.Second)
	got := eval[[]string](t, b, `[...document.querySelectorAll('[data-section-id*="/operation/"]')].map(e => e.getAttribute('data-section-id').split('/operation/')[1])`)
	headings := eval[[]string](t, b, `[...document.querySelectorAll('[data-section-id*="/operation/"] h2')].map(h => h.textContent)`)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("operations on the page:\n%v\nin the document:\n%v", got, want)
	}
	if len(headings) != len(want) {
		t.Errorf("%d operation headings, want %d: %q", len(headings), len(want), headings)
	}
	if os.Getenv("LICENSOR_DOCS_SCREENSHOT") != "" { // a look for a person
		png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(os.Getenv("LICENSOR_DOCS_SCREENSHOT"), png, 0o644)
	}
	time.Sleep(500 * time.Millisecond) // late requests (images, workers) too
	if off := b.offOrigin(en.srv.URL); len(off) > 0 {
		t.Errorf("the page made requests off the server: %q", off)
	}
	if reqs := b.requestURLs(); !slices.Contains(reqs, en.srv.URL+base+"/openapi.json") || !slices.Contains(reqs, en.srv.URL+base+"/docs/redoc.standalone.js") {
		t.Errorf("requests %q: want the document and the script from the server", reqs)
	}
	for _, line := range b.consoleLines() {
		if strings.Contains(line, "Content Security Policy") || strings.HasPrefix(line, "exception") || strings.HasPrefix(line, "error") {
			t.Errorf("console: %s", line)
		}
	}
}

// TestDocsHeaders: the page and its script are public, carry the strict
// CSP, and the script goes out gzip-compressed as stored, or decompressed
// to a client that does not take gzip.
func TestDocsHeaders(t *testing.T) {
	en := newEnv(t, engines(t)[0])
	get := func(path, acceptEncoding string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", en.srv.URL+path, nil)
		req.Header.Set("Accept-Encoding", acceptEncoding) // set: no transparent decompression
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	page, html := get(base+"/docs", "gzip")
	if page.StatusCode != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(html), `<redoc spec-url="openapi.json">`) {
		t.Fatalf("docs page: %d %s %.200s", page.StatusCode, page.Header.Get("Content-Type"), html)
	}
	csp := page.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	if strings.Contains(csp, "script-src 'self' 'unsafe") || strings.Contains(csp, "*") {
		t.Errorf("CSP %q is not strict", csp)
	}
	zipped, zbody := get(base+"/docs/redoc.standalone.js", "gzip, deflate, br")
	if zipped.Header.Get("Content-Encoding") != "gzip" || zipped.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("script: Content-Encoding %q, Vary %q", zipped.Header.Get("Content-Encoding"), zipped.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(strings.NewReader(string(zbody)))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	plain, pbody := get(base+"/docs/redoc.standalone.js", "identity")
	if plain.Header.Get("Content-Encoding") != "" || string(pbody) != string(unzipped) || len(pbody) < 1_000_000 {
		t.Errorf("script without gzip: Content-Encoding %q, %d bytes (gzip: %d → %d)", plain.Header.Get("Content-Encoding"), len(pbody), len(zbody), len(unzipped))
	}
	if refused, _ := get(base+"/docs/redoc.standalone.js", "gzip;q=0"); refused.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 still got Content-Encoding %q", refused.Header.Get("Content-Encoding"))
	}
	if strings.Contains(string(unzipped), "cdn.redoc.ly") {
		t.Error("the bundle still names cdn.redoc.ly")
	}
}
