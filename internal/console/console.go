// Package console is the operator console: server-rendered pages for the
// people who support subscribers and run the service, mounted by
// licensor serve at /console. It reads and writes through the Store and
// the domain rules (licensor.EntitlementsAt), never through the HTTP API,
// and every change it makes is an ordinary write, with the signed-in key's
// name as the actor.
//
// Pages are html/template with embedded templates and one stylesheet;
// there is no script, so the Content-Security-Policy forbids every script.
package console

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/licensor/licensor"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Prefix is where licensor serve mounts the console.
const Prefix = "/console"

// Options configure the console.
type Options struct {
	Logger  *slog.Logger
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IdleTimeout ends a session after that long without a request
	// (default 30 minutes); MaxAge ends it that long after sign-in
	// whatever its use (default 12 hours).
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// CheckWebhookURL applies the server's delivery policy to a new
	// webhook's URL (as api.Options.CheckWebhookURL); nil checks its form
	// only.
	CheckWebhookURL func(raw string) error
	// CountEvery is how long the overview reuses its count of live
	// licenses (a count over every license: tens of milliseconds at a
	// million); default 30 seconds, negative counts on every request.
	CountEvery time.Duration
}

// deliveryTable is what the deliveries template gets.
type deliveryTable struct {
	CSRF  string
	ID    int64
	Label string
	List  []licensor.Delivery
}

// Console is the console's http.Handler.
type Console struct {
	store licensor.Store
	opts  Options
	log   *slog.Logger
	pages map[string]*template.Template
	mux   *http.ServeMux

	countMu sync.Mutex
	count   int64 // live licenses, as of countAt
	countAt time.Time
}

// New returns the console over store.
func New(store licensor.Store, opts Options) *Console {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Minute
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 12 * time.Hour
	}
	if opts.CountEvery == 0 {
		opts.CountEvery = 30 * time.Second
	}
	c := &Console{store: store, opts: opts, log: opts.Logger, pages: parsePages()}
	c.mux = c.routes()
	return c
}

// handler is a page handler: it renders or redirects, or returns an error
// that c.adapt turns into an error page.
type handler func(w http.ResponseWriter, r *http.Request, s *session) error

// ServeHTTP serves the console's routes, with the headers every response
// carries: a strict CSP (no script at all), no caching, no framing, no
// referrer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) now() int64 { return c.opts.Now().Unix() }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string // the section, for aria-current
	Session *session
	CSRF    string
	Version string
	Flash   string
	Error   string
	Data    any
}

var funcs = template.FuncMap{
	"time": func(t int64) string {
		if t == 0 {
			return "—"
		}
		return time.Unix(t, 0).UTC().Format("2006-01-02 15:04:05Z")
	},
	"ptime": func(t *int64) string {
		if t == nil {
			return "never"
		}
		return time.Unix(*t, 0).UTC().Format("2006-01-02 15:04:05Z")
	},
	"pstr": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"join": func(ss []string) string { return strings.Join(ss, ", ") },
	"deliveries": func(csrf string, id int64, label string, list []licensor.Delivery) deliveryTable {
		return deliveryTable{CSRF: csrf, ID: id, Label: label, List: list}
	},
	"lower": func(s any) string { return strings.ToLower(fmt.Sprint(s)) },
	"pauseForm": func(csrf string, w any, back string) pauseForm {
		f := pauseForm{CSRF: csrf, Back: back}
		switch w := w.(type) {
		case licensor.Webhook:
			f.Webhook = &w
		case *licensor.Webhook:
			f.Webhook = w
		}
		return f
	},
}

// pauseForm is the Pause or Resume button of a webhook; Back "list"
// returns to the list of webhooks.
type pauseForm struct {
	CSRF    string
	Webhook *licensor.Webhook
	Back    string
}

func parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFiles, n))
	}
	return pages
}

// render writes a page with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, p page) {
	p.Session, p.Version = s, c.opts.Version
	if s != nil {
		p.CSRF = s.CSRF
	}
	if p.Flash == "" {
		p.Flash = flashOf(r)
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// flashes are the fixed notices a redirect may ask for (?done=...): a
// fixed list, so that a link cannot put words on a page.
var flashes = map[string]string{
	"deleted":     "Deleted.",
	"saved":       "Saved.",
	"created":     "Created.",
	"revoked":     "The key was revoked.",
	"redelivered": "The delivery was queued again.",
	"paused":      "Paused: its deliveries are queued, not sent, until it is resumed.",
	"resumed":     "Resumed: its queued deliveries go out now, in order.",
	"signedout":   "You are signed out.",
	"expired":     "Your session ended; sign in again.",
}

func flashOf(r *http.Request) string { return flashes[r.URL.Query().Get("done")] }

// errorPage shows err: a domain error with its status and detail, any
// other error as an internal one (logged, not shown).
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg, ok := explainError(err)
	if !ok {
		c.log.Error("console", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, status, "error", s, page{Title: http.StatusText(status), Error: msg})
}

// explainError returns the status and the sentences of a domain error
// (*Error, Errors or ItemErrors), or false and a sentence that says
// nothing for any other error.
func explainError(err error) (int, string, bool) {
	var (
		e     *licensor.Error
		list  licensor.Errors
		items licensor.ItemErrors
	)
	switch {
	case errors.As(err, &e) && e.Code != licensor.CodeInternal:
		return statusOf(e.Code), e.Detail, true
	case errors.As(err, &list) && len(list) > 0:
		msgs := make([]string, len(list))
		for i, e := range list {
			msgs[i] = e.Detail
		}
		return statusOf(list[0].Code), strings.Join(msgs, "; "), true
	case errors.As(err, &items) && len(items) > 0:
		msgs := make([]string, len(items))
		for i, e := range items {
			msgs[i] = e.Err.Detail
		}
		return statusOf(items[0].Err.Code), strings.Join(msgs, "; "), true
	}
	return http.StatusInternalServerError, "Something went wrong; the server log has the details.", false
}

// change is the Change of a write made in the console: the signed-in
// key's name is the actor, as for a write through the API, and the request
// id says where it came from.
func (c *Console) change(s *session) licensor.Change {
	return licensor.Change{Time: c.now(), Actor: s.key.Name, RequestID: "console-" + randomHex(8)}
}

func statusOf(code licensor.Code) int {
	switch code {
	case licensor.CodeNotFound, licensor.CodeLicenseNotFound, licensor.CodeProductNotFound,
		licensor.CodeWebhookNotFound, licensor.CodeDeliveryNotFound:
		return http.StatusNotFound
	case licensor.CodeInsufficientScope:
		return http.StatusForbidden
	case licensor.CodePreconditionFailed:
		return http.StatusPreconditionFailed
	case licensor.CodeConflict, licensor.CodeProductInUse, licensor.CodeOrderIDConflict:
		return http.StatusConflict
	case licensor.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, Prefix+path, http.StatusSeeOther)
}

func fmtTime(t int64) string { return funcs["time"].(func(int64) string)(t) }

func fmtPtime(t *int64) string { return funcs["ptime"].(func(*int64) string)(t) }
