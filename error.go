package licensor

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Code is a stable, upper-case error code. Codes are part of the public API:
// they appear as "code" in JSON:API error objects and clients match on them.
type Code string

// Error codes. The HTTP status of each is decided once, in internal/api.
const (
	// 400
	CodeMalformedJSON          Code = "MALFORMED_JSON"           // the body is not JSON or not a JSON:API document
	CodeInvalidAttribute       Code = "INVALID_ATTRIBUTE"        // an attribute has the wrong type or an invalid value
	CodeUnknownAttribute       Code = "UNKNOWN_ATTRIBUTE"        // an attribute (or member) the resource does not have
	CodeMissingAttribute       Code = "MISSING_ATTRIBUTE"        // a required attribute or member is absent
	CodeInvalidRelationship    Code = "INVALID_RELATIONSHIP"     // a relationship is missing or malformed
	CodeInvalidID              Code = "INVALID_ID"               // a path id is not a positive integer
	CodeInvalidParameter       Code = "INVALID_PARAMETER"        // a query parameter has an invalid value
	CodeUnknownParameter       Code = "UNKNOWN_PARAMETER"        // a query parameter the route does not know
	CodeInvalidCursor          Code = "INVALID_CURSOR"           // page[after] is malformed or was made for another query
	CodeBatchTooLarge          Code = "BATCH_TOO_LARGE"          // a batch has more items than the server allows
	CodeDuplicateInBatch       Code = "DUPLICATE_IN_BATCH"       // two batch items share an order_id (or an id)
	CodeInvalidRequest         Code = "INVALID_REQUEST"          // any other malformed request
	CodeIdempotencyKeyRequired Code = "IDEMPOTENCY_KEY_REQUIRED" // a purchase without an Idempotency-Key header
	CodeErrorsOmitted          Code = "ERRORS_OMITTED"           // the last error object of a capped list: meta.omitted more were left out (status: the document's)

	// 401
	CodeAPIKeyMissing Code = "API_KEY_MISSING" // no Authorization: Apikey header
	CodeAPIKeyInvalid Code = "API_KEY_INVALID" // unknown or malformed key
	CodeAPIKeyRevoked Code = "API_KEY_REVOKED"
	CodeAPIKeyExpired Code = "API_KEY_EXPIRED"
	CodeTokenMissing  Code = "TOKEN_MISSING" // end-user API: no Authorization: Bearer header
	CodeTokenInvalid  Code = "TOKEN_INVALID" // malformed, badly signed, wrong algorithm, issuer or audience, not yet valid
	CodeTokenExpired  Code = "TOKEN_EXPIRED"

	// 403
	CodeInsufficientScope  Code = "INSUFFICIENT_SCOPE"  // a read key on a write route
	CodeAddressNotAllowed  Code = "ADDRESS_NOT_ALLOWED" // the client address is outside the key's networks, or unknown
	CodeUserMismatch       Code = "USER_MISMATCH"       // the token's subject is not the user of the path
	CodePurchaseRestricted Code = "PURCHASE_RESTRICTED" // the token carries LICENSE_PURCHASE_RESTRICTED
	CodeProductNotBuyable  Code = "PRODUCT_NOT_BUYABLE" // the product's is_buyable is false
	CodeOriginNotAllowed   Code = "ORIGIN_NOT_ALLOWED"  // a CORS preflight from an origin the operator did not allow

	// 404
	CodeNotFound         Code = "NOT_FOUND" // unknown route
	CodeLicenseNotFound  Code = "LICENSE_NOT_FOUND"
	CodeProductNotFound  Code = "PRODUCT_NOT_FOUND"
	CodeWebhookNotFound  Code = "WEBHOOK_NOT_FOUND"
	CodeDeliveryNotFound Code = "DELIVERY_NOT_FOUND"
	CodeBulkJobNotFound  Code = "BULK_JOB_NOT_FOUND"

	// 405
	CodeMethodNotAllowed Code = "METHOD_NOT_ALLOWED"

	// 409
	CodeOrderIDConflict        Code = "ORDER_ID_CONFLICT"         // meta.existing_id names the live license holding it
	CodeProductInUse           Code = "PRODUCT_IN_USE"            // the product still has live licenses
	CodeConflict               Code = "CONFLICT"                  // any other conflicting state (e.g. a duplicate key name)
	CodeIdempotencyKeyInFlight Code = "IDEMPOTENCY_KEY_IN_FLIGHT" // a request with this Idempotency-Key is still running
	CodeLicenseNotActive       Code = "LICENSE_NOT_ACTIVE"        // a suspend of a license that is not ACTIVE (expired, processing, ...)
	CodeLicenseSuspendedAdmin  Code = "LICENSE_SUSPENDED_ADMIN"   // a plain reinstate of a SUSPENDEDADMIN license, which only a reinstate with status SUSPENDEDADMIN lifts
	CodeRenewalClosed          Code = "RENEWAL_CLOSED"            // the license's renewal is not PENDING or DUE (renewed, cancelled, lapsed, or not renewable): no successor, no cancellation
	CodeResourceMismatch       Code = "RESOURCE_MISMATCH"         // the primary data's type is not the endpoint's (or, on PATCH, its id is not the path's): JSON:API's 409

	// 412
	CodePreconditionFailed Code = "PRECONDITION_FAILED" // If-Match does not match the current ETag

	// 422
	CodeIdempotencyKeyReused Code = "IDEMPOTENCY_KEY_REUSED" // the Idempotency-Key was used with a different request

	// 429
	CodeRateLimited Code = "RATE_LIMITED" // the API key's request rate is exceeded; see Retry-After

	// 413
	CodeBodyTooLarge Code = "BODY_TOO_LARGE"

	// 415
	CodeUnsupportedMediaType Code = "UNSUPPORTED_MEDIA_TYPE"

	// 500
	CodeInternal Code = "INTERNAL"

	// 503
	CodeUnavailable Code = "UNAVAILABLE" // the database cannot be reached
)

// Error is the one error type of the domain. Every failure a client can act
// on is an *Error with a Code; anything else is an internal error.
type Error struct {
	Code   Code
	Detail string // a sentence for humans; never carries SQL, paths or secrets

	// Pointer is a JSON pointer into the request document. Inside a batch
	// it is relative to the item (see ItemErrors); otherwise relative to
	// the resource object ("/attributes/stop_date"), and the API prefixes
	// it with the location of the resource ("/data" or "/data/0").
	Pointer string
	// Parameter names the offending query parameter, if any.
	Parameter string
	// Meta carries machine-readable details, e.g. "existing_id".
	Meta map[string]any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Pointer != "" {
		fmt.Fprintf(&b, " (at %s)", e.Pointer)
	}
	if e.Parameter != "" {
		fmt.Fprintf(&b, " (parameter %s)", e.Parameter)
	}
	return b.String()
}

// Errorf returns an *Error with a formatted detail.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// AttrError returns an *Error about one member of a resource object.
func AttrError(code Code, pointer, format string, args ...any) *Error {
	return &Error{Code: code, Pointer: pointer, Detail: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var list Errors
	if errors.As(err, &list) && len(list) > 0 {
		return list[0].Code
	}
	var items ItemErrors
	if errors.As(err, &items) && len(items) > 0 {
		return items[0].Err.Code
	}
	return CodeInternal
}

// Errors is several problems with one request, reported together.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// ItemError is the failure of one item of a batch.
type ItemError struct {
	Index int // position of the item in the request's data array
	Err   *Error
}

// ItemErrors reports every failing item of a batch; the batch wrote nothing.
type ItemErrors []ItemError

func (es ItemErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = fmt.Sprintf("item %d: %v", e.Index, e.Err)
	}
	return strings.Join(parts, "; ")
}

// Sort orders es by item index; the errors of one item keep their order.
func (es ItemErrors) Sort() {
	slices.SortStableFunc(es, func(a, b ItemError) int { return a.Index - b.Index })
}

// ProductNotFound is the error of a product id that names no live product.
func ProductNotFound(id int64) *Error {
	return Errorf(CodeProductNotFound, "product %d does not exist", id)
}

// WebhookNotFound is the error of a webhook id that names no webhook.
func WebhookNotFound(id int64) *Error {
	return Errorf(CodeWebhookNotFound, "webhook %d does not exist", id)
}

// DeliveryNotFound is the error of a delivery id that names no delivery of
// the webhook.
func DeliveryNotFound(webhookID, deliveryID int64) *Error {
	return Errorf(CodeDeliveryNotFound, "webhook %d has no delivery %d", webhookID, deliveryID)
}

// FeedCursorPruned is the error of a change-feed position whose following
// events were pruned.
func FeedCursorPruned(after, pruned int64) *Error {
	return &Error{Code: CodeInvalidCursor, Parameter: "page[after]",
		Detail: fmt.Sprintf("the events after position %d up to %d are past the retention period and were pruned; read the feed from its start again", after, pruned)}
}

// FeedCursorAhead is the error of a position the feed has not reached: the
// cursor belongs to another database (or one restored from a backup).
func FeedCursorAhead(after, head int64) *Error {
	return &Error{Code: CodeInvalidCursor, Parameter: "page[after]",
		Detail: fmt.Sprintf("position %d is ahead of the feed, which ends at %d: the cursor is from another database; read the feed from its start again", after, head)}
}

// ProductInUse is the error of deleting product id, which has live
// licenses, without cascade.
func ProductInUse(id, live int64) *Error {
	return Errorf(CodeProductInUse, "product %d still has %d live licenses; delete them first or use cascade", id, live)
}

// LicenseNotFound is the error of a license id that names no live license.
func LicenseNotFound(id int64) *Error {
	return Errorf(CodeLicenseNotFound, "license %d does not exist", id)
}

// OrderIDConflict is the error of an order id already held by the live
// license existing; meta.existing_id names it.
func OrderIDConflict(orderID string, existing int64) *Error {
	return &Error{
		Code:    CodeOrderIDConflict,
		Pointer: "/attributes/order_id",
		Detail:  fmt.Sprintf("order_id %s is already used by license %d", strconv.Quote(orderID), existing),
		Meta:    map[string]any{"existing_id": strconv.FormatInt(existing, 10)},
	}
}
