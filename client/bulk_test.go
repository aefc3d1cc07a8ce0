package client_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
	"github.com/licensor/licensor/internal/lifecycle"
	"github.com/licensor/licensor/internal/testdb"
)

func TestBulkJobsAgainstServer(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		l := newLive(t, e)
		ctx := context.Background()
		p := l.product("Sports", nil)
		var ids []int64
		for range 3 {
			lic, err := l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: p.ID})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, lic.ID)
		}
		user := "41"
		r := client.BulkJobRequest{Action: licensor.BulkSuspend, Suspension: client.Suspension{Status: licensor.StatusSuspendedAdmin, Reason: "fraud"},
			Filter: licensor.LicenseFilter{UserID: &user, ProductID: &p.ID, Statuses: []licensor.Status{licensor.StatusActive},
				Ranges: []licensor.Range{{Field: "start_date", Op: "lte", Value: serverNow.Unix()}, {Field: "created_at", Op: "gt", Value: 5}}}}
		if n, sample, err := l.writer.DryRunBulkJob(ctx, r); err != nil || n != 3 || !slices.Equal(sample, ids) {
			t.Fatalf("DryRunBulkJob = %d %v, %v", n, sample, err)
		}
		j, err := l.writer.CreateBulkJob(ctx, r, client.WithIdempotencyKey("k1"))
		if err != nil || j.State != licensor.BulkQueued || j.Matched != 3 || j.Status != licensor.StatusSuspendedAdmin || j.Reason != "fraud" ||
			j.Actor != "writer" || !reflect.DeepEqual(j.Filter, r.Filter) {
			t.Fatalf("CreateBulkJob = %+v, %v", j, err)
		}
		if again, err := l.writer.CreateBulkJob(ctx, r, client.WithIdempotencyKey("k1")); err != nil || again.ID != j.ID {
			t.Errorf("CreateBulkJob again = %+v, %v", again, err)
		}
		_, err = l.reader.BulkJob(ctx, j.ID)
		apiError(t, err, 403, licensor.CodeInsufficientScope)
		_, err = l.writer.BulkJob(ctx, j.ID+100)
		apiError(t, err, 404, licensor.CodeBulkJobNotFound)
		_, err = l.writer.CreateBulkJob(ctx, client.BulkJobRequest{Action: licensor.BulkDelete})
		apiError(t, err, 400, licensor.CodeInvalidAttribute)

		wctx, stopWorker := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			lifecycle.Bulk(wctx, l.store, lifecycle.BulkOptions{Now: func() time.Time { return serverNow }, Poll: 5 * time.Millisecond, Rate: -1})
		}()
		deadline := time.Now().Add(20 * time.Second)
		for j.State != licensor.BulkDone && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			if j, err = l.writer.BulkJob(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		stopWorker()
		<-done
		if j.State != licensor.BulkDone || j.Processed != 3 || j.Changed != 3 || j.StartedAt == nil || j.FinishedAt == nil {
			t.Fatalf("BulkJob = %+v", j)
		}
		for _, id := range ids {
			if lic, err := l.writer.License(ctx, id); err != nil || lic.Status != licensor.StatusSuspendedAdmin {
				t.Errorf("license %d = %+v, %v", id, lic, err)
			}
		}
		_, err = l.writer.CancelBulkJob(ctx, j.ID)
		apiError(t, err, 409, licensor.CodeConflict)
		q, err := l.writer.CreateBulkJob(ctx, client.BulkJobRequest{Action: licensor.BulkDelete, Filter: licensor.LicenseFilter{UserID: &user}})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := l.writer.CancelBulkJob(ctx, q.ID); err != nil || c.State != licensor.BulkCancelled || c.Action != licensor.BulkDelete || c.Status != "" {
			t.Errorf("CancelBulkJob = %+v, %v", c, err)
		}
	})
}
