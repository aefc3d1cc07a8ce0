package licensor

import "errors"

// Idempotency keys make POST requests safe to retry: the first response to
// a key is kept (for at least DefaultIdempotencyTTL) and replayed to repeats.
//
// The response of a request that writes is stored in the same transaction as
// the write (Change.Idempotency), so after a crash either both the write and
// its response exist or neither does, and a retry can never write twice.

// DefaultIdempotencyTTL is how long a key's response is kept: 24 hours.
const DefaultIdempotencyTTL = 24 * 60 * 60

// MaxIdempotencyKeyLen bounds the Idempotency-Key header.
const MaxIdempotencyKeyLen = 255

// MaxStoredErrorBytes caps the body kept for replay of a response that is
// not a success (a 4xx: 5xx responses are not kept, the key is released).
// What is kept of such a response is its status, its headers and its error
// objects reduced to status, code, title, source and meta (no detail), as many as
// fit in this many bytes and then one ERRORS_OMITTED counting the rest, so
// that a request that fails costs the database a few KiB for the key's
// lifetime however large its body or its error document was. A replay
// answers the same status and codes. A success is kept whole: its size is
// bounded by the write it stands for (the licenses of a batch, a product),
// but for an end user's purchase of a product larger than 16 KiB, which is
// kept without the product and replayed with the product as it is then.
const MaxStoredErrorBytes = 4 << 10

// IdempotencyClaim is a request's hold on an idempotency key.
type IdempotencyClaim struct {
	APIKeyID int64
	Key      string
	// Fingerprint identifies the request (method, path, query and body);
	// the same key with another fingerprint is refused.
	Fingerprint string
	// ExpiresAt is when the stored response may be pruned (unix seconds).
	ExpiresAt int64
	// Render builds the response of a successful write from its result:
	// the request sets the Render of the write it makes, and the store
	// calls it inside the write's transaction and stores what it returns
	// with the write.
	Render Renders
	// HeldSince is set by ClaimIdempotencyKey: the time the claim was
	// taken. Writes, Complete and Release act only while the key is still
	// held since then, so a holder whose key was taken over (it ran past
	// the stale limit) can never write under it as well.
	HeldSince int64
	// Stored is set by the store once the response has been stored with the write.
	Stored bool
}

// StoredResponse is a response kept for replay.
type StoredResponse struct {
	Status  int
	Headers map[string]string // Location, ETag
	Body    []byte
}

// DeleteResult is the result of DeleteLicenses, as given to its Render.
type DeleteResult struct {
	Deleted, Missing []int64
}

// Render builds the response of a successful write from its result. The
// same function renders the live response and the one kept for the
// Idempotency-Key, so that a replay answers what the first request got.
type Render[T any] func(result T) (StoredResponse, error)

// Renders are the Render of each write that keeps its response, typed by
// the write's result. A request sets the one of the write it makes.
type Renders struct {
	Licenses    Render[[]License]            // CreateLicenses: the licenses created
	Deleted     Render[DeleteResult]         // DeleteLicenses
	Product     Render[*Product]             // CreateProduct: the product created
	Webhook     Render[*Webhook]             // CreateWebhook: the webhook created
	Suspensions Render[[]SuspensionOutcome]  // SuspendLicenses: the outcomes
	BulkJob     Render[*BulkJob]             // CreateBulkJob, CancelBulkJob: the job
	Renewal     Render[*RenewalCancellation] // CancelRenewal: the outcome
}

// Written is what a write made, for a store to render with the request's
// Renders inside the write's transaction; each write that keeps its
// response makes its own: CreatedLicenses, DeletedLicenses, CreatedProduct,
// CreatedWebhook, SuspendedLicenses, BulkJobResult, CancelledRenewal.
type Written func(Renders) (StoredResponse, error)

// CreatedLicenses is the result of CreateLicenses.
func CreatedLicenses(ls []License) Written {
	return func(r Renders) (StoredResponse, error) { return renderWith(r.Licenses, ls) }
}

// DeletedLicenses is the result of DeleteLicenses.
func DeletedLicenses(d DeleteResult) Written {
	return func(r Renders) (StoredResponse, error) { return renderWith(r.Deleted, d) }
}

// CreatedProduct is the result of CreateProduct.
func CreatedProduct(p *Product) Written {
	return func(r Renders) (StoredResponse, error) { return renderWith(r.Product, p) }
}

// CreatedWebhook is the result of CreateWebhook.
func CreatedWebhook(w *Webhook) Written {
	return func(r Renders) (StoredResponse, error) { return renderWith(r.Webhook, w) }
}

// SuspendedLicenses is the result of SuspendLicenses.
func SuspendedLicenses(out []SuspensionOutcome) Written {
	return func(r Renders) (StoredResponse, error) { return renderWith(r.Suspensions, out) }
}

// BulkJobResult is the result of CreateBulkJob and CancelBulkJob.
func BulkJobResult(j *BulkJob) Written {
	return func(r Renders) (StoredResponse, error) { return renderWith(r.BulkJob, j) }
}

// CancelledRenewal is the result of CancelRenewal.
func CancelledRenewal(o *RenewalCancellation) Written {
	return func(r Renders) (StoredResponse, error) { return renderWith(r.Renewal, o) }
}

func renderWith[T any](f Render[T], result T) (StoredResponse, error) {
	if f == nil {
		return StoredResponse{}, errors.New("the idempotency claim has no Render for this write")
	}
	return f(result)
}
