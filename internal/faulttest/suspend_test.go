package faulttest

import (
	"encoding/json"
	"testing"
	"time"
)

// entitledProducts reads the products a user is entitled to now through
// one server.
func entitledProducts(t *testing.T, s *server, key, user string) []string {
	t.Helper()
	r := mustCall(t, 200, "GET", s.url+base+"/users/"+user+"/entitlements", key, nil, nil)
	var doc struct {
		Data struct {
			Relationships struct {
				Products struct {
					Data []struct{ ID string } `json:"data"`
				} `json:"products"`
			} `json:"relationships"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("entitlements: %s", r)
	}
	var ids []string
	for _, p := range doc.Data.Relationships.Products.Data {
		ids = append(ids, p.ID)
	}
	return ids
}

// TestTwoInstancesSuspension runs two server processes on one database: a
// license suspended (and reinstated, and a user's licenses suspended)
// through one stops (and starts again) entitling on the other within a
// second, by the change feed that every serve follows.
func TestTwoInstancesSuspension(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := e.newDB(t)
		key := createKey(t, db, "bss", "write")
		a, b := startServer(t, db), startServer(t, db)
		product := createProduct(t, a, key)
		r := mustCall(t, 201, "POST", a.url+base+"/licenses", key, []byte(`{"data":`+licenseJSON("u1", product, "susp-1")+`}`), nil)
		var created struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.body, &created); err != nil {
			t.Fatal(err)
		}
		lic := created.Data.ID
		entitled := func() bool { return len(entitledProducts(t, b, key, "u1")) == 1 }
		if !waitFor(10*time.Second, entitled) {
			t.Fatal("the other instance never saw the license")
		}
		for _, step := range []struct {
			path string
			want bool
		}{
			{"/licenses/" + lic + "/suspend", false},
			{"/licenses/" + lic + "/reinstate", true},
			{"/users/u1/licenses/suspend", false},
			{"/users/u1/licenses/reinstate", true},
		} {
			// Cached on b (just read); the change is made through a.
			entitled()
			mustCall(t, 200, "POST", a.url+base+step.path, key, []byte(`{"meta":{"reason":"faulttest"}}`), nil)
			done := time.Now()
			var lag time.Duration
			for entitled() != step.want {
				if lag = time.Since(done); lag > 10*time.Second {
					t.Fatalf("%s: not seen by the other instance after 10 s", step.path)
				}
				time.Sleep(5 * time.Millisecond)
			}
			lag = time.Since(done)
			if lag >= time.Second {
				t.Errorf("%s reached the other instance after %v, want under 1 s", step.path, lag)
			}
			t.Logf("%s: POST %s reached the other process in %v", e.name, step.path, lag.Round(time.Millisecond))
		}
	})
}
