package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
	"github.com/licensor/licensor/internal/testdb"
	"github.com/licensor/licensor/internal/webhook"
)

func TestWebhooksCommands(t *testing.T) {
	env := map[string]string{"DATABASE_URL": filepath.Join(t.TempDir(), "hooks.db")}
	migrateDB(t, env["DATABASE_URL"])
	out, errOut, err := cli(t, env, "webhooks", "create", "--url", "https://drm.example.com/licensor",
		"--event", "license.created,license.deleted", "--event", "license.expired", "--description", "Irdeto")
	if err != nil {
		t.Fatalf("webhooks create: %v\n%s", err, errOut)
	}
	secret := strings.TrimSpace(out)
	if _, ok := licensor.WebhookSecretKey(secret); !ok {
		t.Fatalf("webhooks create printed %q, want a whsec_ secret", out)
	}
	if !strings.Contains(errOut, "shown only this once") || !strings.Contains(errOut, "webhook 1") {
		t.Errorf("create note: %s", errOut)
	}
	given := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	if out, _, err := cli(t, env, "webhooks", "create", "--url", "http://10.0.0.5/hook", "--allow-http", "--allow-private", "--secret", given); err != nil || strings.TrimSpace(out) != given {
		t.Fatalf("create with a given secret: %v %q", err, out)
	}

	// Webhook 2 paused (as the API or the console pauses it): list says so.
	d, err := openExisting(context.Background(), env["DATABASE_URL"], quietLogger(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Unix()
	if _, err := d.UpdateWebhook(context.Background(), 2, licensor.WebhookPatch{Paused: new(true)}, licensor.Change{Time: pausedAt, Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	out, _, err = cli(t, env, "webhooks", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ID", "URL", "EVENTS", "STATE", "https://drm.example.com/licensor", "license.created,license.deleted,license.expired", "Irdeto", "every event type",
		"active", "paused since 2026-01-02T03:04:05Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("webhooks list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "whsec_") {
		t.Errorf("webhooks list shows a secret:\n%s", out)
	}
	out, _, err = cli(t, env, "webhooks", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var views []webhookView
	if err := json.Unmarshal([]byte(out), &views); err != nil || len(views) != 2 || views[0].ID != 1 || len(views[0].EventTypes) != 3 ||
		views[0].PausedAt != nil || views[1].PausedAt == nil || *views[1].PausedAt != pausedAt {
		t.Fatalf("webhooks list --json: %v %s", err, out)
	}

	if _, _, err := cli(t, env, "webhooks", "delete", "2"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := cli(t, env, "webhooks", "list", "--json"); strings.Contains(out, "10.0.0.5") {
		t.Errorf("deleted webhook still listed: %s", out)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
		code int
	}{
		{"no url", []string{"webhooks", "create"}, "--url is required", 2},
		{"http", []string{"webhooks", "create", "--url", "http://drm.example.com/"}, "must be https", 2},
		{"internal", []string{"webhooks", "create", "--url", "https://127.0.0.1/"}, "may not reach", 2},
		{"event", []string{"webhooks", "create", "--url", "https://a.example/", "--event", "license.renamed"}, "unknown event type", 2},
		{"secret", []string{"webhooks", "create", "--url", "https://a.example/", "--secret", "hunter2"}, "whsec_", 2},
		{"delete unknown", []string{"webhooks", "delete", "9"}, "no webhook 9", 1},
		{"delete bad id", []string{"webhooks", "delete", "x"}, "not a webhook id", 2},
		{"unknown command", []string{"webhooks", "rename"}, "unknown webhooks command", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := cli(t, env, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
			if got := exitCode(err); got != c.code {
				t.Errorf("exit code %d, want %d", got, c.code)
			}
		})
	}
}

func TestServeOutboxFlags(t *testing.T) {
	env := map[string]string{"DATABASE_URL": filepath.Join(t.TempDir(), "flags.db")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--retention", "1h"}, "--retention must be longer than --webhook-max-age"},
		{[]string{"serve", "--retention", "soon"}, "neither a duration"},
		{[]string{"serve", "--webhook-timeout", "0s"}, "must be positive"},
		{[]string{"serve", "--webhook-endpoint-concurrency", "0"}, "must be positive"},
		{[]string{"serve", "--webhook-allow-cidr", "10.0.0.0/33"}, "not a CIDR"},
		{[]string{"serve", "--bulk-rate", "0"}, "--bulk-rate must be positive"},
		{[]string{"serve", "--renewal-rate", "0"}, "--renewal-rate must be positive"},
		{[]string{"serve", "--renewal-rate", "-1"}, "--renewal-rate must be positive"},
		{[]string{"serve", "--renewal-rate", "NaN"}, "--renewal-rate must be positive"},
		{[]string{"serve", "--bulk-rate", "NaN"}, "--bulk-rate must be positive"},
		{[]string{"serve", "--renewal-rate", "fast"}, "renewal-rate"},
	} {
		_, _, err := cli(t, env, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || exitCode(err) != 2 {
			t.Errorf("%v: %v, want a usage error mentioning %q", c.args, err, c.want)
		}
	}
	var d durationOrPeriod
	if err := d.Set("P90D"); err != nil || time.Duration(d) != 90*24*time.Hour {
		t.Errorf("P90D: %v %v", time.Duration(d), err)
	}
}

// hookReceiver is a webhook endpoint for the process tests: it verifies
// signatures and records what it accepts. While held, it keeps requests
// waiting (a delivery in flight); fail makes it answer some with 500.
type hookReceiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	held     bool
	release  chan struct{}
	requests int
	failEach int // answer 500 to every failEach-th request (0: never)
	accepted []webhook.Message
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{t: t, release: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.unhold()
		r.srv.Close()
	})
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	secret, held, release := r.secret, r.held, r.release
	r.requests++
	fail := r.failEach > 0 && r.requests%r.failEach == 0
	r.mu.Unlock()
	if err := webhook.Verify(req.Header, body, secret, time.Now()); err != nil {
		r.t.Errorf("receiver: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if held {
		select {
		case <-release:
		case <-req.Context().Done():
			return
		}
	}
	if fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var m webhook.Message
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Errorf("receiver: %v", err)
	}
	r.mu.Lock()
	r.accepted = append(r.accepted, m)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *hookReceiver) hold() {
	r.mu.Lock()
	r.held = true
	r.mu.Unlock()
}

func (r *hookReceiver) unhold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held {
		r.held = false
		close(r.release)
	}
}

func (r *hookReceiver) requestCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// check verifies that every event of the feed was accepted at least once
// and that no license's events went back in commit order; it reports
// false while events are missing.
func (r *hookReceiver) check(t *testing.T, feed []feedEvent) bool {
	t.Helper()
	r.mu.Lock()
	accepted := append([]webhook.Message(nil), r.accepted...)
	r.mu.Unlock()
	got := map[string]int{}
	last := map[string]int64{}
	for _, m := range accepted {
		got[m.EventID]++
		var res struct{ Type, ID string }
		_ = json.Unmarshal(m.Data, &res)
		key := res.Type + ":" + res.ID
		seq, _ := strconv.ParseInt(m.EventID, 10, 64)
		if seq < last[key] {
			t.Fatalf("%s: event %d arrived after event %d", key, seq, last[key])
		}
		last[key] = seq
	}
	for _, e := range feed {
		if got[e.ID] == 0 {
			return false
		}
	}
	return true
}

func (r *hookReceiver) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	n := 0
	for _, m := range r.accepted {
		if seen[m.EventID] {
			n++
		}
		seen[m.EventID] = true
	}
	return n
}

// feedEvent is an event as GET /events shows it.
type feedEvent struct {
	ID         string `json:"id"`
	Attributes struct {
		EventType string  `json:"event_type"`
		LicenseID *string `json:"license_id"`
	} `json:"attributes"`
}

// readFeed reads the whole change feed of a server, checking that the
// positions run 1, 2, 3, ... without a gap or a repeat.
func readFeed(t *testing.T, url, key string) []feedEvent {
	t.Helper()
	var out []feedEvent
	next := "/api/license/management/v4/events?page%5Bsize%5D=7"
	for {
		req, _ := http.NewRequest("GET", url+next, nil)
		req.Header.Set("Authorization", "Apikey "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Data  []feedEvent `json:"data"`
			Links struct {
				Next string `json:"next"`
			} `json:"links"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", next, resp.StatusCode, err)
		}
		for _, e := range page.Data {
			if want := strconv.Itoa(len(out) + 1); e.ID != want {
				t.Fatalf("feed: event %s where %s was due", e.ID, want)
			}
			out = append(out, e)
		}
		if len(page.Data) == 0 {
			return out
		}
		next = page.Links.Next
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// webhookFlags let the servers of these tests deliver to loopback.
var webhookFlags = []string{"--webhook-allow-http", "--webhook-allow-cidr", "127.0.0.1/32", "--webhook-timeout", "2s"}

// subscribeCLI creates a webhook for r with the CLI.
func subscribeCLI(t *testing.T, db string, r *hookReceiver) {
	t.Helper()
	out, errOut, err := cli(t, map[string]string{"DATABASE_URL": db}, "webhooks", "create", "--url", r.srv.URL+"/hook", "--allow-http", "--allow-private")
	if err != nil {
		t.Fatalf("webhooks create: %v\n%s", err, errOut)
	}
	r.mu.Lock()
	r.secret = strings.TrimSpace(out)
	r.mu.Unlock()
}

// TestWebhooksSurviveKill kills the server (SIGKILL) while a delivery is in
// flight and right after more writes committed: after a restart every
// event reaches the receiver, in order per license.
func TestWebhooksSurviveKill(t *testing.T) {
	dbs := map[string]string{"sqlite": filepath.Join(t.TempDir(), "licensor.db")}
	if raw := os.Getenv("LICENSOR_POSTGRES_URL"); raw != "" {
		dbs["postgres"] = testdb.PostgresURL(t)
	}
	for name, db := range dbs {
		t.Run(name, func(t *testing.T) {
			key := createKey(t, db, "bss", "write")
			r := newHookReceiver(t)
			subscribeCLI(t, db, r)
			r.hold()
			p := startServer(t, db, webhookFlags...)
			ctx := context.Background()
			c := client.New(p.url, key)
			prod, _, err := c.CreateProduct(ctx, licensor.NewProduct("Sports"))
			if err != nil {
				t.Fatal(err)
			}
			create := func(n int) {
				for i := range n {
					l, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: fmt.Sprint("u", i%4), ProductID: prod.ID})
					if err != nil {
						t.Fatal(err)
					}
					if i%3 == 0 {
						if err := c.DeleteLicense(ctx, l.ID); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			create(8)
			waitUntil(t, "a delivery in flight", func() bool { return r.requestCount() > 0 })
			create(6) // committed; then the process dies before it can deliver them
			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = p.cmd.Wait()
			r.unhold()

			p = startServer(t, db, webhookFlags...)
			feed := readFeed(t, p.url, key)
			if want := 1 + 14 + 5; len(feed) != want {
				t.Fatalf("feed after the restart: %d events, want %d", len(feed), want)
			}
			waitUntil(t, "every event delivered", func() bool { return r.check(t, feed) })
			t.Logf("%d events delivered after a kill -9; %d duplicates", len(feed), r.duplicates())
		})
	}
}

// TestTwoInstancesFeedAndWebhooks runs two server processes on one
// PostgreSQL database and writes through both at once: the feed of each
// shows every event exactly once, in one gap-free order, and the receiver
// (which fails some requests) gets every event at least once, in order per
// license.
func TestTwoInstancesFeedAndWebhooks(t *testing.T) {
	raw := os.Getenv("LICENSOR_POSTGRES_URL")
	if raw == "" {
		if os.Getenv("LICENSOR_POSTGRES_REQUIRED") == "1" {
			t.Fatal("LICENSOR_POSTGRES_REQUIRED=1 but LICENSOR_POSTGRES_URL is not set")
		}
		t.Skip("LICENSOR_POSTGRES_URL not set")
	}
	db := testdb.PostgresURL(t)
	key := createKey(t, db, "bss", "write")
	r := newHookReceiver(t)
	r.failEach = 7
	subscribeCLI(t, db, r)
	a, b := startServer(t, db, webhookFlags...), startServer(t, db, webhookFlags...)
	ctx := context.Background()
	prod, _, err := client.New(a.url, key).CreateProduct(ctx, licensor.NewProduct("Race"))
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 10
	var wg sync.WaitGroup
	created := make(chan int64, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := a
			if w%2 == 1 {
				srv = b
			}
			c := client.New(srv.url, key)
			for i := range each {
				l, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: fmt.Sprintf("w%d-%d", w, i), ProductID: prod.ID})
				if err != nil {
					t.Error(err)
					return
				}
				created <- l.ID
				if i%2 == 0 {
					if err := c.DeleteLicense(ctx, l.ID); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(created)
	var ids []int64
	for id := range created {
		ids = append(ids, id)
	}
	for _, srv := range []*process{a, b} {
		feed := readFeed(t, srv.url, key)
		if want := 1 + writers*each + writers*each/2; len(feed) != want {
			t.Fatalf("feed of %s: %d events, want %d", srv.url, len(feed), want)
		}
		seen := map[string]int{}
		for _, e := range feed {
			if e.Attributes.EventType == "license.created" {
				seen[*e.Attributes.LicenseID]++
			}
		}
		for _, id := range ids {
			if seen[strconv.FormatInt(id, 10)] != 1 {
				t.Errorf("license %d: %d license.created events in the feed", id, seen[strconv.FormatInt(id, 10)])
			}
		}
	}
	feed := readFeed(t, a.url, key)
	waitUntil(t, "every event delivered", func() bool { return r.check(t, feed) })
	t.Logf("%d events; the receiver answered 500 to every 7th request; %d duplicate deliveries", len(feed), r.duplicates())
}

// TestServeCORSFlags: a CORS origin that is not scheme://host[:port], or a
// wildcard, stops serve with a usage error, from the flag or from
// LICENSOR_CORS_ORIGINS; a good list is read from the environment.
func TestServeCORSFlags(t *testing.T) {
	dbEnv := map[string]string{"DATABASE_URL": filepath.Join(t.TempDir(), "flags.db")}
	for _, c := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"serve", "--cors-origin", "*"}, "", "wildcards are not allowed"},
		{[]string{"serve", "--cors-origin", "https://app.example.com/path"}, "", "scheme://host[:port]"},
		{[]string{"serve"}, "https://app.example.com, *", "LICENSOR_CORS_ORIGINS"},
	} {
		env := map[string]string{"LICENSOR_CORS_ORIGINS": c.env}
		for k, v := range dbEnv {
			env[k] = v
		}
		_, _, err := cli(t, env, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || exitCode(err) != 2 {
			t.Errorf("%v (env %q): %v, want a usage error mentioning %q", c.args, c.env, err, c.want)
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg serveConfig
	cfg.flags(fs)
	getenv := func(k string) string {
		return map[string]string{"LICENSOR_CORS_ORIGINS": "https://App.example.com, http://localhost:3000"}[k]
	}
	if err := parseWithEnv(fs, nil, getenv, serveEnv); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.corsOrigins, " "); got != "https://app.example.com http://localhost:3000" {
		t.Errorf("origins from LICENSOR_CORS_ORIGINS: %q", got)
	}
}
