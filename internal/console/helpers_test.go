package console_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/licensor/licensor"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func emulate(w, h int64) chromedp.Action[chromedp.Void] { return chromedp.EmulateViewport(w, h) }

func eval2(expr string) chromedp.Action[string] { return chromedp.Evaluate[string](expr) }

// signin opens the sign-in page and signs in with secret.
func (f *fixture) signin(t *testing.T, b *browser, secret string) {
	t.Helper()
	b.open(t, f.url("/signin"))
	b.submit(t, "button[type=submit]", map[string]string{"#key": secret})
	if got := eval[string](t, b, `location.pathname`); got != "/console/" {
		t.Fatalf("sign-in: at %s, want /console/", got)
	}
}

// path is the browser's location without the host.
func (b *browser) path(t *testing.T) string {
	t.Helper()
	return eval[string](t, b, `location.pathname + location.search`)
}

// narrow checks that the page at url fits a 390px screen, with a
// screenshot when shot is not empty.
func (b *browser) narrow(t *testing.T, url, shot string) {
	t.Helper()
	b.run(t, emulate(390, 844))
	defer b.run(t, emulate(1280, 900))
	b.open(t, url)
	if w := eval[int](t, b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("%s: on a 390px screen the page is %dpx wide", url, w)
	}
	if shot != "" {
		t.Log("screenshot:", b.screenshot(t, shot))
	}
}

// noSecrets fails when any secret is in the page, a requested URL or the
// log, or when the browser reported a CSP violation or an exception.
func (f *fixture) noSecrets(t *testing.T, b *browser, secrets ...string) {
	t.Helper()
	html := b.html(t)
	for _, secret := range append(secrets, f.writeKey, f.readKey, f.revokedKey) {
		if strings.Contains(html, secret) {
			t.Errorf("a secret is in the HTML")
		}
		for _, u := range b.requestURLs() {
			if strings.Contains(u, secret) {
				t.Errorf("a secret is in a URL: %s", u)
			}
		}
		if strings.Contains(f.logs.String(), secret) {
			t.Errorf("a secret is in the log:\n%s", f.logs.String())
		}
	}
	for _, l := range b.consoleLines() {
		if strings.Contains(l, "Content Security Policy") || strings.HasPrefix(l, "exception") {
			t.Errorf("browser console: %s", l)
		}
	}
}

// lastEvent is the newest event of the change feed.
func (f *fixture) lastEvent(t *testing.T) licensor.Event {
	t.Helper()
	head, err := f.store.EventHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.store.Events(t.Context(), licensor.EventQuery{After: head - 1, Limit: 1})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("last event: %v %v", p, err)
	}
	return p.Events[0]
}
