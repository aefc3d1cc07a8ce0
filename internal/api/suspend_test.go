package api_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/entitlement"
)

// suspensionAnswer is a decoded SuspendLicense or ReinstateLicense answer.
type suspensionAnswer struct {
	Data struct {
		ID         string `json:"id"`
		Attributes struct {
			Status    string `json:"status"`
			StartDate int64  `json:"start_date"`
			StopDate  *int64 `json:"stop_date"`
		} `json:"attributes"`
	} `json:"data"`
	Meta struct {
		Changed        bool   `json:"changed"`
		PreviousStatus string `json:"previous_status"`
	} `json:"meta"`
}

func (en *env) suspension(want int, op, licenseID string, body any, key ...string) suspensionAnswer {
	en.t.Helper()
	r := req{method: "POST", path: base + "/licenses/" + licenseID + "/" + op, body: body}
	if len(key) > 0 {
		r.key = key[0]
	}
	resp := en.must(want, r)
	var a suspensionAnswer
	if want == 200 {
		if err := json.Unmarshal(resp.body, &a); err != nil {
			en.t.Fatal(err)
		}
	}
	return a
}

// TestSuspendAndReinstate drives the actions end to end over HTTP: the
// answers, the idempotent repeats, the SUSPENDED / SUSPENDEDADMIN rules, the
// request checks, the events with the actor and the reason, and the
// entitlements of this instance.
func TestSuspendAndReinstate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		sports := en.product(map[string]any{"title": "Sports", "live": channels("espn"), "license_period": "P1M"})
		lic := en.createLicense("41", sports, map[string]any{"order_id": "o-1"})
		id := path(lic, "id").(string)
		watch := question("41", "espn", "live")
		if !en.check(watch)[0] {
			t.Fatal("not entitled before the suspend")
		}

		a := en.suspension(200, "suspend", id, map[string]any{"meta": map[string]any{"reason": "invoice 2025-03 unpaid"}})
		if a.Data.Attributes.Status != "SUSPENDED" || !a.Meta.Changed || a.Meta.PreviousStatus != "ACTIVE" {
			t.Errorf("suspend: %+v", a)
		}
		if a.Data.Attributes.StartDate != num(path(lic, "attributes", "start_date")) ||
			*a.Data.Attributes.StopDate != num(path(lic, "attributes", "stop_date")) {
			t.Errorf("suspend changed the period: %+v, was %v", a.Data.Attributes, path(lic, "attributes"))
		}
		if en.check(watch)[0] {
			t.Error("still entitled after the suspend")
		}
		got := en.must(200, req{method: "GET", path: base + "/licenses/" + id, key: en.readKey}).json(t)
		if path(got, "data", "attributes", "status") != "SUSPENDED" {
			t.Errorf("GET after the suspend: %v", got)
		}
		// Again, with no body at all: 200, nothing changed.
		if a := en.suspension(200, "suspend", id, nil); a.Meta.Changed || a.Data.Attributes.Status != "SUSPENDED" {
			t.Errorf("suspend again: %+v", a)
		}
		// A read key may not.
		en.suspension(403, "reinstate", id, nil, en.readKey)

		// A plain reinstate lifts SUSPENDED.
		if a := en.suspension(200, "reinstate", id, nil); !a.Meta.Changed || a.Data.Attributes.Status != "ACTIVE" || a.Meta.PreviousStatus != "SUSPENDED" {
			t.Errorf("reinstate: %+v", a)
		}
		if !en.check(watch)[0] {
			t.Error("not entitled after the reinstate")
		}
		if a := en.suspension(200, "reinstate", id, map[string]any{}); a.Meta.Changed {
			t.Errorf("reinstate again: %+v", a)
		}

		// SUSPENDEDADMIN outranks SUSPENDED.
		admin := map[string]any{"meta": map[string]any{"status": "SUSPENDEDADMIN", "reason": "chargeback"}}
		if a := en.suspension(200, "suspend", id, admin); a.Data.Attributes.Status != "SUSPENDEDADMIN" || !a.Meta.Changed {
			t.Errorf("suspend SUSPENDEDADMIN: %+v", a)
		}
		if a := en.suspension(200, "suspend", id, nil); a.Data.Attributes.Status != "SUSPENDEDADMIN" || a.Meta.Changed {
			t.Errorf("plain suspend of SUSPENDEDADMIN: %+v", a)
		}
		resp := en.must(409, req{method: "POST", path: base + "/licenses/" + id + "/reinstate"})
		if codes := resp.errorCodes(t); !slices.Equal(codes, []string{"LICENSE_SUSPENDED_ADMIN"}) {
			t.Errorf("plain reinstate of SUSPENDEDADMIN: %v", codes)
		}
		if a := en.suspension(200, "reinstate", id, map[string]any{"meta": map[string]any{"status": "SUSPENDEDADMIN"}}); a.Data.Attributes.Status != "ACTIVE" {
			t.Errorf("reinstate SUSPENDEDADMIN: %+v", a)
		}

		// Refusals and bad requests.
		en.must(404, req{method: "POST", path: base + "/licenses/999999/suspend"})
		en.must(400, req{method: "POST", path: base + "/licenses/0/suspend"})
		ended := en.createLicense("41", sports, map[string]any{"start_date": 1000, "stop_date": 2000})
		resp = en.must(409, req{method: "POST", path: base + "/licenses/" + path(ended, "id").(string) + "/suspend"})
		if codes := resp.errorCodes(t); !slices.Equal(codes, []string{"LICENSE_NOT_ACTIVE"}) {
			t.Errorf("suspend of an expired license: %v", codes)
		}
		for _, c := range []struct {
			body    any
			pointer string
		}{
			{map[string]any{"meta": map[string]any{"status": "EXPIRED"}}, "/meta/status"},
			{map[string]any{"meta": map[string]any{"reson": "typo"}}, "/meta/reson"},
			{map[string]any{"meta": map[string]any{"reason": strings.Repeat("x", 1025)}}, "/meta/reason"},
			{map[string]any{"meta": map[string]any{"reason": 7}}, "/meta/reason"},
			{map[string]any{"data": map[string]any{"type": "License", "id": id}}, "/data"},
			{map[string]any{"meta": "now"}, "/meta"},
		} {
			resp := en.must(400, req{method: "POST", path: base + "/licenses/" + id + "/suspend", body: c.body})
			if !strings.Contains(string(resp.body), `"pointer":"`+c.pointer+`"`) {
				t.Errorf("%v: want pointer %s: %s", c.body, c.pointer, resp.body)
			}
		}
		en.must(415, req{method: "POST", path: base + "/licenses/" + id + "/suspend", body: `{}`, contentType: "text/plain"})
		en.must(400, req{method: "POST", path: base + "/licenses/" + id + "/suspend?force=true"})
		if got := en.must(200, req{method: "GET", path: base + "/licenses/" + id}).json(t); path(got, "data", "attributes", "status") != "ACTIVE" {
			t.Errorf("refused requests changed the license: %v", got)
		}

		// The change feed: one event per change, none for the no-ops, with
		// the key's name, the request id and the reason.
		p := en.feed(base+"/events?filter[license_id]="+id+"&filter[type]=license.suspended,license.reinstated", en.readKey)
		var types, reasons, previous []string
		for _, ev := range p.Data {
			types = append(types, ev.Attributes.EventType)
			var d struct {
				Meta struct {
					PreviousStatus string `json:"previous_status"`
					Reason         string `json:"reason"`
				} `json:"meta"`
			}
			if err := json.Unmarshal(ev.Attributes.Data, &d); err != nil {
				t.Fatal(err)
			}
			reasons, previous = append(reasons, d.Meta.Reason), append(previous, d.Meta.PreviousStatus)
			if ev.Attributes.Actor != "writer" || ev.Attributes.RequestID == "" {
				t.Errorf("event %s: actor %q request %q", ev.ID, ev.Attributes.Actor, ev.Attributes.RequestID)
			}
		}
		if want := []string{"license.suspended", "license.reinstated", "license.suspended", "license.reinstated"}; !slices.Equal(types, want) {
			t.Errorf("events: %v, want %v", types, want)
		}
		if want := []string{"invoice 2025-03 unpaid", "", "chargeback", ""}; !slices.Equal(reasons, want) {
			t.Errorf("reasons: %q, want %q", reasons, want)
		}
		if want := []string{"ACTIVE", "SUSPENDED", "ACTIVE", "SUSPENDEDADMIN"}; !slices.Equal(previous, want) {
			t.Errorf("previous statuses: %v, want %v", previous, want)
		}

		// An Idempotency-Key replays the first answer, even once the
		// state has moved on.
		key := map[string]string{"Idempotency-Key": "suspend-41-a"}
		first := en.must(200, req{method: "POST", path: base + "/licenses/" + id + "/suspend", header: key})
		en.suspension(200, "reinstate", id, nil)
		replay := en.must(200, req{method: "POST", path: base + "/licenses/" + id + "/suspend", header: key})
		if replay.Header.Get("Idempotent-Replayed") != "true" || string(replay.body) != string(first.body) {
			t.Errorf("replay: %s %s, first %s", replay.Header.Get("Idempotent-Replayed"), replay.body, first.body)
		}
		if got := en.must(200, req{method: "GET", path: base + "/licenses/" + id}).json(t); path(got, "data", "attributes", "status") != "ACTIVE" {
			t.Errorf("a replay suspended again: %v", got)
		}
	})
}

// TestSuspendUser: the per-user actions take every live license of the
// user, report what they did to each, and leave other users alone.
func TestSuspendUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		sports := en.product(map[string]any{"title": "Sports", "live": channels("espn")})
		movies := en.product(map[string]any{"title": "Movies", "live": channels("hbo")})
		l1 := path(en.createLicense("41", sports, nil), "id").(string)
		l2 := path(en.createLicense("41", movies, nil), "id").(string)
		l3 := path(en.createLicense("41", movies, map[string]any{"status": "SUSPENDEDADMIN"}), "id").(string)
		other := path(en.createLicense("42", sports, nil), "id").(string)
		type answer struct {
			Data []struct {
				ID         string `json:"id"`
				Attributes struct {
					Status string `json:"status"`
				} `json:"attributes"`
			} `json:"data"`
			Meta struct {
				Changed, Unchanged []string
				Refused            []struct{ ID, Code, Detail string }
			} `json:"meta"`
		}
		do := func(op string, body any) answer {
			t.Helper()
			var a answer
			if err := json.Unmarshal(en.must(200, req{method: "POST", path: base + "/users/41/licenses/" + op, body: body}).body, &a); err != nil {
				t.Fatal(err)
			}
			return a
		}
		a := do("suspend", map[string]any{"meta": map[string]any{"reason": "dunning level 3"}})
		if len(a.Data) != 3 || !slices.Equal(a.Meta.Changed, []string{l1, l2}) || !slices.Equal(a.Meta.Unchanged, []string{l3}) || len(a.Meta.Refused) != 0 {
			t.Errorf("suspend user 41: %+v", a)
		}
		if got := en.check(question("41", "espn", "live"), question("41", "hbo", "live"), question("42", "espn", "live")); !slices.Equal(got, []bool{false, false, true}) {
			t.Errorf("entitled after the user suspend: %v, want [false false true]", got)
		}
		a = do("reinstate", nil)
		if !slices.Equal(a.Meta.Changed, []string{l1, l2}) || len(a.Meta.Refused) != 1 || a.Meta.Refused[0].ID != l3 || a.Meta.Refused[0].Code != "LICENSE_SUSPENDED_ADMIN" {
			t.Errorf("reinstate user 41: %+v", a)
		}
		if got := en.check(question("41", "espn", "live"), question("41", "hbo", "live")); !slices.Equal(got, []bool{true, true}) {
			t.Errorf("entitled after the user reinstate: %v, want [true true]", got)
		}
		if a := do("reinstate", nil); len(a.Meta.Changed) != 0 || !slices.Equal(a.Meta.Unchanged, []string{l1, l2}) {
			t.Errorf("reinstate user 41 again: %+v", a)
		}
		if got := en.must(200, req{method: "GET", path: base + "/licenses/" + other}).json(t); path(got, "data", "attributes", "status") != "ACTIVE" {
			t.Errorf("another user's license: %v", got)
		}
		empty := en.must(200, req{method: "POST", path: base + "/users/nobody/licenses/suspend"}).json(t)
		if len(path(empty, "data").([]any)) != 0 {
			t.Errorf("unknown user: %v", empty)
		}
		en.must(400, req{method: "POST", path: base + "/users/" + strings.Repeat("x", 65) + "/licenses/suspend"})
		en.must(403, req{method: "POST", path: base + "/users/41/licenses/suspend", key: en.readKey})
		p := en.feed(base+"/events?filter[user_id]=41&filter[type]=license.suspended", en.readKey)
		if len(p.Data) != 2 {
			t.Errorf("license.suspended events of user 41: %d, want 2", len(p.Data))
		}
	})
}

// TestSuspensionAcrossInstances: two servers over one database, the second
// following the change feed with an entitlement TTL of an hour (so only the
// feed can bring the change). A suspend through the first stops the
// entitlement on the second within a second, and a reinstate brings it
// back within a second.
func TestSuspensionAcrossInstances(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		storeA, storeB := openShared(t, e)
		a := newEnv(t, engine{Name: e.Name, Open: func(testing.TB) licensor.Store { return storeA }})
		b := &env{t: t, store: storeB, clock: a.clock, writeKey: a.writeKey, readKey: a.readKey}
		b.api = api.New(storeB, api.Options{Now: a.clock.Now, KeyCacheTTL: time.Nanosecond,
			EndUser: api.EndUserOptions{Cache: entitlement.Options{TTL: time.Hour}}})
		b.srv = httptest.NewServer(b.api)
		t.Cleanup(b.srv.Close)
		ctx, cancel := context.WithCancel(context.Background())
		watched := make(chan error, 1)
		go func() {
			watched <- b.api.WatchChanges(ctx, entitlement.FeedWatcher{Store: storeB})
		}()
		t.Cleanup(func() {
			cancel()
			if err := <-watched; err != nil {
				t.Errorf("Watch: %v", err)
			}
		})

		sports := a.product(map[string]any{"title": "Sports", "live": channels("espn")})
		lic := path(a.createLicense("41", sports, nil), "id").(string)
		q := question("41", "espn", "live")
		until := func(what string, want bool, since time.Time) time.Duration {
			t.Helper()
			for b.check(q)[0] != want {
				if time.Since(since) > 10*time.Second {
					t.Fatalf("%s: not seen by the other instance after 10 s", what)
				}
				time.Sleep(5 * time.Millisecond)
			}
			return time.Since(since)
		}
		created := time.Now()
		waitUntil(t, "the watcher past the create", func() bool {
			lag := cacheMetric(t, b.api, "licensor_entitlement_feed_lag_seconds")
			return lag >= 0 && lag < time.Since(created).Seconds()
		})
		until("create", true, time.Now())
		// Cached on b now, for an hour; only the feed can tell it of the
		// suspend.
		for _, step := range []struct {
			op   string
			want bool
		}{{"suspend", false}, {"reinstate", true}, {"suspend", false}, {"reinstate", true}} {
			a.suspension(200, step.op, lic, nil)
			done := time.Now()
			if lag := until(step.op, step.want, done); lag >= time.Second {
				t.Errorf("%s reached the other instance after %v, want under 1 s", step.op, lag)
			} else {
				t.Logf("%s: %s reached the other instance in %v (feed poll 100 ms)", e.Name, step.op, lag.Round(time.Millisecond))
			}
		}
	})
}
