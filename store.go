package licensor

import "context"

// Change says when and by whom a write is made. Stores keep it on
// tombstones and on change events.
type Change struct {
	Time      int64  // unix seconds; also the "now" of defaults and checks
	Actor     string // name of the API key (or "cli", "system")
	RequestID string
	// Idempotency, when set, is stored with the write: the store renders
	// the write's result (Written) with Idempotency.Render inside the
	// transaction.
	Idempotency *IdempotencyClaim
}

// Store is the system of record. Both engines (internal/sqlite and
// internal/postgres) implement it and pass internal/storetest.
//
// Methods return *Error (or Errors / ItemErrors) for everything a client can
// act on, and other errors only for internal failures.
type Store interface {
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error

	// CreateProduct stores p, setting its ID, CreatedAt, UpdatedAt and
	// Version. p must already be valid (Product.Validate).
	CreateProduct(ctx context.Context, p *Product, c Change) error
	// FindProductByID returns a live product, or CodeProductNotFound.
	FindProductByID(ctx context.Context, id int64) (*Product, error)
	// FindProducts lists live products.
	FindProducts(ctx context.Context, q ProductQuery) (*ProductPage, error)
	// UpdateProduct applies patch atomically. When ifMatch is not empty and
	// differs from the current ETag it returns CodePreconditionFailed. The
	// patched product is validated (Product.Validate) before it is written.
	// Errors: CodeProductNotFound, CodePreconditionFailed, validation codes.
	UpdateProduct(ctx context.Context, id int64, patch ProductPatch, ifMatch string, c Change) (*Product, error)
	// DeleteProduct removes a product (keeping a tombstone). With live
	// licenses it returns CodeProductInUse unless cascade is set, in which
	// case those licenses are deleted too, each as a normal deletion.
	// Errors: CodeProductNotFound, CodePreconditionFailed, CodeProductInUse.
	DeleteProduct(ctx context.Context, id int64, opts DeleteProductOptions, c Change) error

	// CreateLicenses creates every draft or none, atomically, resolving
	// defaults from each draft's product at c.Time (LicenseDraft.Resolve).
	// Failures are returned as ItemErrors naming every failing item:
	// CodeProductNotFound (pointer /relationships/product), CodeOrderIDConflict
	// (pointer /attributes/order_id, Meta["existing_id"] the live license
	// id as a string), CodeDuplicateInBatch, and Resolve's errors. Uniqueness
	// of live order ids is enforced by the database.
	CreateLicenses(ctx context.Context, drafts []LicenseDraft, c Change) ([]License, error)
	// FindLicenseByID returns a live license, or CodeLicenseNotFound.
	FindLicenseByID(ctx context.Context, id int64) (*License, error)
	// FindLicenses lists live licenses. Each license's Status is its
	// effective status at q.Now (License.EffectiveStatus); FindLicenseByID
	// reports the stored status and callers apply EffectiveStatus.
	FindLicenses(ctx context.Context, q LicenseQuery) (*LicensePage, error)
	// FindGrants returns the grants (GrantOf) of the live licenses of user
	// whose stored status is ACTIVE, in id order: what the entitlement
	// cache loads, read without the rest of each license.
	FindGrants(ctx context.Context, user string) ([]Grant, error)
	// ListGrants returns the live licenses of the users whose id sorts
	// after after ("" for the first), one UserGrant each, in order of user
	// and then id, at most limit of them (the last user's may go on in the
	// next call): each license's user, and its grant when it is stored
	// ACTIVE. It is what the entitlement cache warms itself with at start,
	// a few thousand rows a query; a user whose licenses are none ACTIVE is
	// known to have no grant.
	ListGrants(ctx context.Context, after string, limit int) ([]UserGrant, error)
	// FindUsersGrants is FindGrants of several users in one query: the
	// grants of the live ACTIVE licenses of the users listed (distinct, at
	// most MaxGrantUsers), one UserGrant each (Active set), in order of user
	// and then id; a user with none has no row. It is what the entitlement
	// cache loads when checks for many users it does not hold arrive at
	// once (after a restart, or users drawn from millions).
	FindUsersGrants(ctx context.Context, users []string) ([]UserGrant, error)
	// SaveHotUsers replaces the saved hot set with users (distinct, most
	// recently checked first, at most MaxHotUsers), saved at now (unix
	// seconds), atomically: the users an instance's entitlement cache was
	// answering for when it stopped. A save that races another keeps the
	// users of both.
	SaveHotUsers(ctx context.Context, users []string, now int64) error
	// HotUsers returns the saved hot set, most recently checked first, at
	// most limit users, and when it was saved (0 and no users: none).
	HotUsers(ctx context.Context, limit int) (users []string, savedAt int64, err error)
	// DeleteLicenses deletes licenses atomically, keeping tombstones. Ids
	// that are not live licenses fail the whole call with ItemErrors
	// (CodeLicenseNotFound) unless allowMissing is set; then they are
	// returned in missing and the others are deleted.
	DeleteLicenses(ctx context.Context, ids []int64, allowMissing bool, c Change) (deleted, missing []int64, err error)

	// SuspendLicenses applies a suspend or reinstate action (a, made
	// valid by the caller) to the licenses of target at c.Time, following
	// Suspension.Apply, atomically: each license that changes gets its new
	// status (nothing else about it changes) and its event
	// (license.suspended or license.reinstated, SuspensionEvent); those
	// already in the state asked for are unchanged and get none. It
	// returns an outcome per license: for target.IDs in their order, for
	// a user in id order. For IDs, an id that is not a live license or a
	// license the action does not apply to fails the whole call with
	// ItemErrors (CodeLicenseNotFound, CodeLicenseNotActive,
	// CodeLicenseSuspendedAdmin; CodeDuplicateInBatch for an id listed
	// twice); for a user, such licenses are left alone and reported
	// (SuspensionOutcome.Refused). Races with the expirer and with other
	// actions on the same licenses are serialized: each change is made
	// once, from the status it was decided on.
	SuspendLicenses(ctx context.Context, target SuspensionTarget, a Suspension, c Change) ([]SuspensionOutcome, error)

	// CreateBulkJob stores a new bulk job (j, made valid by the caller:
	// BulkJob.Validate) in state queued, setting its ID, UntilID (the
	// largest license id now), Matched (the live licenses that match its
	// filter at c.Time, as FindLicenses counts them; both read in one
	// snapshot), Actor and RequestID (c's), CreatedAt and UpdatedAt.
	CreateBulkJob(ctx context.Context, j *BulkJob, c Change) error
	// FindBulkJobByID returns a bulk job, or CodeBulkJobNotFound.
	FindBulkJobByID(ctx context.Context, id int64) (*BulkJob, error)
	// CancelBulkJob moves a queued or running job to cancelled at c.Time
	// and returns it: no chunk commits after that (one in progress either
	// commits before or writes nothing), and what the job did is kept. A
	// cancelled job is returned as it is; a done or failed one gives
	// CodeConflict. Errors: CodeBulkJobNotFound.
	CancelBulkJob(ctx context.Context, id int64, c Change) (*BulkJob, error)
	// ClaimBulkJobs claims up to limit pending jobs (queued, or running
	// with a lease that ended at or before now), oldest first: each moves
	// to running (StartedAt set at its first claim), with its lease until
	// leaseUntil and its Claims incremented. A claimed job is not claimed
	// again before its lease ends, however many workers race.
	ClaimBulkJobs(ctx context.Context, now, leaseUntil int64, limit int) ([]BulkJob, error)
	// RunBulkJob runs the next chunk of a claimed job at now: the next (by
	// id) up to limit live licenses after the job's cursor, up to its
	// UntilID, that match its filter at now, each handled as ApplyBulk
	// decides with its event (BulkEvents, the job's Change); the cursor,
	// the counts and the lease (claim.LeaseUntil) are stored with them, in
	// one transaction. The job is done when no match is left. Only the
	// current claim of a running job commits a chunk: otherwise nothing is
	// written and the error is BulkClaimLost (CodeConflict). Races with
	// the expirer and with other writes to the same licenses are
	// serialized as for SuspendLicenses and DeleteLicenses.
	RunBulkJob(ctx context.Context, claim BulkClaim, limit int, now int64) (*BulkChunk, error)
	// FailBulkJob moves a job held by claim to failed at now with reason,
	// keeping what it did. Errors: BulkClaimLost.
	FailBulkJob(ctx context.Context, claim BulkClaim, reason string, now int64) error

	// CreateLicenses also makes successors: a draft with RenewedFrom
	// renews that live license (CheckSuccessorDrafts), which becomes
	// RENEWED with RenewedBy set and its license.renewed event after the
	// successors' license.created ones.

	// RenewLicenses runs one pass of the renewer at c.Time (see
	// RenewalState and RenewalPass.Decide) over up to r.Limit pending
	// licenses, earliest expiry_date first: in automatic mode each due
	// license gets its successor (licensor.Successor; license.created and
	// license.renewed), in notify mode each license within r.Notice of its
	// expiry_date becomes DUE (license.renewal_due), and a pending license
	// that is not Renewable at its expiry_date becomes LAPSED. A successor
	// that is itself due is renewed by a later pass (a backlog after
	// downtime is caught up period by period, each starting at the stop
	// of the one before). Each license is renewed, notified or lapsed
	// once, however many callers race.
	RenewLicenses(ctx context.Context, c Change, r RenewalPass) (RenewalResult, error)
	// NextRenewal returns the earliest expiry_date of the pending renewals
	// of the products whose mode is automatic (def for those without one),
	// or false when there is none.
	NextRenewal(ctx context.Context, def RenewalMode) (int64, bool, error)
	// CancelRenewal cancels the renewal of a live license (CancelRenewal):
	// its renewal becomes CANCELLED, with a license.renewal_cancelled event
	// carrying reason in meta.reason; the license itself, its period
	// included, is unchanged. Cancelling a cancelled renewal changes
	// nothing and succeeds. Errors: CodeLicenseNotFound, CodeRenewalClosed.
	// It serializes with the renewer: a renewal is either made or
	// cancelled.
	CancelRenewal(ctx context.Context, id int64, reason string, c Change) (RenewalCancellation, error)

	// CreateAPIKey stores k, setting its ID and CreatedAt. A name taken by
	// a key not revoked (nor being rotated out) gives CodeConflict; the
	// name of a revoked key can be used again.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	// FindAPIKeys lists every key, revoked ones included, by id.
	FindAPIKeys(ctx context.Context) ([]APIKey, error)
	// FindAPIKeyByPrefix returns the key with that prefix, or CodeAPIKeyInvalid.
	FindAPIKeyByPrefix(ctx context.Context, prefix string) (*APIKey, error)
	// RevokeAPIKey revokes at c.Time the keys with that name (the current
	// one and one in its rotation grace period), or else the key with that
	// prefix. Errors: CodeNotFound when no key has that name or prefix,
	// CodeConflict when they are all revoked already (nothing changes).
	RevokeAPIKey(ctx context.Context, nameOrPrefix string, c Change) error
	// RotateAPIKey replaces the current key named name by next, which
	// takes its name, scope, networks and expiry (next brings its Prefix
	// and Hash; its ID and CreatedAt, c.Time, are set). The old key stays
	// usable until graceUntil (its RevokedAt; c.Time for none) and is
	// returned. Errors: CodeNotFound when no key of that name is current.
	RotateAPIKey(ctx context.Context, name string, next *APIKey, graceUntil int64, c Change) (old *APIKey, err error)
	// ClaimIdempotencyKey starts a request under claim's key. It returns
	// the stored response when the key already completed with the same
	// fingerprint (the caller replays it); nil when the caller now holds
	// the key; CodeIdempotencyKeyReused when the key was used with another
	// fingerprint; CodeIdempotencyKeyInFlight when another request holds it
	// and started after staleBefore (an older holder is presumed dead and
	// the key is taken over: its write, if any, would have stored the
	// response with it).
	ClaimIdempotencyKey(ctx context.Context, claim *IdempotencyClaim, now, staleBefore int64) (*StoredResponse, error)
	// CompleteIdempotencyKey stores the response of a held key whose request
	// wrote nothing (an error response, say).
	CompleteIdempotencyKey(ctx context.Context, claim *IdempotencyClaim, resp StoredResponse) error
	// ReleaseIdempotencyKey gives up a held key whose request failed in a
	// way worth retrying (a 5xx), so that a retry runs afresh.
	ReleaseIdempotencyKey(ctx context.Context, claim *IdempotencyClaim) error
	// PruneIdempotencyKeys deletes keys that expired before now and returns
	// how many.
	PruneIdempotencyKeys(ctx context.Context, now int64) (int64, error)

	// TouchAPIKeys records the last use of keys (id → unix seconds); times
	// older than the stored one are ignored.
	TouchAPIKeys(ctx context.Context, lastUsed map[int64]int64) error

	// CreateConsoleSession stores a console session (see ConsoleSession).
	CreateConsoleSession(ctx context.Context, s *ConsoleSession) error
	// FindConsoleSession returns the session with that id, or CodeNotFound.
	// Expiry is the caller's decision; PruneConsoleSessions removes the
	// sessions past it.
	FindConsoleSession(ctx context.Context, id string) (*ConsoleSession, error)
	// TouchConsoleSession records a session's last request; an older time
	// than the stored one, or an unknown id, is ignored.
	TouchConsoleSession(ctx context.Context, id string, seenAt int64) error
	// DeleteConsoleSession removes a session (sign-out); an unknown id is
	// not an error.
	DeleteConsoleSession(ctx context.Context, id string) error
	// PruneConsoleSessions deletes the sessions whose absolute expiry is at
	// or before now, or whose last request is at or before idleBefore, and
	// returns how many.
	PruneConsoleSessions(ctx context.Context, now, idleBefore int64) (int64, error)

	// Every write above that changes a license or a product records its
	// events (see EventType) in its own transaction, each with the next
	// position in commit order (Event.Seq).

	// Events returns one page of the change feed: the committed events
	// after q.After that match q.Filter, in commit order. Readers that
	// follow EventPage.Next see every event exactly once, whatever the
	// concurrency of the writers. A position older than the retained
	// history (some events after it were pruned), or beyond the end of
	// the feed (from another database), gives CodeInvalidCursor.
	Events(ctx context.Context, q EventQuery) (*EventPage, error)
	// EventHead returns the position of the last committed event (0 when
	// there is none): Events with After a little below it reads the most
	// recent events.
	EventHead(ctx context.Context) (int64, error)
	// EventsCommitted returns a channel that is closed when this store
	// (this process) next commits events: a hint to read the feed now.
	// Events committed by other processes are only found by reading.
	EventsCommitted() <-chan struct{}
	// ExpireLicenses moves up to limit live ACTIVE licenses whose
	// stop_date is at or before c.Time to EXPIRED, each with its
	// license.expired event, and returns them. Each license expires once,
	// however many callers race.
	ExpireLicenses(ctx context.Context, c Change, limit int) ([]License, error)
	// NextExpiry returns the earliest stop_date among live ACTIVE
	// licenses, or false when none will ever expire.
	NextExpiry(ctx context.Context) (int64, bool, error)
	// PruneHistory deletes up to about limit rows of each kind of history
	// older than before (unix seconds): events, finished webhook
	// deliveries, license and product tombstones, and bulk jobs finished
	// before then. It returns how many
	// rows it deleted; callers repeat until it returns 0.
	PruneHistory(ctx context.Context, before int64, limit int) (int64, error)

	// CreateWebhook stores w (made valid by the caller), setting its ID and
	// times. It receives the events committed after it.
	CreateWebhook(ctx context.Context, w *Webhook, c Change) error
	// FindWebhooks lists every webhook, by id.
	FindWebhooks(ctx context.Context) ([]Webhook, error)
	// FindWebhookByID returns a webhook, or CodeWebhookNotFound.
	FindWebhookByID(ctx context.Context, id int64) (*Webhook, error)
	// UpdateWebhook applies patch; the result is validated
	// (Webhook.Validate) before it is written. Errors:
	// CodeWebhookNotFound, validation codes.
	UpdateWebhook(ctx context.Context, id int64, patch WebhookPatch, c Change) (*Webhook, error)
	// DeleteWebhook removes a webhook and its delivery log. Errors:
	// CodeWebhookNotFound.
	DeleteWebhook(ctx context.Context, id int64, c Change) error
	// FindDeliveries lists a webhook's deliveries, newest first. Errors:
	// CodeWebhookNotFound.
	FindDeliveries(ctx context.Context, q DeliveryQuery) (*DeliveryPage, error)
	// Redeliver queues a delivery again, as a new pending delivery of the
	// same event due at c.Time, and returns it. Errors:
	// CodeWebhookNotFound, CodeDeliveryNotFound.
	Redeliver(ctx context.Context, webhookID, deliveryID int64, c Change) (*Delivery, error)
	// DispatchEvents queues a pending delivery of every committed event to
	// each webhook that subscribes to its type, in commit order, up to
	// limit events per webhook, and returns how many it queued. Several
	// dispatchers may run at once: each event is queued once per webhook.
	DispatchEvents(ctx context.Context, now int64, limit int) (int, error)
	// ClaimDeliveries claims up to c.Limit pending deliveries that are due
	// at c.Now for one attempt each, until c.LeaseUntil: a claimed delivery
	// is not claimed again before then. A delivery is only due once every
	// earlier delivery of the same webhook about the same license (or, for
	// product events, the same product) has been delivered or has failed,
	// so that each webhook receives a license's events in commit order.
	// The oldest due deliveries are claimed first, but no more of one
	// webhook than c.PerWebhook allows (see DeliveryClaim), so that a
	// webhook whose receiver hangs cannot take every attempt.
	ClaimDeliveries(ctx context.Context, c DeliveryClaim) ([]DeliveryJob, error)
	// CompleteDelivery records the outcome of an attempt. An outcome whose
	// claim was overtaken (its lease ran out and the delivery was claimed
	// again) is ignored.
	CompleteDelivery(ctx context.Context, o DeliveryOutcome) error
}

// DeleteProductOptions modify DeleteProduct.
type DeleteProductOptions struct {
	Cascade bool
	IfMatch string // when not empty, must equal the current ETag
}

// Limits of lists.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
	// MaxGrantUsers bounds the users of one Store.FindUsersGrants.
	MaxGrantUsers = 1000
	// MaxHotUsers bounds the users of one Store.SaveHotUsers.
	MaxHotUsers = 100_000
)

// SortOrder is a sort field and direction.
type SortOrder struct {
	Field string
	Desc  bool
}

// Cursor is a position in a keyset walk: the sort key and id of the last
// row of the previous page. Exactly one of Int or Str is meaningful,
// depending on the sort field (Str for product titles). Nullable time
// fields (stop_date, expiry_date) sort a missing value as MaxInt64: "never".
type Cursor struct {
	Int int64
	Str string
	ID  int64
}

// LicenseSortFields returns the fields licenses sort by (a new slice, as
// for every list below).
func LicenseSortFields() []string {
	return []string{"id", "created_at", "start_date", "stop_date", "expiry_date"}
}

// LicenseRangeFields returns the fields of license range filters.
func LicenseRangeFields() []string {
	return []string{"start_date", "stop_date", "expiry_date", "purchase_timestamp", "created_at"}
}

// RangeOps returns the operators of range filters.
func RangeOps() []string { return []string{"gt", "gte", "lt", "lte"} }

// Range is filter[FIELD][OP]=Value.
type Range struct {
	Field string // one of LicenseRangeFields
	Op    string // one of RangeOps
	Value int64
}

// LicenseFilter selects licenses. Zero fields select everything.
type LicenseFilter struct {
	UserID    *string
	ProductID *int64
	OrderID   *string
	// Statuses match the effective status (see License.EffectiveStatus).
	Statuses  []Status
	Recurring *bool
	Ranges    []Range
}

// LicenseQuery is one page of a license list.
type LicenseQuery struct {
	Filter LicenseFilter
	Sort   SortOrder // Field "" means id ascending
	After  *Cursor   // nil: the first page
	Limit  int       // 1..MaxPageSize
	Count  bool      // also compute the total number of matches
	Now    int64     // unix seconds; decides effective statuses
}

// LicensePage is one page of licenses.
type LicensePage struct {
	Licenses []License
	Next     *Cursor // nil on the last page
	Total    *int64  // set when the query asked for Count
}

// ProductSortFields returns the fields products sort by.
func ProductSortFields() []string { return []string{"id", "title", "created_at"} }

// ProductFilter selects products.
type ProductFilter struct {
	Type      *string
	IsPremium *bool
	IsBuyable *bool
	IsVisible *bool
	// Title is a case-insensitive substring (Unicode simple folding via
	// strings.ToLower on both sides, the same on every engine).
	Title *string
}

// ProductQuery is one page of a product list.
type ProductQuery struct {
	Filter ProductFilter
	Sort   SortOrder
	After  *Cursor
	Limit  int
	Count  bool
}

// ProductPage is one page of products.
type ProductPage struct {
	Products []Product
	Next     *Cursor
	Total    *int64
}

// Engine is what a store engine offers beyond Store, for the server over
// it; a nil field is a faculty the engine lacks. It is passed on its own
// (api.Options.Engine), not looked for on the Store, so that decorators of
// a Store (entitlement.Notify) need not know of it.
type Engine struct {
	// Unavailable returns err as a CodeUnavailable error when it means
	// that the database cannot be used now (a lost connection, a full
	// disk, a read-only database, …), and err otherwise.
	Unavailable func(err error) error
	// PoolStats describes the engine's connection pools.
	PoolStats func() []PoolStats
	// WriteStats counts the engine's group commit.
	WriteStats func() WriteStats
}

// WriteStats counts the group commit of an engine (internal/groupcommit),
// for metrics.
type WriteStats struct {
	Groups    uint64 // groups run (transactions begun or attempted)
	Commits   uint64 // transactions committed
	Units     uint64 // units taken into groups (writes)
	Succeeded uint64 // units that committed
	MaxGroup  int    // the largest group so far
	Queued    int    // units waiting now for a group (not cumulative)
}

// PoolStats describes a database connection pool, for metrics
// (Engine.PoolStats).
type PoolStats struct {
	Name         string // "read", "write", "pool"
	MaxOpen      int
	Open         int
	InUse        int
	Idle         int
	WaitCount    int64
	WaitDuration float64 // seconds, total
}
