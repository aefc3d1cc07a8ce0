package client

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
)

// BulkJobRequest is a bulk job to start (see docs/api.md, "Bulk jobs"):
// an action applied, in the background, to every license Filter selects.
type BulkJobRequest struct {
	Action licensor.BulkAction
	// Filter is the license list's filters (at least one).
	Filter licensor.LicenseFilter
	// Suspension is the suspension set or lifted, for suspend and
	// reinstate (zero for delete).
	Suspension Suspension
}

type bulkFilterWire struct {
	UserID            *string          `json:"user_id,omitempty"`
	ProductID         *string          `json:"product_id,omitempty"`
	OrderID           *string          `json:"order_id,omitempty"`
	Status            *string          `json:"status,omitempty"`
	Recurring         *bool            `json:"recurring,omitempty"`
	StartDate         map[string]int64 `json:"start_date,omitempty"`
	StopDate          map[string]int64 `json:"stop_date,omitempty"`
	ExpiryDate        map[string]int64 `json:"expiry_date,omitempty"`
	PurchaseTimestamp map[string]int64 `json:"purchase_timestamp,omitempty"`
	CreatedAt         map[string]int64 `json:"created_at,omitempty"`
}

func (w *bulkFilterWire) ranges() map[string]*map[string]int64 {
	return map[string]*map[string]int64{"start_date": &w.StartDate, "stop_date": &w.StopDate, "expiry_date": &w.ExpiryDate,
		"purchase_timestamp": &w.PurchaseTimestamp, "created_at": &w.CreatedAt}
}

func bulkFilterOut(f licensor.LicenseFilter) bulkFilterWire {
	w := bulkFilterWire{UserID: f.UserID, OrderID: f.OrderID, Recurring: f.Recurring}
	if f.ProductID != nil {
		s := strconv.FormatInt(*f.ProductID, 10)
		w.ProductID = &s
	}
	if len(f.Statuses) > 0 {
		parts := make([]string, len(f.Statuses))
		for i, s := range f.Statuses {
			parts[i] = string(s)
		}
		s := strings.Join(parts, ",")
		w.Status = &s
	}
	rs := w.ranges()
	for _, r := range f.Ranges {
		m, ok := rs[r.Field]
		if !ok {
			continue // the server would refuse it; it is not on the wire
		}
		if *m == nil {
			*m = map[string]int64{}
		}
		(*m)[r.Op] = r.Value
	}
	return w
}

func (w *bulkFilterWire) filter() (licensor.LicenseFilter, error) {
	f := licensor.LicenseFilter{UserID: w.UserID, OrderID: w.OrderID, Recurring: w.Recurring}
	if w.ProductID != nil {
		id, err := parseID("product", *w.ProductID)
		if err != nil {
			return f, err
		}
		f.ProductID = &id
	}
	if w.Status != nil {
		for _, s := range strings.Split(*w.Status, ",") {
			f.Statuses = append(f.Statuses, licensor.Status(s))
		}
	}
	// In the server's order: fields as licensor.LicenseRangeFields, then
	// operators as licensor.RangeOps.
	rs := w.ranges()
	for _, field := range licensor.LicenseRangeFields() {
		m := *rs[field]
		for _, op := range licensor.RangeOps() {
			if v, ok := m[op]; ok {
				f.Ranges = append(f.Ranges, licensor.Range{Field: field, Op: op, Value: v})
			}
		}
	}
	return f, nil
}

type bulkJobIn struct {
	ID         string `json:"id"`
	Attributes struct {
		Action        licensor.BulkAction   `json:"action"`
		Status        *licensor.Status      `json:"status"`
		Reason        *string               `json:"reason"`
		Filter        bulkFilterWire        `json:"filter"`
		State         licensor.BulkJobState `json:"state"`
		Matched       int64                 `json:"matched"`
		Processed     int64                 `json:"processed"`
		Changed       int64                 `json:"changed"`
		Unchanged     int64                 `json:"unchanged"`
		Refused       int64                 `json:"refused"`
		RefusedSample []struct {
			ID   string        `json:"id"`
			Code licensor.Code `json:"code"`
		} `json:"refused_sample"`
		Error      *string `json:"error"`
		Actor      string  `json:"actor"`
		CreatedAt  int64   `json:"created_at"`
		UpdatedAt  int64   `json:"updated_at"`
		StartedAt  *int64  `json:"started_at"`
		FinishedAt *int64  `json:"finished_at"`
	} `json:"attributes"`
}

// job is the licensor.BulkJob the server described. The fields the API
// does not show (UntilID, Cursor, the claim) are zero.
func (w *bulkJobIn) job() (*licensor.BulkJob, error) {
	a := &w.Attributes
	id, err := parseID("bulk job", w.ID)
	if err != nil {
		return nil, err
	}
	j := &licensor.BulkJob{ID: id, Action: a.Action, State: a.State, Matched: a.Matched, Processed: a.Processed,
		Changed: a.Changed, Unchanged: a.Unchanged, Refused: a.Refused, Actor: a.Actor,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, StartedAt: a.StartedAt, FinishedAt: a.FinishedAt}
	if a.Status != nil {
		j.Status = *a.Status
	}
	if a.Reason != nil {
		j.Reason = *a.Reason
	}
	if a.Error != nil {
		j.Error = *a.Error
	}
	if j.Filter, err = a.Filter.filter(); err != nil {
		return nil, err
	}
	for _, r := range a.RefusedSample {
		lid, err := parseID("license", r.ID)
		if err != nil {
			return nil, err
		}
		j.RefusedSample = append(j.RefusedSample, licensor.BulkRefusal{ID: lid, Code: r.Code})
	}
	return j, nil
}

type bulkJobOut struct {
	Data struct {
		Type       string `json:"type"`
		Attributes struct {
			Action licensor.BulkAction `json:"action"`
			Filter bulkFilterWire      `json:"filter"`
			Status licensor.Status     `json:"status,omitempty"`
			Reason string              `json:"reason,omitempty"`
			DryRun bool                `json:"dry_run,omitempty"`
		} `json:"attributes"`
	} `json:"data"`
}

func bulkJobBody(r BulkJobRequest, dryRun bool) bulkJobOut {
	var b bulkJobOut
	b.Data.Type = "BulkJob"
	a := &b.Data.Attributes
	a.Action, a.Filter, a.Status, a.Reason, a.DryRun = r.Action, bulkFilterOut(r.Filter), r.Suspension.Status, r.Suspension.Reason, dryRun
	return b
}

// CreateBulkJob starts a bulk job (CreateBulkJob) and returns it, queued.
// Send it WithIdempotencyKey so that a retry cannot start a second job.
// Errors: licensor.CodeInvalidAttribute and licensor.CodeUnknownAttribute
// for a bad action or filter.
func (c *Client) CreateBulkJob(ctx context.Context, r BulkJobRequest, opts ...RequestOption) (*licensor.BulkJob, error) {
	return c.bulkJobCall(ctx, call{op: "CreateBulkJob", method: http.MethodPost, path: "/bulk_jobs", body: bulkJobBody(r, false), opts: opts})
}

// DryRunBulkJob asks how many licenses a bulk job would apply to now, and
// the first ids (at most 10, in the order the job takes them), without
// starting it.
func (c *Client) DryRunBulkJob(ctx context.Context, r BulkJobRequest, opts ...RequestOption) (matched int64, sample []int64, err error) {
	var doc struct {
		Meta struct {
			Matched int64    `json:"matched"`
			Sample  []string `json:"sample"`
		} `json:"meta"`
	}
	if _, err := c.do(ctx, call{op: "CreateBulkJob", method: http.MethodPost, path: "/bulk_jobs", body: bulkJobBody(r, true), opts: opts}, &doc); err != nil {
		return 0, nil, err
	}
	if sample, err = parseIDs(doc.Meta.Sample); err != nil {
		return 0, nil, fmt.Errorf("client: CreateBulkJob: %w", err)
	}
	return doc.Meta.Matched, slices.Clip(sample), nil
}

// BulkJob returns a bulk job and its progress (GetBulkJobById). Errors:
// licensor.CodeBulkJobNotFound.
func (c *Client) BulkJob(ctx context.Context, id int64, opts ...RequestOption) (*licensor.BulkJob, error) {
	return c.bulkJobCall(ctx, call{op: "GetBulkJobById", method: http.MethodGet, path: "/bulk_jobs/" + strconv.FormatInt(id, 10), opts: opts})
}

// CancelBulkJob stops a queued or running bulk job (CancelBulkJob); what it
// did stays done. Errors: licensor.CodeBulkJobNotFound, licensor.CodeConflict
// for a job that finished.
func (c *Client) CancelBulkJob(ctx context.Context, id int64, opts ...RequestOption) (*licensor.BulkJob, error) {
	return c.bulkJobCall(ctx, call{op: "CancelBulkJob", method: http.MethodPost, path: "/bulk_jobs/" + strconv.FormatInt(id, 10) + "/cancel", opts: opts})
}

func (c *Client) bulkJobCall(ctx context.Context, cl call) (*licensor.BulkJob, error) {
	var doc struct {
		Data resource[bulkJobIn] `json:"data"`
	}
	if _, err := c.do(ctx, cl, &doc); err != nil {
		return nil, err
	}
	j, err := doc.Data.v.job()
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", cl.op, err)
	}
	return j, nil
}
