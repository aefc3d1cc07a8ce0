package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/entitlement"
)

// channels is a product's channel relationship for attrs.
func channels(ids ...string) map[string]any {
	data := []any{}
	for _, id := range ids {
		data = append(data, map[string]any{"type": "Channel", "id": id})
	}
	return map[string]any{"data": data}
}

// product creates a product; the members live, catchup, npvr and
// startover of attrs go to its relationships.
func (en *env) product(attrs map[string]any) string {
	en.t.Helper()
	rels := map[string]any{}
	for _, s := range []string{"live", "catchup", "npvr", "startover"} {
		if v, ok := attrs[s]; ok {
			rels[s] = v
			delete(attrs, s)
		}
	}
	body := productBody(attrs)
	body["data"].(map[string]any)["relationships"] = rels
	resp := en.must(201, req{method: "POST", path: base + "/products", body: body})
	return path(resp.json(en.t), "data", "id").(string)
}

// entitlements is a decoded Entitlements answer.
type entitlements struct {
	products   []string
	channels   map[string][]string
	validUntil *int64
	etag       string
}

func decodeEntitlements(t *testing.T, resp *response) entitlements {
	t.Helper()
	var doc struct {
		Data struct {
			ID         string `json:"id"`
			Attributes struct {
				ValidUntil *int64 `json:"valid_until"`
			} `json:"attributes"`
			Relationships map[string]struct {
				Data json.RawMessage `json:"data"`
			} `json:"relationships"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		t.Fatalf("%v: %s", err, resp.body)
	}
	out := entitlements{channels: map[string][]string{}, validUntil: doc.Data.Attributes.ValidUntil, etag: resp.Header.Get("ETag")}
	ids := func(raw json.RawMessage) []string {
		var list []struct{ ID string }
		_ = json.Unmarshal(raw, &list)
		s := []string{}
		for _, x := range list {
			s = append(s, x.ID)
		}
		return s
	}
	out.products = ids(doc.Data.Relationships["products"].Data)
	for _, s := range []string{"live", "catchup", "npvr", "startover"} {
		out.channels[s] = ids(doc.Data.Relationships[s].Data)
	}
	return out
}

func (en *env) entitlements(user string, query string) entitlements {
	en.t.Helper()
	p := base + "/users/" + user + "/entitlements"
	if query != "" {
		p += "?" + query
	}
	return decodeEntitlements(en.t, en.must(200, req{method: "GET", path: p, key: en.readKey}))
}

// question is one question of a batch check.
func question(user, channel, service string, at ...int64) map[string]any {
	a := map[string]any{"user_id": user, "channel_id": channel, "service": service}
	if len(at) > 0 {
		a["at"] = at[0]
	}
	return map[string]any{"type": "EntitlementCheck", "attributes": a}
}

// check asks the questions and returns the answers' entitled flags.
func (en *env) check(questions ...map[string]any) []bool {
	en.t.Helper()
	items := make([]any, len(questions))
	for i, q := range questions {
		items[i] = q
	}
	resp := en.must(200, req{method: "POST", path: base + "/entitlements/check", key: en.readKey, body: map[string]any{"data": items}})
	var doc struct {
		Data []struct {
			Attributes struct {
				UserID, ChannelID, Service string
				Entitled                   bool `json:"entitled"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		en.t.Fatal(err)
	}
	out := make([]bool, len(doc.Data))
	for i, a := range doc.Data {
		out[i] = a.Attributes.Entitled
	}
	return out
}

func TestEntitlements(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, withTokens)
		now := en.clock.Now().Unix()
		sports := en.product(map[string]any{"title": "Sports", "live": channels("espn", "eurosport"), "catchup": channels("espn")})
		news := en.product(map[string]any{"title": "News", "live": channels("cnn", "espn"), "npvr": channels("cnn")})
		svod := en.createProduct(map[string]any{"title": "Films"})
		kids := en.product(map[string]any{"title": "Kids", "startover": channels("cbeebies")})

		// Nothing for an unknown user.
		got := en.entitlements("41", "")
		if len(got.products) != 0 || len(got.channels["live"]) != 0 || got.validUntil != nil {
			t.Errorf("unknown user: %+v", got)
		}

		en.createLicense("41", sports, map[string]any{"start_date": now - 100, "stop_date": now + 1000})
		en.createLicense("41", news, map[string]any{"start_date": now - 50})
		en.createLicense("41", svod, map[string]any{"start_date": now + 500})          // future
		en.createLicense("41", kids, map[string]any{"status": "SUSPENDED"})            // never entitles
		en.createLicense("41", kids, map[string]any{"start_date": 0, "stop_date": 10}) // long over
		en.createLicense("42", kids, nil)

		got = en.entitlements("41", "")
		want := entitlements{
			products: []string{sports, news},
			channels: map[string][]string{"live": {"cnn", "espn", "eurosport"}, "catchup": {"espn"}, "npvr": {"cnn"}, "startover": {}},
		}
		if !slices.Equal(got.products, want.products) || fmt.Sprint(got.channels) != fmt.Sprint(want.channels) {
			t.Errorf("now: %+v, want %+v", got, want)
		}
		if got.validUntil == nil || *got.validUntil != now+500 {
			t.Errorf("valid_until %v, want %d (the future license starts)", got.validUntil, now+500)
		}
		// At a later instant, by ?at=: the future license has started and
		// sports has stopped (half-open: at its stop_date it is over).
		later := en.entitlements("41", "at="+strconv.FormatInt(now+1000, 10))
		if !slices.Equal(later.products, []string{news, svod}) || !slices.Equal(later.channels["catchup"], []string{}) || later.validUntil != nil {
			t.Errorf("at stop_date: %+v", later)
		}
		justBefore := en.entitlements("41", "at="+strconv.FormatInt(now+999, 10))
		if !slices.Equal(justBefore.products, []string{sports, news, svod}) || *justBefore.validUntil != now+1000 {
			t.Errorf("just before stop_date: %+v", justBefore)
		}
		before := en.entitlements("41", "at="+strconv.FormatInt(now-100, 10))
		if !slices.Equal(before.products, []string{sports}) {
			t.Errorf("at start_date: %+v", before)
		}

		// ETag and 304; the same answer at another instant has the same ETag.
		resp := en.must(200, req{method: "GET", path: base + "/users/41/entitlements", key: en.readKey})
		etag := resp.Header.Get("ETag")
		if etag == "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("headers: %v", resp.Header)
		}
		resp = en.must(304, req{method: "GET", path: base + "/users/41/entitlements", key: en.readKey, header: map[string]string{"If-None-Match": etag}})
		if len(resp.body) != 0 || resp.Header.Get("ETag") != etag {
			t.Errorf("304: %q %v", resp.body, resp.Header)
		}
		en.must(304, req{method: "GET", path: base + "/users/41/entitlements?at=" + strconv.FormatInt(now+10, 10), key: en.readKey,
			header: map[string]string{"If-None-Match": `"other", W/` + etag}})
		en.must(304, req{method: "GET", path: base + "/users/41/entitlements", key: en.readKey, header: map[string]string{"If-None-Match": "*"}})
		en.must(200, req{method: "GET", path: base + "/users/41/entitlements?at=" + strconv.FormatInt(now+500, 10), key: en.readKey,
			header: map[string]string{"If-None-Match": etag}})
		en.must(200, req{method: "GET", path: base + "/users/41/entitlements", key: en.readKey, header: map[string]string{"If-None-Match": `"stale"`}})

		// The user's own view, by token.
		tok := en.token("41", nil)
		resp = en.userMust(200, tok, req{method: "GET", path: userBase + "/users/41/entitlements"})
		if resp.Header.Get("Cache-Control") != "private, no-cache" || resp.Header.Get("ETag") != etag {
			t.Errorf("end-user headers: %v (etag %s)", resp.Header, etag)
		}
		if own := decodeEntitlements(t, resp); !slices.Equal(own.products, want.products) {
			t.Errorf("end-user answer: %+v", own)
		}
		en.userMust(304, tok, req{method: "GET", path: userBase + "/users/41/entitlements", header: map[string]string{"If-None-Match": etag}})
		en.userMust(403, en.token("42", nil), req{method: "GET", path: userBase + "/users/41/entitlements"})

		// Bad input.
		for _, q := range []string{"at=-1", "at=soon", "at=1&at=2", "since=1"} {
			en.must(400, req{method: "GET", path: base + "/users/41/entitlements?" + q, key: en.readKey})
		}
		en.must(400, req{method: "GET", path: base + "/users/" + url.PathEscape("a b") + "/entitlements", key: en.readKey})
		en.must(401, req{method: "GET", path: base + "/users/41/entitlements", key: "-"})
	})
}

func TestEntitlementCheck(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, func(o *api.Options) { o.MaxBatch = 20 })
		now := en.clock.Now().Unix()
		sports := en.product(map[string]any{"title": "Sports", "live": channels("espn"), "catchup": channels("espn")})
		news := en.product(map[string]any{"title": "News", "live": channels("cnn")})
		en.createLicense("41", sports, map[string]any{"stop_date": now + 100})
		en.createLicense("42", news, map[string]any{"start_date": now + 50})

		got := en.check(
			question("41", "espn", "live"),
			question("41", "espn", "npvr"),
			question("41", "cnn", "live"),
			question("42", "cnn", "live"),
			question("42", "cnn", "live", now+50),
			question("41", "espn", "catchup", now+99),
			question("41", "espn", "catchup", now+100),
			question("nobody", "espn", "live"),
			question("41", "espn", "startover"),
		)
		want := []bool{true, false, false, false, true, true, false, false, false}
		if !slices.Equal(got, want) {
			t.Errorf("answers %v, want %v", got, want)
		}

		// The answers echo the questions, in order, with the instant and
		// valid_until.
		resp := en.must(200, req{method: "POST", path: base + "/entitlements/check", key: en.readKey, body: map[string]any{"data": []any{
			question("42", "cnn", "live"), question("41", "espn", "live"),
		}}})
		a := resp.json(t)
		for i, w := range []struct {
			user  string
			until int64
		}{{"42", now + 50}, {"41", now + 100}} {
			at := path(a, "data", i, "attributes")
			if path(at, "user_id") != w.user || num(path(at, "at")) != now || num(path(at, "valid_until")) != w.until ||
				path(at, "channel_id") == nil || path(a, "data", i, "type") != "EntitlementCheck" {
				t.Errorf("answer %d: %v", i, at)
			}
		}

		// Many questions, up to the batch limit; one more is refused.
		var qs []any
		for i := range 20 {
			qs = append(qs, question(strconv.Itoa(40+i%3), "espn", "live"))
		}
		resp = en.must(200, req{method: "POST", path: base + "/entitlements/check", body: map[string]any{"data": qs}})
		if n := len(resp.json(t)["data"].([]any)); n != 20 {
			t.Errorf("%d answers to 20 questions", n)
		}
		resp = en.must(400, req{method: "POST", path: base + "/entitlements/check", body: map[string]any{"data": append(qs, question("1", "x", "live"))}})
		if codes := resp.errorCodes(t); !slices.Equal(codes, []string{"BATCH_TOO_LARGE"}) {
			t.Errorf("codes %v", codes)
		}

		// Every bad question is reported, with its pointer.
		resp = en.must(400, req{method: "POST", path: base + "/entitlements/check", body: map[string]any{"data": []any{
			question("41", "espn", "live"),
			question("a b", "espn", "live"),
			question("41", "espn", "vod"),
			question("41", "", "live"),
			map[string]any{"type": "EntitlementCheck", "attributes": map[string]any{"user_id": "41", "service": "live", "when": 1}},
			map[string]any{"type": "Check", "attributes": map[string]any{"user_id": "41", "channel_id": "x", "service": "live"}},
			question("41", "espn", "live", -5),
		}}})
		var doc struct {
			Errors []struct {
				Code   string
				Source struct{ Pointer string }
			}
		}
		_ = json.Unmarshal(resp.body, &doc)
		var pointers []string
		for _, e := range doc.Errors {
			pointers = append(pointers, e.Code+" "+e.Source.Pointer)
		}
		for _, w := range []string{
			"INVALID_ATTRIBUTE /data/1/attributes/user_id",
			"INVALID_ATTRIBUTE /data/2/attributes/service",
			"INVALID_ATTRIBUTE /data/3/attributes/channel_id",
			"MISSING_ATTRIBUTE /data/4/attributes/channel_id",
			"UNKNOWN_ATTRIBUTE /data/4/attributes/when",
			"INVALID_ATTRIBUTE /data/5/type",
			"INVALID_ATTRIBUTE /data/6/attributes/at",
		} {
			if !slices.Contains(pointers, w) {
				t.Errorf("missing error %s in %v", w, pointers)
			}
		}
		if slices.ContainsFunc(pointers, func(p string) bool { return strings.Contains(p, "/data/0/") }) {
			t.Errorf("the good question was reported: %v", pointers)
		}
		en.must(400, req{method: "POST", path: base + "/entitlements/check", body: map[string]any{"data": []any{}}})
		en.must(400, req{method: "POST", path: base + "/entitlements/check", body: map[string]any{"data": question("41", "espn", "live")}})
		en.must(415, req{method: "POST", path: base + "/entitlements/check", body: "{}", contentType: "text/plain"})
		en.must(401, req{method: "POST", path: base + "/entitlements/check", key: "-", body: map[string]any{"data": []any{question("41", "espn", "live")}}})

		// The check only reads: no Idempotency-Key record, no replay.
		h := map[string]string{"Idempotency-Key": "check-1"}
		en.must(200, req{method: "POST", path: base + "/entitlements/check", header: h, body: map[string]any{"data": []any{question("41", "espn", "live")}}})
		resp = en.must(200, req{method: "POST", path: base + "/entitlements/check", header: h, body: map[string]any{"data": []any{question("42", "cnn", "live")}}})
		if resp.Header.Get("Idempotent-Replayed") != "" {
			t.Error("a check was replayed")
		}
	})
}

// TestEntitlementsNeverStaleLocally: every write through an instance is
// reflected by its very next check, whatever the cache held.
func TestEntitlementsNeverStaleLocally(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		// A TTL far longer than the test: only invalidation can help.
		en := newEnv(t, e, func(o *api.Options) { o.EndUser.Cache.TTL = time.Hour })
		sports := en.product(map[string]any{"title": "Sports", "live": channels("espn")})
		live := func(user, channel string) bool {
			return en.check(question(user, channel, "live"))[0]
		}
		if live("41", "espn") {
			t.Fatal("entitled without a license")
		}
		// Created: entitled at once (the "no license" answer was cached).
		lic := en.createLicense("41", sports, nil)
		if !live("41", "espn") {
			t.Fatal("a new license does not entitle")
		}
		// Deleted by id.
		en.must(204, req{method: "DELETE", path: base + "/licenses/" + path(lic, "id").(string)})
		if live("41", "espn") {
			t.Fatal("a deleted license still entitles")
		}
		// Batch created, batch deleted.
		resp := en.must(201, req{method: "POST", path: base + "/licenses/batch_create", body: map[string]any{"data": []any{
			licenseObject("41", sports, nil), licenseObject("42", sports, nil)}}})
		if !live("41", "espn") || !live("42", "espn") {
			t.Fatal("batch-created licenses do not entitle")
		}
		var ids []any
		for _, l := range resp.json(t)["data"].([]any) {
			ids = append(ids, map[string]any{"type": "License", "id": path(l, "id")})
		}
		en.must(200, req{method: "POST", path: base + "/licenses/batch_delete", body: map[string]any{"data": ids}})
		if live("41", "espn") || live("42", "espn") {
			t.Fatal("batch-deleted licenses still entitle")
		}
		// Product updates: a channel added, then removed.
		en.createLicense("41", sports, nil)
		if live("41", "cnn") {
			t.Fatal("cnn before it is in the product")
		}
		en.must(200, req{method: "PATCH", path: base + "/products/" + sports, body: map[string]any{"data": map[string]any{
			"type": "Product", "id": sports, "relationships": map[string]any{"live": channels("espn", "cnn")}}}})
		if !live("41", "cnn") {
			t.Fatal("a channel added to the product does not entitle")
		}
		en.must(200, req{method: "PATCH", path: base + "/products/" + sports, body: map[string]any{"data": map[string]any{
			"type": "Product", "id": sports, "relationships": map[string]any{"live": channels("cnn")}}}})
		if live("41", "espn") || !live("41", "cnn") {
			t.Fatal("a channel removed from the product still entitles")
		}
		// The product deleted with its licenses.
		en.must(204, req{method: "DELETE", path: base + "/products/" + sports + "?cascade=true"})
		if live("41", "cnn") {
			t.Fatal("a deleted product still entitles")
		}
		// A user never seen by its license id: deleting it must not let a
		// load in flight bring it back (exercised by the cache tests); here,
		// the plain case.
		news := en.product(map[string]any{"title": "News", "live": channels("cnn")})
		l := en.createLicense("43", news, nil)
		en.must(204, req{method: "DELETE", path: base + "/licenses/" + path(l, "id").(string)})
		if live("43", "cnn") {
			t.Fatal("a license deleted before any check entitles")
		}
	})
}

// openShared opens two stores on one database: two handles on one SQLite
// file, or two pools on one PostgreSQL schema.
func openShared(t *testing.T, e engine) (licensor.Store, licensor.Store) {
	t.Helper()
	dsn := e.URL(t)
	return e.OpenAt(t, dsn), e.OpenAt(t, dsn)
}

// TestEntitlementsAcrossInstances: two servers over one database; a license
// deleted through one stops entitling on the other within a second.
func TestEntitlementsAcrossInstances(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		storeA, storeB := openShared(t, e)
		a := newEnv(t, engine{Name: e.Name, Open: func(testing.TB) licensor.Store { return storeA }})
		b := &env{t: t, store: storeB, clock: a.clock, writeKey: a.writeKey, readKey: a.readKey}
		b.api = api.New(storeB, api.Options{Now: a.clock.Now, KeyCacheTTL: time.Nanosecond})
		b.srv = httptest.NewServer(b.api)
		t.Cleanup(b.srv.Close)
		ttl := entitlement.DefaultTTL // b's (its Options leave it out)
		if ttl > time.Second {
			t.Fatalf("the default entitlement TTL is %v, more than the second allowed", ttl)
		}

		sports := a.product(map[string]any{"title": "Sports", "live": channels("espn")})
		lic := a.createLicense("41", sports, nil)
		// Both instances hold the license in memory now.
		for _, en := range []*env{a, b} {
			if !en.check(question("41", "espn", "live"))[0] {
				t.Fatal("not entitled before the delete")
			}
		}
		a.must(204, req{method: "DELETE", path: base + "/licenses/" + path(lic, "id").(string)})
		deleted := time.Now()
		if a.check(question("41", "espn", "live"))[0] {
			t.Fatal("the instance that deleted the license still entitles")
		}
		// Poll the other instance. By design no check that starts a TTL or
		// more after the delete returned may answer from before it; the test
		// asserts that bound (not how fast polling happens to be).
		var lastEntitled time.Time
		for {
			start := time.Now()
			if !b.check(question("41", "espn", "live"))[0] {
				break
			}
			lastEntitled = start
			if time.Since(deleted) > 10*time.Second {
				t.Fatal("the other instance still entitles 10 s after the delete")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !lastEntitled.IsZero() {
			if lag := lastEntitled.Sub(deleted); lag >= time.Second || lag >= ttl {
				t.Errorf("a check started %v after the delete still saw the license (TTL %v)", lag, ttl)
			}
		}
		t.Logf("%s: the other instance stopped entitling %v after the delete (TTL %v; last stale check started %v after)",
			e.Name, time.Since(deleted).Round(time.Millisecond), ttl, max(0, lastEntitled.Sub(deleted)).Round(time.Millisecond))
	})
}

// TestEntitlementsFollowTheFeed: with the change feed followed, another
// instance's writes reach the cache without waiting for its TTL (here an
// hour).
func TestEntitlementsFollowTheFeed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		storeA, storeB := openShared(t, e)
		a := newEnv(t, engine{Name: e.Name, Open: func(testing.TB) licensor.Store { return storeA }})
		b := otherInstance(t, a, storeB, time.Hour)
		follow(t, b, storeB)

		sports := a.product(map[string]any{"title": "Sports", "live": channels("espn")})
		lic := a.createLicense("41", sports, nil)
		eventually := func(what string, want bool, q map[string]any) time.Duration {
			t.Helper()
			start := time.Now()
			for b.check(q)[0] != want {
				if time.Since(start) > 10*time.Second {
					t.Fatalf("%s: not seen by the other instance after 10 s", what)
				}
				time.Sleep(5 * time.Millisecond)
			}
			return time.Since(start)
		}
		// The watcher starts at the head of the feed; the first check loads.
		eventually("create", true, question("41", "espn", "live"))
		a.must(200, req{method: "PATCH", path: base + "/products/" + sports, body: map[string]any{"data": map[string]any{
			"type": "Product", "id": sports, "relationships": map[string]any{"live": channels("espn", "cnn")}}}})
		lag := eventually("product update", true, question("41", "cnn", "live"))
		a.must(204, req{method: "DELETE", path: base + "/licenses/" + path(lic, "id").(string)})
		lag2 := eventually("delete", false, question("41", "espn", "live"))
		t.Logf("%s: through the feed (poll 20 ms), a product update reached the other instance in %v, a delete in %v",
			e.Name, lag.Round(time.Millisecond), lag2.Round(time.Millisecond))
	})
}

// TestEntitlementsFeedKeepsEntries: two servers over one database, the
// second with a TTL of a second and the change feed followed. While the
// watcher runs, the second instance keeps its entries for several TTLs (no
// reload) and still sees the first instance's writes; once the watcher
// stops, its entries age out by the TTL again, so another write is seen
// within the TTL. (The TTL leaves the watcher, polling every 20 ms, room
// for the pauses of a loaded machine and the race detector.)
func TestEntitlementsFeedKeepsEntries(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		// Three seconds, not one: on a loaded machine (CI runs race
		// builds of every package at once) a 20 ms poll can be late by
		// over a second, and an entry then rightly ages out.
		const ttl = 3 * time.Second
		storeA, storeB := openShared(t, e)
		a := newEnv(t, engine{Name: e.Name, Open: func(testing.TB) licensor.Store { return storeA }})
		b := &env{t: t, store: storeB, clock: a.clock, writeKey: a.writeKey, readKey: a.readKey}
		b.api = api.New(storeB, api.Options{Now: a.clock.Now, KeyCacheTTL: time.Nanosecond,
			EndUser: api.EndUserOptions{Cache: entitlement.Options{TTL: ttl}}})
		b.srv = httptest.NewServer(b.api)
		t.Cleanup(b.srv.Close)
		ctx, cancel := context.WithCancel(context.Background())
		watched := make(chan error, 1)
		go func() {
			watched <- b.api.WatchChanges(ctx, entitlement.FeedWatcher{Store: storeB, Poll: 20 * time.Millisecond})
		}()
		stopped := false
		stop := func() {
			if !stopped {
				stopped = true
				cancel()
				if err := <-watched; err != nil {
					t.Errorf("Watch: %v", err)
				}
			}
		}
		t.Cleanup(stop)

		sports := a.product(map[string]any{"title": "Sports", "live": channels("espn")})
		lic := a.createLicense("41", sports, nil)
		q := question("41", "espn", "live")
		// Once the watcher follows the feed (its start forgets everything),
		// the first check loads; then none for four TTLs.
		created := time.Now()
		waitUntil(t, "the watcher past the create", func() bool {
			lag := cacheMetric(t, b.api, "licensor_entitlement_feed_lag_seconds")
			return lag >= 0 && lag < time.Since(created).Seconds()
		})
		if !b.check(q)[0] {
			t.Fatal("not entitled on the other instance")
		}
		// Three windows at most: a window with a load passes only if a
		// later one has none (a poll late by a TTL on a loaded machine
		// rightly ages an entry out; a cache that reloads while the feed
		// is followed loads in every window).
		for attempt := 1; ; attempt++ {
			loads := cacheMetric(t, b.api, "licensor_entitlement_cache_loads_total")
			for start := time.Now(); time.Since(start) < 3*ttl; time.Sleep(20 * time.Millisecond) {
				if !b.check(q)[0] {
					t.Fatal("lost the entitlement")
				}
			}
			n := cacheMetric(t, b.api, "licensor_entitlement_cache_loads_total")
			if n == loads {
				break
			}
			if attempt == 3 {
				t.Errorf("%v loads in three TTLs while the feed was followed, in each of 3 windows; want none", n-loads)
				break
			}
			t.Logf("window %d: %v loads in three TTLs (a late poll?); again", attempt, n-loads)
		}

		// stale polls the other instance until it answers want, and
		// returns how long after since the last check that still answered
		// otherwise started.
		stale := func(what string, since time.Time, want bool) time.Duration {
			t.Helper()
			var last time.Time
			for {
				start := time.Now()
				if b.check(q)[0] == want {
					break
				}
				last = start
				if time.Since(since) > 10*time.Second {
					t.Fatalf("%s: not seen by the other instance after 10 s", what)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if last.IsZero() {
				return 0
			}
			return last.Sub(since)
		}
		a.must(204, req{method: "DELETE", path: base + "/licenses/" + path(lic, "id").(string)})
		lag := stale("delete, feed followed", time.Now(), false)
		if lag >= ttl {
			t.Errorf("a check started %v after the delete still entitled (TTL %v)", lag, ttl)
		}

		// The watcher stops: entries age out by the TTL.
		stop()
		a.createLicense("41", sports, nil)
		lag2 := stale("create, feed not followed", time.Now(), true)
		if lag2 >= ttl {
			t.Errorf("without the watcher, a check started %v after the create still missed it (TTL %v)", lag2, ttl)
		}
		loads := cacheMetric(t, b.api, "licensor_entitlement_cache_loads_total")
		for start := time.Now(); time.Since(start) < 2*ttl; time.Sleep(20 * time.Millisecond) {
			b.check(q)
		}
		if n := cacheMetric(t, b.api, "licensor_entitlement_cache_loads_total"); n == loads {
			t.Error("without the watcher the entry was never reloaded")
		}
		t.Logf("%s: feed followed: a delete stopped entitling after %v (TTL %v); watcher stopped: a create was seen after %v",
			e.Name, lag.Round(time.Millisecond), ttl, lag2.Round(time.Millisecond))
	})
}

// cacheMetric reads one of the entitlement cache's metrics from srv's
// Prometheus endpoint.
func cacheMetric(t *testing.T, srv *api.Server, name string) float64 {
	t.Helper()
	w := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(w.Body.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// waitUntil polls cond, failing after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
