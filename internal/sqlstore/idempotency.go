package sqlstore

import (
	"encoding/json"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/groupcommit"
)

// IdempotencyColumns are the columns of an IdempotencyRow, in its order.
const IdempotencyColumns = `fingerprint, started_at, expires_at, completed_at, status, headers, body`

// IdempotencyRow is the stored state of an idempotency key.
type IdempotencyRow struct {
	Fingerprint          string
	StartedAt, ExpiresAt int64
	CompletedAt, Status  *int64
	Headers              *string
	Body                 []byte
}

// Dest are the destinations of IdempotencyColumns.
func (r *IdempotencyRow) Dest() []any {
	return []any{&r.Fingerprint, &r.StartedAt, &r.ExpiresAt, &r.CompletedAt, &r.Status, &r.Headers, &r.Body}
}

// Claim decides what the existing key r means for claim at now (see
// licensor.Store.ClaimIdempotencyKey): the stored response to replay, or
// takeOver when claim is to become the key's holder (the key expired, or
// its holder started at or before staleBefore and is presumed dead: had it
// written, its response would be stored with the write), or the error of
// a key used with another request or still in flight.
func (r *IdempotencyRow) Claim(claim *licensor.IdempotencyClaim, now, staleBefore int64) (replay *licensor.StoredResponse, takeOver bool, err error) {
	switch {
	case r.ExpiresAt < now:
		// Expired but not yet pruned: the key is free again.
		return nil, true, nil
	case r.Fingerprint != claim.Fingerprint:
		return nil, false, licensor.Errorf(licensor.CodeIdempotencyKeyReused,
			"the Idempotency-Key was already used with a different request")
	case r.CompletedAt != nil:
		replay, err = r.response()
		return replay, false, err
	case r.StartedAt > staleBefore:
		return nil, false, licensor.Errorf(licensor.CodeIdempotencyKeyInFlight,
			"a request with this Idempotency-Key is still in progress")
	}
	return nil, true, nil
}

// response is the stored response of a completed key.
func (r *IdempotencyRow) response() (*licensor.StoredResponse, error) {
	resp := &licensor.StoredResponse{Body: r.Body}
	if r.Status != nil {
		resp.Status = int(*r.Status)
	}
	if r.Headers != nil {
		if err := json.Unmarshal([]byte(*r.Headers), &resp.Headers); err != nil {
			return nil, fmt.Errorf("decode stored headers: %w", err)
		}
	}
	return resp, nil
}

// ResponseValues are the values of the headers and body columns of resp.
// The body is NULL for no body, so that a replay sends none either.
func ResponseValues(resp licensor.StoredResponse) (headers string, body any, err error) {
	h, err := json.Marshal(resp.Headers)
	if err != nil {
		return "", nil, fmt.Errorf("encode headers: %w", err)
	}
	if resp.Body != nil {
		body = resp.Body
	}
	return string(h), body, nil
}

// StoreWithWrite renders the response of a successful write from what it
// wrote and stores it with save in the write's transaction (c.Idempotency,
// when set). save
// reports whether the key was still held (pending, with the claim's
// fingerprint, since claim.HeldSince); a key no longer held (taken over,
// or completed by another request) fails the write, so that one key never
// stands for two writes.
func StoreWithWrite(c licensor.Change, written licensor.Written, save func(claim *licensor.IdempotencyClaim, resp licensor.StoredResponse) (bool, error)) error {
	claim := c.Idempotency
	if claim == nil {
		return nil
	}
	resp, err := written(claim.Render)
	if err != nil {
		return fmt.Errorf("render the response: %w", err)
	}
	held, err := save(claim, resp)
	if err != nil {
		return fmt.Errorf("store the response: %w", err)
	}
	if !held {
		return licensor.Errorf(licensor.CodeIdempotencyKeyInFlight,
			"another request with this Idempotency-Key took it over")
	}
	return nil
}

// AfterCommit follows the commit of a write under c: its idempotency
// claim is marked stored (its response was committed with the write), and
// when the write recorded events, committed (the store's EventsCommitted
// signal) wakes its waiters.
func AfterCommit(c licensor.Change, events bool, committed *groupcommit.Signal) {
	if c.Idempotency != nil {
		c.Idempotency.Stored = true
	}
	if events {
		committed.Fire()
	}
}
