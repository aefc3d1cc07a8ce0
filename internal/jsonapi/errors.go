package jsonapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/licensor/licensor"
)

// statusOf maps every domain error code to its HTTP status: the one place
// where that decision is made.
var statusOf = map[licensor.Code]int{
	licensor.CodeMalformedJSON:          http.StatusBadRequest,
	licensor.CodeInvalidAttribute:       http.StatusBadRequest,
	licensor.CodeUnknownAttribute:       http.StatusBadRequest,
	licensor.CodeMissingAttribute:       http.StatusBadRequest,
	licensor.CodeInvalidRelationship:    http.StatusBadRequest,
	licensor.CodeInvalidID:              http.StatusBadRequest,
	licensor.CodeInvalidParameter:       http.StatusBadRequest,
	licensor.CodeUnknownParameter:       http.StatusBadRequest,
	licensor.CodeInvalidCursor:          http.StatusBadRequest,
	licensor.CodeBatchTooLarge:          http.StatusBadRequest,
	licensor.CodeDuplicateInBatch:       http.StatusBadRequest,
	licensor.CodeInvalidRequest:         http.StatusBadRequest,
	licensor.CodeAPIKeyMissing:          http.StatusUnauthorized,
	licensor.CodeAPIKeyInvalid:          http.StatusUnauthorized,
	licensor.CodeAPIKeyRevoked:          http.StatusUnauthorized,
	licensor.CodeAPIKeyExpired:          http.StatusUnauthorized,
	licensor.CodeInsufficientScope:      http.StatusForbidden,
	licensor.CodeAddressNotAllowed:      http.StatusForbidden,
	licensor.CodeNotFound:               http.StatusNotFound,
	licensor.CodeLicenseNotFound:        http.StatusNotFound,
	licensor.CodeProductNotFound:        http.StatusNotFound,
	licensor.CodeWebhookNotFound:        http.StatusNotFound,
	licensor.CodeDeliveryNotFound:       http.StatusNotFound,
	licensor.CodeBulkJobNotFound:        http.StatusNotFound,
	licensor.CodeMethodNotAllowed:       http.StatusMethodNotAllowed,
	licensor.CodeOrderIDConflict:        http.StatusConflict,
	licensor.CodeProductInUse:           http.StatusConflict,
	licensor.CodeConflict:               http.StatusConflict,
	licensor.CodeLicenseNotActive:       http.StatusConflict,
	licensor.CodeLicenseSuspendedAdmin:  http.StatusConflict,
	licensor.CodeRenewalClosed:          http.StatusConflict,
	licensor.CodeResourceMismatch:       http.StatusConflict,
	licensor.CodeIdempotencyKeyInFlight: http.StatusConflict,
	licensor.CodeIdempotencyKeyReused:   http.StatusUnprocessableEntity,
	licensor.CodeRateLimited:            http.StatusTooManyRequests,
	licensor.CodePreconditionFailed:     http.StatusPreconditionFailed,
	licensor.CodeBodyTooLarge:           http.StatusRequestEntityTooLarge,
	licensor.CodeUnsupportedMediaType:   http.StatusUnsupportedMediaType,
	licensor.CodeInternal:               http.StatusInternalServerError,
	licensor.CodeUnavailable:            http.StatusServiceUnavailable,
	// The end-user API.
	licensor.CodeIdempotencyKeyRequired: http.StatusBadRequest,
	licensor.CodeErrorsOmitted:          http.StatusBadRequest, // in fact the document's status
	licensor.CodeTokenMissing:           http.StatusUnauthorized,
	licensor.CodeTokenInvalid:           http.StatusUnauthorized,
	licensor.CodeTokenExpired:           http.StatusUnauthorized,
	licensor.CodeUserMismatch:           http.StatusForbidden,
	licensor.CodePurchaseRestricted:     http.StatusForbidden,
	licensor.CodeProductNotBuyable:      http.StatusForbidden,
	licensor.CodeOriginNotAllowed:       http.StatusForbidden,
}

// titles are the short, fixed titles of error objects.
var titles = map[licensor.Code]string{
	licensor.CodeMalformedJSON:          "Malformed JSON",
	licensor.CodeInvalidAttribute:       "Invalid attribute",
	licensor.CodeUnknownAttribute:       "Unknown attribute",
	licensor.CodeMissingAttribute:       "Missing attribute",
	licensor.CodeInvalidRelationship:    "Invalid relationship",
	licensor.CodeInvalidID:              "Invalid id",
	licensor.CodeInvalidParameter:       "Invalid query parameter",
	licensor.CodeUnknownParameter:       "Unknown query parameter",
	licensor.CodeInvalidCursor:          "Invalid cursor",
	licensor.CodeBatchTooLarge:          "Batch too large",
	licensor.CodeDuplicateInBatch:       "Duplicate in batch",
	licensor.CodeInvalidRequest:         "Invalid request",
	licensor.CodeAPIKeyMissing:          "API key missing",
	licensor.CodeAPIKeyInvalid:          "API key invalid",
	licensor.CodeAPIKeyRevoked:          "API key revoked",
	licensor.CodeAPIKeyExpired:          "API key expired",
	licensor.CodeInsufficientScope:      "Insufficient scope",
	licensor.CodeAddressNotAllowed:      "Address not allowed",
	licensor.CodeNotFound:               "Not found",
	licensor.CodeLicenseNotFound:        "License not found",
	licensor.CodeProductNotFound:        "Product not found",
	licensor.CodeWebhookNotFound:        "Webhook not found",
	licensor.CodeDeliveryNotFound:       "Delivery not found",
	licensor.CodeBulkJobNotFound:        "Bulk job not found",
	licensor.CodeMethodNotAllowed:       "Method not allowed",
	licensor.CodeOrderIDConflict:        "Order id already used",
	licensor.CodeProductInUse:           "Product in use",
	licensor.CodeConflict:               "Conflict",
	licensor.CodeLicenseNotActive:       "License not active",
	licensor.CodeLicenseSuspendedAdmin:  "License suspended by an administrator",
	licensor.CodeRenewalClosed:          "Renewal closed",
	licensor.CodeResourceMismatch:       "Resource type or id mismatch",
	licensor.CodeIdempotencyKeyInFlight: "Idempotency key in flight",
	licensor.CodeIdempotencyKeyReused:   "Idempotency key reused",
	licensor.CodeRateLimited:            "Rate limited",
	licensor.CodePreconditionFailed:     "Precondition failed",
	licensor.CodeBodyTooLarge:           "Request body too large",
	licensor.CodeUnsupportedMediaType:   "Unsupported media type",
	licensor.CodeInternal:               "Internal error",
	licensor.CodeUnavailable:            "Service unavailable",
	// The end-user API.
	licensor.CodeIdempotencyKeyRequired: "Idempotency key required",
	licensor.CodeErrorsOmitted:          "Errors omitted",
	licensor.CodeTokenMissing:           "Bearer token missing",
	licensor.CodeTokenInvalid:           "Bearer token invalid",
	licensor.CodeTokenExpired:           "Bearer token expired",
	licensor.CodeUserMismatch:           "Token is for another user",
	licensor.CodePurchaseRestricted:     "Purchase restricted",
	licensor.CodeProductNotBuyable:      "Product not buyable",
	licensor.CodeOriginNotAllowed:       "Origin not allowed",
}

// ErrorObject is a JSON:API error object.
type ErrorObject struct {
	Status string         `json:"status"`
	Code   licensor.Code  `json:"code"`
	Title  string         `json:"title"`
	Detail string         `json:"detail,omitempty"`
	Source *ErrorSource   `json:"source,omitempty"`
	Meta   map[string]any `json:"meta,omitempty"`
}

type ErrorSource struct {
	Pointer   string `json:"pointer,omitempty"`
	Parameter string `json:"parameter,omitempty"`
}

type ErrorDocument struct {
	Errors []ErrorObject `json:"errors"`
}

// Base is where a single request resource sits in the document
// ("/data" or "/data/0"), or, for batches, the index → base mapping.
type Base func(index int) string

// SingleBase is the Base of a request with one resource, at base.
func SingleBase(base string) Base { return func(int) string { return base } }

// BatchBase is the Base of a batch: item i at /data/i.
func BatchBase(index int) string { return "/data/" + strconv.Itoa(index) }

// problem is an error carrying the pointer base of the request resource, so
// that store errors (relative to the resource) get absolute pointers.
type problem struct {
	err  error
	base Base
}

func (p *problem) Error() string { return p.err.Error() }
func (p *problem) Unwrap() error { return p.err }

// At attaches the resource location to err (nil stays nil).
func At(base Base, err error) error {
	if err == nil {
		return nil
	}
	return &problem{err: err, base: base}
}

// MaxErrorObjects caps the error objects of one response: past it, one
// more object (ERRORS_OMITTED, meta.omitted) says how many were left out.
// With MaxErrorText it bounds every error document, whatever the request:
// about 101 × 1.2 KiB.
const MaxErrorObjects = 100

// MaxErrorText caps the bytes of an error object's detail, pointer and
// parameter (they may quote what the client sent), cut at a character.
const MaxErrorText = 512

// errOmitted stands for an error past the first MaxErrorObjects of a
// request: Object.Fail keeps it instead of formatting the error, and
// ErrorResponse counts it in ERRORS_OMITTED. (It is never changed.)
var errOmitted = &licensor.Error{Code: licensor.CodeErrorsOmitted}

// AddItemErrors adds the errors of batch item index to bad: the first
// MaxErrorObjects, then one ERRORS_OMITTED error counting the rest in
// meta.omitted.
func AddItemErrors(bad licensor.ItemErrors, index int, errs licensor.Errors) licensor.ItemErrors {
	for _, e := range errs {
		switch {
		case len(bad) < MaxErrorObjects:
			bad = append(bad, licensor.ItemError{Index: index, Err: e})
		case len(bad) == MaxErrorObjects:
			bad = append(bad, licensor.ItemError{Index: index, Err: &licensor.Error{Code: licensor.CodeErrorsOmitted, Meta: map[string]any{"omitted": 1}}})
		default:
			m := bad[len(bad)-1].Err.Meta
			m["omitted"] = m["omitted"].(int) + 1
		}
	}
	return bad
}

// ErrorResponse turns any error into a status and JSON:API error objects:
// the one place error documents are built, so every route gets the caps
// of MaxErrorObjects and MaxErrorText. Errors that are not
// *licensor.Error become a bare 500. The status is that of all the
// errors, the omitted ones included.
func ErrorResponse(err error) (int, []ErrorObject) {
	base := SingleBase("")
	var p *problem
	if errors.As(err, &p) {
		base = p.base
	}
	var (
		objs    []ErrorObject
		status  int
		omitted int
	)
	add := func(e *licensor.Error, index int) {
		if e.Code == licensor.CodeErrorsOmitted {
			status = mergeStatus(status, http.StatusBadRequest) // only request errors are omitted
			n, ok := e.Meta["omitted"].(int)
			if !ok {
				n = 1 // errOmitted
			}
			omitted += n
			return
		}
		s, ok := statusOf[e.Code]
		if !ok {
			s = http.StatusInternalServerError
		}
		status = mergeStatus(status, s)
		if len(objs) == MaxErrorObjects {
			omitted++
			return
		}
		obj := ErrorObject{Code: e.Code, Title: titles[e.Code], Detail: capText(e.Detail), Meta: e.Meta, Status: strconv.Itoa(s)}
		if obj.Title == "" {
			obj.Title = "Error"
		}
		switch {
		case e.Pointer != "":
			obj.Source = &ErrorSource{Pointer: capText(base(index) + e.Pointer)}
		case e.Parameter != "":
			obj.Source = &ErrorSource{Parameter: capText(e.Parameter)}
		}
		objs = append(objs, obj)
	}
	var (
		one   *licensor.Error
		many  licensor.Errors
		items licensor.ItemErrors
	)
	switch {
	case errors.As(err, &items):
		for _, it := range items {
			add(it.Err, it.Index)
		}
	case errors.As(err, &many):
		for _, e := range many {
			add(e, 0)
		}
	case errors.As(err, &one):
		add(one, 0)
	default:
		add(&licensor.Error{Code: licensor.CodeInternal, Detail: "the server failed; the request id identifies the failure in its log"}, 0)
	}
	if omitted > 0 {
		objs = append(objs, ErrorObject{
			Status: strconv.Itoa(status), Code: licensor.CodeErrorsOmitted, Title: titles[licensor.CodeErrorsOmitted],
			Detail: strconv.Itoa(omitted) + " more errors were left out; the first " + strconv.Itoa(len(objs)) + " are listed",
			Meta:   map[string]any{"omitted": omitted},
		})
	}
	return status, objs
}

// capText cuts s to at most MaxErrorText bytes, at a character boundary,
// marking the cut with "…".
func capText(s string) string {
	if len(s) <= MaxErrorText {
		return s
	}
	n := MaxErrorText - len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// mergeStatus is the status of a response with errors of statuses status
// (0: none yet) and s: their common status, or the most general 4xx (400)
// when they differ, or the highest 5xx if any is one.
func mergeStatus(status, s int) int {
	switch {
	case status == 0:
		return s
	case s >= 500 || status >= 500:
		return max(s, status)
	case s != status:
		return http.StatusBadRequest
	}
	return status
}

// CompactErrors reduces an error document to the status, code, title,
// source and meta of its error objects (the detail, which may quote the
// request, goes), as many as fit in
// licensor.MaxStoredErrorBytes, then one ERRORS_OMITTED counting the rest
// (those of an ERRORS_OMITTED already in doc included). A body that is not
// an error document is kept when it fits, dropped otherwise.
func CompactErrors(status int, body []byte) []byte {
	var doc ErrorDocument
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Errors) == 0 {
		if len(body) <= licensor.MaxStoredErrorBytes {
			return body
		}
		return nil
	}
	// Room kept for the closing ERRORS_OMITTED object.
	const reserve = 256
	out := bytes.NewBufferString(`{"errors":[`)
	kept, omitted := 0, 0
	for _, e := range doc.Errors {
		if e.Code == licensor.CodeErrorsOmitted {
			n, _ := e.Meta["omitted"].(float64)
			omitted += max(1, int(n))
			continue
		}
		b, err := json.Marshal(ErrorObject{Status: e.Status, Code: e.Code, Title: e.Title, Source: e.Source, Meta: e.Meta})
		if err != nil || out.Len()+1+len(b)+reserve > licensor.MaxStoredErrorBytes {
			omitted++
			continue
		}
		if kept > 0 {
			out.WriteByte(',')
		}
		out.Write(b)
		kept++
	}
	if omitted > 0 {
		b, _ := json.Marshal(ErrorObject{
			Status: strconv.Itoa(status), Code: licensor.CodeErrorsOmitted, Title: titles[licensor.CodeErrorsOmitted],
			Detail: strconv.Itoa(omitted) + " more errors were left out of the stored response",
			Meta:   map[string]any{"omitted": omitted},
		})
		if kept > 0 {
			out.WriteByte(',')
		}
		out.Write(b)
	}
	out.WriteString("]}")
	return out.Bytes()
}
