package licensor

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
	// Render builds the response of a successful write from its result
	// ([]License for CreateLicenses, DeleteResult for DeleteLicenses,
	// *Product for CreateProduct). The store calls it inside the write's
	// transaction and stores what it returns with the write.
	Render func(result any) (StoredResponse, error)
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

// DeleteResult is the result of DeleteLicenses, as given to Render.
type DeleteResult struct {
	Deleted, Missing []int64
}
