package api_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor/internal/lifecycle"
)

// bulkBody is a CreateBulkJob request.
func bulkBody(attrs map[string]any) map[string]any {
	return map[string]any{"data": map[string]any{"type": "BulkJob", "attributes": attrs}}
}

// bulkJob is a decoded BulkJob resource.
type bulkJob struct {
	ID         string `json:"id"`
	Attributes struct {
		Action        string           `json:"action"`
		Status        *string          `json:"status"`
		Reason        *string          `json:"reason"`
		Filter        map[string]any   `json:"filter"`
		State         string           `json:"state"`
		Matched       int64            `json:"matched"`
		Processed     int64            `json:"processed"`
		Changed       int64            `json:"changed"`
		Unchanged     int64            `json:"unchanged"`
		Refused       int64            `json:"refused"`
		RefusedSample []map[string]any `json:"refused_sample"`
		Actor         string           `json:"actor"`
		StartedAt     *int64           `json:"started_at"`
		FinishedAt    *int64           `json:"finished_at"`
	} `json:"attributes"`
}

func decodeBulkJob(t *testing.T, r *response) bulkJob {
	t.Helper()
	var doc struct {
		Data bulkJob `json:"data"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return doc.Data
}

func (en *env) bulkJob(id string) bulkJob {
	en.t.Helper()
	return decodeBulkJob(en.t, en.must(200, req{method: "GET", path: base + "/bulk_jobs/" + id}))
}

// runBulkWorker runs the bulk job worker over the server's store until the
// test ends.
func (en *env) runBulkWorker() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		lifecycle.Bulk(ctx, en.api.Store(), lifecycle.BulkOptions{Now: en.clock.Now, Poll: 5 * time.Millisecond, Rate: -1, Chunk: 2})
	}()
	stop = func() { cancel(); <-done }
	en.t.Cleanup(stop)
	return stop
}

// waitJob waits until job id is in state want.
func (en *env) waitJob(id, want string) bulkJob {
	en.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j := en.bulkJob(id)
		if j.Attributes.State == want {
			return j
		}
		if time.Now().After(deadline) {
			en.t.Fatalf("bulk job %s: %s, want %s", id, j.Attributes.State, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBulkJobs drives bulk jobs over HTTP: a dry run, a job with an
// Idempotency-Key run by the worker (its progress, the licenses, the
// events and this instance's entitlements), cancellation and the checks
// of a request.
func TestBulkJobs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		sports := en.product(map[string]any{"title": "Sports", "live": channels("espn")})
		news := en.product(map[string]any{"title": "News", "live": channels("cnn")})
		var ids []string
		for i := range 5 {
			ids = append(ids, path(en.createLicense("u"+string(rune('1'+i%2)), sports, nil), "id").(string))
		}
		other := path(en.createLicense("u1", news, nil), "id").(string)
		if !en.check(question("u1", "espn", "live"))[0] {
			t.Fatal("not entitled before the job")
		}

		filter := map[string]any{"product_id": sports, "status": []any{"ACTIVE"}}
		dry := en.must(200, req{method: "POST", path: base + "/bulk_jobs", body: bulkBody(map[string]any{
			"action": "suspend", "filter": filter, "dry_run": true})}).json(t)
		if num(path(dry, "meta", "matched")) != 5 || len(path(dry, "meta", "sample").([]any)) != 5 || path(dry, "meta", "sample", 0) != ids[0] {
			t.Errorf("dry run: %v", dry)
		}
		// The dry run created nothing: the first job gets the first id.
		key := map[string]string{"Idempotency-Key": "bulk-1"}
		body := bulkBody(map[string]any{"action": "suspend", "reason": "campaign over", "filter": filter})
		resp := en.must(202, req{method: "POST", path: base + "/bulk_jobs", body: body, header: key})
		j := decodeBulkJob(t, resp)
		if resp.Header.Get("Location") != base+"/bulk_jobs/"+j.ID || j.Attributes.State != "queued" || j.Attributes.Matched != 5 ||
			j.Attributes.Actor != "writer" || *j.Attributes.Status != "SUSPENDED" || *j.Attributes.Reason != "campaign over" ||
			j.Attributes.Filter["product_id"] != sports || j.Attributes.Filter["status"] != "ACTIVE" {
			t.Errorf("created: %s", resp.body)
		}
		again := en.must(202, req{method: "POST", path: base + "/bulk_jobs", body: body, header: key})
		if again.Header.Get("Idempotent-Replayed") != "true" || decodeBulkJob(t, again).ID != j.ID {
			t.Errorf("replay: %s %s", again.Header, again.body)
		}

		stopWorker := en.runBulkWorker()
		done := en.waitJob(j.ID, "done")
		if done.Attributes.Processed != 5 || done.Attributes.Changed != 5 || done.Attributes.StartedAt == nil || done.Attributes.FinishedAt == nil {
			t.Errorf("done: %+v", done.Attributes)
		}
		for _, id := range ids {
			if s := path(en.must(200, req{method: "GET", path: base + "/licenses/" + id}).json(t), "data", "attributes", "status"); s != "SUSPENDED" {
				t.Errorf("license %s: %v", id, s)
			}
		}
		if s := path(en.must(200, req{method: "GET", path: base + "/licenses/" + other}).json(t), "data", "attributes", "status"); s != "ACTIVE" {
			t.Errorf("license of another product: %v", s)
		}
		if en.check(question("u1", "espn", "live"))[0] {
			t.Error("still entitled after the job")
		}
		feed := en.must(200, req{method: "GET", path: base + "/events?filter[type]=license.suspended"}).json(t)
		events := path(feed, "data").([]any)
		if len(events) != 5 {
			t.Fatalf("%d license.suspended events, want 5", len(events))
		}
		for _, ev := range events {
			if path(ev, "attributes", "actor") != "writer" || path(ev, "attributes", "request_id") != "bulk-job:"+j.ID ||
				path(ev, "attributes", "data", "meta", "reason") != "campaign over" {
				t.Errorf("event: %v", ev)
			}
		}

		// Reinstate them; then delete user u1's, and cancel a job the
		// worker has not reached (it is stopped).
		r := decodeBulkJob(t, en.must(202, req{method: "POST", path: base + "/bulk_jobs", body: bulkBody(map[string]any{
			"action": "reinstate", "filter": map[string]any{"status": "SUSPENDED,SUSPENDEDADMIN"}})}))
		if got := en.waitJob(r.ID, "done"); got.Attributes.Changed != 5 {
			t.Errorf("reinstate: %+v", got.Attributes)
		}
		if !en.check(question("u1", "espn", "live"))[0] {
			t.Error("not entitled after the reinstate")
		}
		stopWorker() // the next job waits: no worker runs
		c := decodeBulkJob(t, en.must(202, req{method: "POST", path: base + "/bulk_jobs", body: bulkBody(map[string]any{
			"action": "delete", "filter": map[string]any{"user_id": "u1"}})}))
		for range 2 {
			got := decodeBulkJob(t, en.must(200, req{method: "POST", path: base + "/bulk_jobs/" + c.ID + "/cancel"}))
			if got.Attributes.State != "cancelled" || got.Attributes.FinishedAt == nil || got.Attributes.Processed != 0 {
				t.Errorf("cancel: %+v", got.Attributes)
			}
		}
		if codes := en.must(409, req{method: "POST", path: base + "/bulk_jobs/" + r.ID + "/cancel"}).errorCodes(t); !slices.Equal(codes, []string{"CONFLICT"}) {
			t.Errorf("cancel of a done job: %v", codes)
		}
		en.must(200, req{method: "GET", path: base + "/licenses/" + ids[0]})

		// Unknown ids, read keys, bodies on cancel.
		if codes := en.must(404, req{method: "GET", path: base + "/bulk_jobs/987654"}).errorCodes(t); !slices.Equal(codes, []string{"BULK_JOB_NOT_FOUND"}) {
			t.Errorf("unknown job: %v", codes)
		}
		en.must(404, req{method: "POST", path: base + "/bulk_jobs/987654/cancel"})
		en.must(400, req{method: "GET", path: base + "/bulk_jobs/x1"})
		en.must(403, req{method: "GET", path: base + "/bulk_jobs/" + j.ID, key: en.readKey})
		en.must(403, req{method: "POST", path: base + "/bulk_jobs", key: en.readKey, body: body})
		en.must(400, req{method: "POST", path: base + "/bulk_jobs/" + c.ID + "/cancel", body: `{"meta":{}}`})
	})
}

// TestBulkJobRequestChecks: a job's filter is read by the list's own
// parser, with the list's rules, and every problem points at its member.
func TestBulkJobRequestChecks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		for _, c := range []struct {
			name  string
			attrs map[string]any
			want  []string // "CODE pointer"
		}{
			{"no filter", map[string]any{"action": "delete"}, []string{"MISSING_ATTRIBUTE /data/attributes/filter"}},
			{"empty filter", map[string]any{"action": "delete", "filter": map[string]any{}}, []string{"INVALID_ATTRIBUTE /data/attributes/filter"}},
			{"no action", map[string]any{"filter": map[string]any{"user_id": "u1"}}, []string{"MISSING_ATTRIBUTE /data/attributes/action"}},
			{"unknown action", map[string]any{"action": "revoke", "filter": map[string]any{"user_id": "u1"}}, []string{"INVALID_ATTRIBUTE /data/attributes/action"}},
			{"delete with a reason", map[string]any{"action": "delete", "reason": "x", "filter": map[string]any{"user_id": "u1"}}, []string{"INVALID_ATTRIBUTE /data/attributes/action"}},
			{"bad suspension", map[string]any{"action": "suspend", "status": "ACTIVE", "filter": map[string]any{"user_id": "u1"}}, []string{"INVALID_ATTRIBUTE /data/attributes/status"}},
			{"unknown filter", map[string]any{"action": "delete", "filter": map[string]any{"colour": "red"}}, []string{"UNKNOWN_ATTRIBUTE /data/attributes/filter/colour"}},
			{"bad product id", map[string]any{"action": "delete", "filter": map[string]any{"product_id": "x"}}, []string{"INVALID_ATTRIBUTE /data/attributes/filter/product_id"}},
			{"bad user id", map[string]any{"action": "delete", "filter": map[string]any{"user_id": "a b"}}, []string{"INVALID_ATTRIBUTE /data/attributes/filter/user_id"}},
			{"bad status", map[string]any{"action": "delete", "filter": map[string]any{"status": "GONE"}}, []string{"INVALID_ATTRIBUTE /data/attributes/filter/status"}},
			{"bad bound", map[string]any{"action": "delete", "filter": map[string]any{"stop_date": map[string]any{"lt": "soon"}}}, []string{"INVALID_ATTRIBUTE /data/attributes/filter/stop_date/lt"}},
			{"unknown operator", map[string]any{"action": "delete", "filter": map[string]any{"stop_date": map[string]any{"before": 5}}}, []string{"UNKNOWN_ATTRIBUTE /data/attributes/filter/stop_date/before"}},
			{"scalar range", map[string]any{"action": "delete", "filter": map[string]any{"stop_date": 5}}, []string{"INVALID_ATTRIBUTE /data/attributes/filter/stop_date"}},
			{"read-only", map[string]any{"action": "delete", "state": "done", "filter": map[string]any{"user_id": "u1"}}, []string{"INVALID_ATTRIBUTE /data/attributes/state"}},
		} {
			resp := en.must(400, req{method: "POST", path: base + "/bulk_jobs", body: bulkBody(c.attrs)})
			var doc struct {
				Errors []struct {
					Code   string `json:"code"`
					Source struct {
						Pointer string `json:"pointer"`
					} `json:"source"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(resp.body, &doc); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range doc.Errors {
				got = append(got, e.Code+" "+e.Source.Pointer)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v (%s)", c.name, got, c.want, resp.body)
			}
		}
		// Numbers, booleans and ranges in the JSON forms; the response
		// shows the list's forms.
		resp := en.must(202, req{method: "POST", path: base + "/bulk_jobs", body: bulkBody(map[string]any{"action": "delete",
			"filter": map[string]any{"product_id": 7, "recurring": false, "created_at": map[string]any{"gte": 100, "lt": "200"}}})})
		f := decodeBulkJob(t, resp).Attributes.Filter
		if f["product_id"] != "7" || f["recurring"] != false || num(path(f, "created_at", "gte")) != 100 || num(path(f, "created_at", "lt")) != 200 {
			t.Errorf("filter: %v", f)
		}
		if strings.Contains(string(resp.body), "user_id") {
			t.Errorf("absent filters shown: %s", resp.body)
		}
	})
}
