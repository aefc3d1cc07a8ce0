package faulttest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"
)

// bulkProgress is the state and counts of a bulk job as a server shows it.
type bulkProgress struct {
	State     string `json:"state"`
	Matched   int64  `json:"matched"`
	Processed int64  `json:"processed"`
	Changed   int64  `json:"changed"`
}

func bulkJobOn(t *testing.T, s *server, key, id string) bulkProgress {
	t.Helper()
	r := mustCall(t, 200, "GET", s.url+base+"/bulk_jobs/"+id, key, nil, nil)
	var doc struct {
		Data struct {
			Attributes bulkProgress `json:"attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("bulk job: %s", r)
	}
	return doc.Data.Attributes
}

// bulkRunner is the server whose log says it started (or resumed) job id.
func bulkRunner(servers []*server, id string) []*server {
	var out []*server
	for _, s := range servers {
		for _, msg := range []string{"bulk job started", "bulk job resumed"} {
			for _, rec := range s.logs.records(msg) {
				if fmt.Sprint(rec["bulk_job"]) == id {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// TestBulkJobKilledAndResumed runs a bulk job (suspend 3000 licenses,
// throttled to take seconds) on two server processes over one database:
// its progress reads the same through both, one process runs it, and that
// process is killed with SIGKILL in the middle and started again. The job
// is taken up once its lease ends and finishes: every license suspended,
// each by exactly one license.suspended event of the job, none twice,
// none missing.
func TestBulkJobKilledAndResumed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := e.newDB(t)
		key := createKey(t, db, "bss", "write")
		flags := []string{"--bulk-rate", "400", "--bulk-chunk", "40", "--log-flush", "0"}
		a, b := startServer(t, db, flags...), startServer(t, db, flags...)
		product := createProduct(t, a, key)
		const n = 3000
		for i := range n / 1000 {
			mustCall(t, 201, "POST", a.url+base+"/licenses/batch_create", key, batchBody(fmt.Sprintf("bulk%d", i), product, 1000), nil)
		}
		r := mustCall(t, 202, "POST", b.url+base+"/bulk_jobs", key, []byte(`{"data":{"type":"BulkJob","attributes":{
			"action":"suspend","reason":"faulttest","filter":{"product_id":"`+product+`"}}}}`), map[string]string{"Idempotency-Key": "fault-1"})
		var created struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.body, &created); err != nil {
			t.Fatal(err)
		}
		id := created.Data.ID

		// Running, and the same progress through both.
		if !waitFor(30*time.Second, func() bool { return bulkJobOn(t, a, key, id).Processed >= n/4 }) {
			t.Fatalf("the job made no progress: %+v", bulkJobOn(t, a, key, id))
		}
		pa, pb := bulkJobOn(t, a, key, id), bulkJobOn(t, b, key, id)
		if pa.State != "running" || pb.State != "running" || pa.Matched != n || pb.Matched != n || pb.Processed < pa.Processed {
			t.Fatalf("progress through a %+v, through b %+v", pa, pb)
		}
		runners := bulkRunner([]*server{a, b}, id)
		if len(runners) != 1 {
			t.Fatalf("%d processes say they run the job, want 1", len(runners))
		}
		victim, survivor := runners[0], a
		if victim == a {
			survivor = b
		}
		victim.kill()
		at := bulkJobOn(t, survivor, key, id)
		t.Logf("%s: killed the runner at %d of %d", e.name, at.Processed, n)
		if at.Processed >= n {
			t.Fatalf("the job finished before the kill: %+v", at)
		}
		restarted := startServer(t, db, flags...)

		if !waitFor(60*time.Second, func() bool { return bulkJobOn(t, survivor, key, id).State == "done" }) {
			t.Fatalf("not done after the kill: %+v\n%s", bulkJobOn(t, survivor, key, id), survivor.logs.String())
		}
		done := bulkJobOn(t, restarted, key, id)
		if done.Processed != n || done.Changed != n {
			t.Errorf("done: %+v, want %d processed and changed", done, n)
		}
		if resumed := bulkRunner([]*server{survivor, restarted}, id); len(resumed) != 1 {
			t.Errorf("%d processes resumed the job, want 1", len(resumed))
		}

		// Each license suspended once, by the job: the change feed.
		seen := map[string]int{}
		after := "0"
		for range 1000 {
			q := url.Values{"filter[type]": {"license.suspended"}, "page[size]": {"1000"}}
			if after != "0" {
				q.Set("page[after]", after)
			}
			r := mustCall(t, 200, "GET", survivor.url+base+"/events?"+q.Encode(), key, nil, nil)
			var page struct {
				Data []struct {
					Attributes struct {
						LicenseID string `json:"license_id"`
						RequestID string `json:"request_id"`
					} `json:"attributes"`
				} `json:"data"`
				Links struct {
					Next string `json:"next"`
				} `json:"links"`
			}
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			for _, ev := range page.Data {
				if ev.Attributes.RequestID != "bulk-job:"+id {
					t.Errorf("event of license %s from %q", ev.Attributes.LicenseID, ev.Attributes.RequestID)
				}
				seen[ev.Attributes.LicenseID]++
			}
			if len(page.Data) < 1000 || page.Links.Next == "" {
				break
			}
			u, err := url.Parse(page.Links.Next)
			if err != nil {
				t.Fatal(err)
			}
			after = u.Query().Get("page[after]")
		}
		twice := 0
		for _, c := range seen {
			if c != 1 {
				twice++
			}
		}
		if len(seen) != n || twice != 0 {
			t.Errorf("%d licenses suspended by events (%d more than once), want %d once each", len(seen), twice, n)
		}
		r = mustCall(t, 200, "GET", survivor.url+base+"/licenses?filter[status]=SUSPENDED&count=true&page[size]=1", key, nil, nil)
		var list struct {
			Meta struct {
				Total int64 `json:"total"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(r.body, &list); err != nil || list.Meta.Total != n {
			t.Errorf("suspended licenses: %s", r)
		}
	})
}
