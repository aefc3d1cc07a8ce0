package sqlstore

import (
	"encoding/json"
	"fmt"

	"github.com/licensor/licensor"
)

// BulkJobColumns are the columns ScanBulkJob reads, in its order.
const BulkJobColumns = `id, action, status, reason, filter, state, until_id, cursor, matched, processed, changed,
	unchanged, refused, refused_sample, error, actor, request_id, created_at, updated_at, started_at, finished_at,
	lease_until, claims`

// ScanBulkJob reads a row of BulkJobColumns. The filter and the refused
// sample are JSON (BulkJobJSON).
func ScanBulkJob(s Scanner) (licensor.BulkJob, error) {
	var j licensor.BulkJob
	var action, status, state, filter, sample string
	err := s.Scan(&j.ID, &action, &status, &j.Reason, &filter, &state, &j.UntilID, &j.Cursor, &j.Matched,
		&j.Processed, &j.Changed, &j.Unchanged, &j.Refused, &sample, &j.Error, &j.Actor, &j.RequestID,
		&j.CreatedAt, &j.UpdatedAt, &j.StartedAt, &j.FinishedAt, &j.LeaseUntil, &j.Claims)
	if err != nil {
		return j, err
	}
	j.Action, j.Status, j.State = licensor.BulkAction(action), licensor.Status(status), licensor.BulkJobState(state)
	if err := json.Unmarshal([]byte(filter), &j.Filter); err != nil {
		return j, fmt.Errorf("decode the filter of bulk job %d: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(sample), &j.RefusedSample); err != nil {
		return j, fmt.Errorf("decode the refusals of bulk job %d: %w", j.ID, err)
	}
	if len(j.RefusedSample) == 0 {
		j.RefusedSample = nil
	}
	return j, nil
}

// BulkJobJSON is the text of a job's filter or refused sample (v) as its
// row holds it.
func BulkJobJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
