package console_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/console"
	"github.com/licensor/licensor/internal/testdb"
)

// fixture is a console over a real store, served by a real HTTP server,
// with keys and one subscriber whose licenses cover every reason of the
// "why or why not" explanation.
type fixture struct {
	store             licensor.Store
	srv               *httptest.Server
	logs              *syncBuffer
	writeKey, readKey string // secrets
	revokedKey        string
	licenses          map[string]licensor.License
	now               int64
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newKey(t *testing.T, s licensor.Store, name string, scope licensor.Scope) string {
	t.Helper()
	secret, prefix, hash := licensor.NewAPIKeySecret()
	if err := s.CreateAPIKey(t.Context(), &licensor.APIKey{Name: name, Prefix: prefix, Hash: hash, Scope: scope}); err != nil {
		t.Fatalf("create key %s: %v", name, err)
	}
	return secret
}

func ptr[T any](v T) *T { return &v }

func newFixture(t *testing.T, store licensor.Store) *fixture {
	t.Helper()
	f := &fixture{store: store, logs: &syncBuffer{}, now: time.Now().Unix(), licenses: map[string]licensor.License{}}
	f.writeKey = newKey(t, store, "ops-alice", licensor.ScopeWrite)
	f.readKey = newKey(t, store, "support-bob", licensor.ScopeRead)
	f.revokedKey = newKey(t, store, "old-key", licensor.ScopeWrite)
	ctx := t.Context()
	if err := store.RevokeAPIKey(ctx, "old-key", licensor.Change{Time: f.now - 10, Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	c := licensor.Change{Time: f.now - 3600, Actor: "cli"}
	product := func(title string, ch licensor.Channels) int64 {
		p := licensor.NewProduct(title)
		p.Channels = ch
		if err := store.CreateProduct(ctx, &p, c); err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	sports := product("Sports", licensor.Channels{licensor.ServiceLive: {"espn", "eurosport"}, licensor.ServiceCatchup: {"espn"}})
	movies := product("Movies", licensor.Channels{licensor.ServiceLive: {"hbo"}})
	news := product("News", licensor.Channels{licensor.ServiceLive: {"cnn"}})
	kids := product("Kids", licensor.Channels{licensor.ServiceLive: {"nick"}})
	docs := product("Documentaries", licensor.Channels{licensor.ServiceLive: {"natgeo"}})
	drafts := map[string]licensor.LicenseDraft{
		"grants":     {ProductID: sports, OrderID: ptr("ord-1001")},
		"notstarted": {ProductID: movies, StartDate: ptr(f.now + 86400)},
		"expired":    {ProductID: news, StartDate: ptr(f.now - 7200), StopDate: ptr(f.now - 60)},
		"suspended":  {ProductID: kids, Status: ptr(licensor.StatusSuspended)},
		"status":     {ProductID: docs, Status: ptr(licensor.StatusProcessing)},
	}
	for name, d := range drafts {
		d.UserID = "subscriber-42"
		ls, err := store.CreateLicenses(ctx, []licensor.LicenseDraft{d}, c)
		if err != nil {
			t.Fatalf("create license %s: %v", name, err)
		}
		f.licenses[name] = ls[0]
	}
	h := console.New(store, console.Options{Version: "test", Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	mux := http.NewServeMux()
	mux.Handle(console.Prefix+"/", h)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) url(path string) string { return f.srv.URL + console.Prefix + path }

// TestConsoleInBrowser drives Chromium through the console on each engine:
// sign-in failures and success, the overview, the subscriber page with
// every "why not" reason, CSRF refusal, a narrow screen, accessibility,
// sign-out, and a session whose key is revoked.
func TestConsoleInBrowser(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		f := newFixture(t, e.Open(t))
		b := newBrowser(t)
		shots := e.Name == "sqlite"

		// Sign-in failures: not a key, a revoked key. Same message each time.
		b.open(t, f.url("/"))
		if got := eval[string](t, b, `location.pathname`); got != "/console/signin" {
			t.Fatalf("signed out, / went to %s, want the sign-in page", got)
		}
		b.axe(t, "sign-in")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "signin"))
		}
		for _, bad := range []string{"not-a-key", f.revokedKey, f.writeKey + "x"} {
			b.submit(t, "button[type=submit]", map[string]string{"#key": bad})
			if got := b.text(t, "[role=alert]"); !strings.Contains(got, "not valid") {
				t.Errorf("sign-in with a bad key: alert %q", got)
			}
			if got := eval[string](t, b, `location.pathname`); got != "/console/signin" {
				t.Errorf("sign-in with a bad key went to %s", got)
			}
		}

		// Sign in; the overview.
		b.submit(t, "button[type=submit]", map[string]string{"#key": f.writeKey})
		if got := eval[string](t, b, `location.pathname`); got != "/console/" {
			t.Fatalf("after sign-in: at %s, want /console/; page: %s", got, b.text(t, "main"))
		}
		main := b.text(t, "main")
		for _, want := range []string{"5\nlive licenses", "5\nproducts", "license.created", "ops-alice"} {
			if want == "ops-alice" {
				main = b.text(t, "header")
			}
			if !strings.Contains(main, want) {
				t.Errorf("overview lacks %q:\n%s", want, main)
			}
		}
		b.axe(t, "overview")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "overview"))
		}

		// The subscriber, found by order id.
		b.submit(t, "form[action='/console/subscriber'] button", map[string]string{"#q-order": "ord-1001"})
		if got := b.text(t, "h1"); !strings.Contains(got, "subscriber-42") {
			t.Fatalf("subscriber by order id: h1 %q", got)
		}
		now := b.text(t, "table[aria-labelledby=now]")
		if !strings.Contains(now, "espn, eurosport") || strings.Contains(now, "hbo") || strings.Contains(now, "cnn") {
			t.Errorf("entitled now:\n%s", now)
		}
		b.axe(t, "subscriber")

		// Why or why not, for each reason.
		for _, c := range []struct {
			service, channel string
			entitled         bool
			reason           string
			license          string
		}{
			{"live", "espn", true, "grants it", "grants"},
			{"live", "hbo", false, "not started", "notstarted"},
			{"live", "cnn", false, "expired", "expired"},
			{"live", "nick", false, "suspended", "suspended"},
			{"live", "natgeo", false, "status", "status"},
			{"npvr", "espn", false, "product without that channel", "grants"},
		} {
			b.open(t, f.url("/subscriber?user=subscriber-42"))
			b.submit(t, "form[action='/console/subscriber#why'] button", map[string]string{"#service": c.service, "#channel": c.channel})
			answer := b.text(t, "#verdict")
			if c.entitled != strings.HasPrefix(answer, "Yes") {
				t.Errorf("%s/%s: answer %q, want entitled=%v", c.service, c.channel, answer, c.entitled)
			}
			id := f.licenses[c.license].ID
			row := b.text(t, "tr.verdict:has(a[href='/console/licenses/"+itoa(id)+"'])")
			if !strings.Contains(row, c.reason) {
				t.Errorf("%s/%s: license %d's verdict %q, want %q", c.service, c.channel, id, row, c.reason)
			}
			if c.reason == "suspended" && shots {
				b.axe(t, "subscriber with an explanation")
				t.Log("screenshot:", b.screenshot(t, "subscriber"))
			}
		}

		// A narrow screen: nothing wider than the viewport.
		b.run(t, emulate(390, 844))
		b.open(t, f.url("/subscriber?user=subscriber-42&service=live&channel=nick"))
		if w := eval[int](t, b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("on a 390px screen the page is %dpx wide", w)
		}
		if shots {
			t.Log("screenshot:", b.screenshot(t, "subscriber-narrow"))
		}
		b.run(t, emulate(1280, 900))

		// CSRF: a form whose token was changed is refused, and nothing happens.
		b.open(t, f.url("/"))
		b.run(t, discard(eval2(`document.querySelector("form[action='/console/signout'] input[name=csrf]").value = "forged"`)))
		b.submit(t, "form[action='/console/signout'] button", nil)
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "CSRF") {
			t.Errorf("forged CSRF token: %q", got)
		}
		b.open(t, f.url("/"))
		if got := eval[string](t, b, `location.pathname`); got != "/console/" {
			t.Errorf("the forged sign-out signed out: at %s", got)
		}

		// Sign out, then back in with the read key, then revoke that key: the
		// session is refused at once.
		b.submit(t, "form[action='/console/signout'] button", nil)
		if got := b.text(t, "main"); !strings.Contains(got, "signed out") {
			t.Errorf("after sign-out: %q", got)
		}
		b.open(t, f.url("/"))
		if got := eval[string](t, b, `location.pathname`); got != "/console/signin" {
			t.Errorf("after sign-out, / is %s", got)
		}
		b.submit(t, "button[type=submit]", map[string]string{"#key": f.readKey})
		if got := b.text(t, "header"); !strings.Contains(got, "support-bob") {
			t.Fatalf("signed in with the read key: header %q", got)
		}
		if err := f.store.RevokeAPIKey(t.Context(), "support-bob", licensor.Change{Time: time.Now().Unix(), Actor: "cli"}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		b.open(t, f.url("/subscriber?user=subscriber-42"))
		if got := eval[string](t, b, `location.pathname`); got != "/console/signin" || time.Since(start) > time.Second {
			t.Errorf("after its key was revoked the session still worked (at %s after %v)", got, time.Since(start))
		}

		// No key or secret in any page, URL or log line.
		html := b.html(t)
		for _, secret := range []string{f.writeKey, f.readKey, f.revokedKey} {
			if strings.Contains(html, secret) {
				t.Errorf("a key is in the HTML")
			}
			for _, u := range b.requestURLs() {
				if strings.Contains(u, secret) {
					t.Errorf("a key is in a URL: %s", u)
				}
			}
			if strings.Contains(f.logs.String(), secret) {
				t.Errorf("a key is in the log:\n%s", f.logs.String())
			}
		}
		for _, l := range b.consoleLines() {
			if strings.Contains(l, "Content Security Policy") || strings.HasPrefix(l, "exception") {
				t.Errorf("browser console: %s", l)
			}
		}
	})
}
