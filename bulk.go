package licensor

import (
	"fmt"
	"strconv"
)

// Bulk jobs: one action (delete, suspend, reinstate) applied to every
// license a filter selects, in the background.
//
// A job walks the licenses that match its filter (LicenseFilter, the
// list's filters) in id order, a chunk at a time: each chunk is one short
// transaction that applies the action to the next matching licenses
// (each change an ordinary event: license.deleted, license.suspended,
// license.reinstated), records the job's position (the last id handled,
// a keyset cursor) and its counts, and commits them together. A job cut
// short (the process killed, the database lost) therefore resumes after
// the last committed chunk, and no license is handled twice or skipped.
//
// The job covers the licenses that existed when it was created (ids up to
// UntilID): licenses created while it runs are left alone. Statuses in
// the filter match the effective status when the chunk reaches the
// license, and a license that no longer matches then (deleted, its status
// moved) is left alone.
//
// Exactly one worker runs a job at a time, across any number of
// instances: a worker claims it (ClaimBulkJobs) with a lease that each
// chunk renews and a claim number that each claim increments; a chunk
// commits only under the current claim of a running job, so a worker
// whose lease ran out (it stalled, another took over) or whose job was
// cancelled meanwhile writes nothing.

// BulkAction is what a bulk job does to each license.
type BulkAction string

const (
	BulkDelete    BulkAction = "delete"
	BulkSuspend   BulkAction = "suspend"
	BulkReinstate BulkAction = "reinstate"
)

// BulkJobState is where a bulk job stands.
type BulkJobState string

// Bulk job states. queued and running are pending (a worker will take or
// continue the job); the others are final.
const (
	BulkQueued    BulkJobState = "queued"
	BulkRunning   BulkJobState = "running"
	BulkDone      BulkJobState = "done"
	BulkFailed    BulkJobState = "failed"
	BulkCancelled BulkJobState = "cancelled"
)

// Final reports whether s is a state a job never leaves.
func (s BulkJobState) Final() bool { return s == BulkDone || s == BulkFailed || s == BulkCancelled }

// BulkRefusedSample bounds the refused licenses a job keeps (BulkJob.RefusedSample).
const BulkRefusedSample = 10

// BulkJob is a bulk job and its progress.
type BulkJob struct {
	ID     int64
	Action BulkAction
	// Status and Reason are the suspension's (suspend and reinstate
	// only; see Suspension): Status is "" for the default (SUSPENDED).
	Status Status
	Reason string
	Filter LicenseFilter
	State  BulkJobState
	// UntilID is the largest license id when the job was created: the job
	// covers no license created later.
	UntilID int64
	// Cursor is the id of the last license handled (0: none yet).
	Cursor int64
	// Matched counts the licenses that matched the filter when the job
	// was created; Processed those handled since (Changed + Unchanged +
	// Refused). Unchanged licenses were in the state asked for already;
	// Refused ones are licenses the action does not apply to (a suspend of
	// an EXPIRED license, a plain reinstate of a SUSPENDEDADMIN one).
	Matched, Processed, Changed, Unchanged, Refused int64
	// RefusedSample is the first BulkRefusedSample refused licenses.
	RefusedSample []BulkRefusal
	// Error says why a failed job failed.
	Error string
	// Actor and RequestID are the creator's: the name of the API key and
	// the request's X-Request-Id. Each change the job makes has Actor as
	// its actor and BulkJobRequestID(ID) as its request id.
	Actor, RequestID string
	CreatedAt        int64
	UpdatedAt        int64
	StartedAt        *int64 // the first claim
	FinishedAt       *int64 // reaching a final state
	// LeaseUntil and Claims are the current claim's (ClaimBulkJobs).
	LeaseUntil int64
	Claims     int64
}

// BulkRefusal is a license a bulk job left alone, and why.
type BulkRefusal struct {
	ID   int64 `json:"id"`
	Code Code  `json:"code"`
}

// MaxBulkChunk bounds the licenses one chunk of a bulk job handles.
const MaxBulkChunk = MaxPageSize

// BulkJobRequestID is the RequestID of the changes bulk job id makes (in
// its events and tombstones), by which a consumer of the change feed tells
// them apart and finds the job.
func BulkJobRequestID(id int64) string { return "bulk-job:" + strconv.FormatInt(id, 10) }

// Suspension is the suspend or reinstate action of a job of those actions.
func (j *BulkJob) Suspension() Suspension {
	op := OpSuspend
	if j.Action == BulkReinstate {
		op = OpReinstate
	}
	return Suspension{Op: op, Status: j.Status, Reason: j.Reason}
}

// Change is the Change of the writes of one chunk of the job at now.
func (j *BulkJob) Change(now int64) Change {
	return Change{Time: now, Actor: j.Actor, RequestID: BulkJobRequestID(j.ID)}
}

// Validate checks the fields a client gives. Pointers are relative to the
// resource object.
func (j *BulkJob) Validate() error {
	var errs Errors
	switch j.Action {
	case BulkDelete:
		if j.Status != "" || j.Reason != "" {
			errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/action",
				"status and reason belong to the suspend and reinstate actions, not to delete"))
		}
	case BulkSuspend, BulkReinstate:
		if err := j.Suspension().Validate(); err != nil {
			if e, ok := err.(*Error); ok {
				e.Pointer = "/attributes" + e.Pointer
			}
			errs = append(errs, err.(*Error))
		}
	default:
		errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/action",
			"action must be %s, %s or %s", BulkDelete, BulkSuspend, BulkReinstate))
	}
	if j.Filter.Empty() {
		errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/filter",
			"a bulk job needs at least one filter (the license list's filters): it never applies to every license by default"))
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Empty reports whether f selects every license.
func (f LicenseFilter) Empty() bool {
	return f.UserID == nil && f.ProductID == nil && f.OrderID == nil && len(f.Statuses) == 0 &&
		f.Recurring == nil && len(f.Ranges) == 0
}

// BulkJobNotFound is the error of an id that names no bulk job.
func BulkJobNotFound(id int64) *Error {
	return Errorf(CodeBulkJobNotFound, "bulk job %d does not exist", id)
}

// BulkClaimLost is the error of a chunk run under a claim that no longer
// holds the job: it was cancelled, or another worker claimed it after the
// lease ran out. The worker stops working on it.
func BulkClaimLost(j *BulkJob) *Error {
	return Errorf(CodeConflict, "bulk job %d is %s under claim %d: this worker no longer holds it", j.ID, j.State, j.Claims)
}

// BulkClaim is a worker's hold on a job: its claim number and lease.
type BulkClaim struct {
	JobID  int64
	Claims int64 // the job's Claims when it was claimed
	// LeaseUntil is the new end of the lease (unix seconds), set by each
	// chunk.
	LeaseUntil int64
}

// HeldBy reports whether claim is the current claim of running job j.
func (j *BulkJob) HeldBy(claim BulkClaim) bool {
	return j.State == BulkRunning && j.Claims == claim.Claims
}

// BulkChunk is what one chunk of a job did.
type BulkChunk struct {
	Job BulkJob // after the chunk
	// Changed are the licenses the chunk changed: for a delete as they
	// were, otherwise as they are now.
	Changed []License
}

// ApplyBulk decides what one chunk of job j does to the licenses found
// (live, matching, in id order) at now, and records it in j's counts: the
// outcome of each license (for a delete, every license changes). Both
// engines call it inside the chunk's transaction, then write the changed
// outcomes with BulkEvents.
func ApplyBulk(j *BulkJob, found []License, now int64) []SuspensionOutcome {
	out := make([]SuspensionOutcome, len(found))
	a := j.Suspension()
	for i := range found {
		l := &found[i]
		o := SuspensionOutcome{License: *l, Previous: l.Status}
		if j.Action == BulkDelete {
			o.Changed = true
		} else {
			to, changed, refused := a.Apply(l, now)
			o.License.Status, o.Changed, o.Refused = to, changed, refused
		}
		switch {
		case o.Refused != nil:
			j.Refused++
			if len(j.RefusedSample) < BulkRefusedSample {
				j.RefusedSample = append(j.RefusedSample, BulkRefusal{ID: l.ID, Code: o.Refused.Code})
			}
		case o.Changed:
			j.Changed++
		default:
			j.Unchanged++
		}
		j.Processed++
		j.Cursor = l.ID
		out[i] = o
	}
	return out
}

// BulkEvents are the events of the changed outcomes of a chunk at c.
func BulkEvents(j *BulkJob, out []SuspensionOutcome, c Change) []Event {
	var events []Event
	a := j.Suspension()
	for i := range out {
		o := &out[i]
		switch {
		case !o.Changed:
		case j.Action == BulkDelete:
			events = append(events, LicenseEvent(EventLicenseDeleted, &o.License, c))
		default:
			events = append(events, SuspensionEvent(a, o, c))
		}
	}
	return events
}

// String names the job in logs.
func (j *BulkJob) String() string {
	return fmt.Sprintf("bulk job %d (%s)", j.ID, j.Action)
}
