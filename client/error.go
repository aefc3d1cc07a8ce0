package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/licensor/licensor"
)

// Error is a response with a status other than 2xx: the JSON:API error
// objects the server sent. It unwraps to one *licensor.Error per object, so
// errors.As and licensor.ErrorCode see the first one.
type Error struct {
	StatusCode int
	Errors     []ErrorObject // never empty
	RequestID  string        // the X-Request-Id of the response
	// RetryAfter is the Retry-After of a 429 or 503 response, 0 when absent.
	RetryAfter time.Duration
}

// ErrorObject is one JSON:API error object.
type ErrorObject struct {
	Status    string // the HTTP status of this problem, "404"
	Code      licensor.Code
	Title     string
	Detail    string
	Pointer   string // source.pointer: the member of the request document at fault
	Parameter string // source.parameter: the query parameter at fault
	Meta      map[string]any
}

// Error describes the first error object, and how many others there are.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client: %d %s", e.StatusCode, e.Errors[0].domain().Error())
	if n := len(e.Errors) - 1; n > 0 {
		fmt.Fprintf(&b, " (and %d more)", n)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	return b.String()
}

// Code is the code of the first error object.
func (e *Error) Code() licensor.Code { return e.Errors[0].Code }

// Unwrap returns every error object as a *licensor.Error, in order.
func (e *Error) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i := range e.Errors {
		errs[i] = e.Errors[i].domain()
	}
	return errs
}

// ExistingID returns the id of the live license that already holds the
// order_id of a create that failed with licensor.CodeOrderIDConflict.
func (e *Error) ExistingID() (int64, bool) {
	for _, o := range e.Errors {
		if o.Code != licensor.CodeOrderIDConflict {
			continue
		}
		switch v := o.Meta["existing_id"].(type) {
		case string:
			if id, err := strconv.ParseInt(v, 10, 64); err == nil {
				return id, true
			}
		case float64:
			if v > 0 && v == float64(int64(v)) {
				return int64(v), true
			}
		}
	}
	return 0, false
}

// Index returns the position of the batch item an error is about, read from
// its pointer ("/data/3/attributes/order_id" is item 3).
func (o ErrorObject) Index() (int, bool) {
	rest, ok := strings.CutPrefix(o.Pointer, "/data/")
	if !ok {
		return 0, false
	}
	n, _, _ := strings.Cut(rest, "/")
	i, err := strconv.Atoi(n)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// domain converts o to the domain error type.
func (o ErrorObject) domain() *licensor.Error {
	return &licensor.Error{Code: o.Code, Detail: o.Detail, Pointer: o.Pointer, Parameter: o.Parameter, Meta: o.Meta}
}

// errorDocument is the wire form of an error response.
type errorDocument struct {
	Errors []struct {
		Status string         `json:"status"`
		Code   licensor.Code  `json:"code"`
		Title  string         `json:"title"`
		Detail string         `json:"detail"`
		Meta   map[string]any `json:"meta"`
		Source *struct {
			Pointer   string `json:"pointer"`
			Parameter string `json:"parameter"`
		} `json:"source"`
	} `json:"errors"`
}

// newError reads an error response. A body that is not a JSON:API error
// document (from a proxy, say) becomes one error object whose code is
// guessed from the status.
func newError(resp *http.Response, body []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	var doc errorDocument
	if json.Unmarshal(body, &doc) == nil {
		for _, w := range doc.Errors {
			o := ErrorObject{Status: w.Status, Code: w.Code, Title: w.Title, Detail: w.Detail, Meta: w.Meta}
			if w.Source != nil {
				o.Pointer, o.Parameter = w.Source.Pointer, w.Source.Parameter
			}
			if o.Code == "" {
				o.Code = codeForStatus(resp.StatusCode)
			}
			e.Errors = append(e.Errors, o)
		}
	}
	if len(e.Errors) == 0 {
		detail := strings.TrimSpace(string(body))
		if len(detail) > 200 {
			detail = detail[:200] + "..."
		}
		e.Errors = []ErrorObject{{
			Status: strconv.Itoa(resp.StatusCode),
			Code:   codeForStatus(resp.StatusCode),
			Title:  http.StatusText(resp.StatusCode),
			Detail: detail,
		}}
	}
	return e
}

// codeForStatus is the error code of a response that did not say.
func codeForStatus(status int) licensor.Code {
	switch status {
	case http.StatusBadRequest:
		return licensor.CodeInvalidRequest
	case http.StatusUnauthorized:
		return licensor.CodeAPIKeyInvalid
	case http.StatusForbidden:
		return licensor.CodeInsufficientScope
	case http.StatusNotFound:
		return licensor.CodeNotFound
	case http.StatusMethodNotAllowed:
		return licensor.CodeMethodNotAllowed
	case http.StatusConflict:
		return licensor.CodeConflict
	case http.StatusPreconditionFailed:
		return licensor.CodePreconditionFailed
	case http.StatusRequestEntityTooLarge:
		return licensor.CodeBodyTooLarge
	case http.StatusUnsupportedMediaType:
		return licensor.CodeUnsupportedMediaType
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return licensor.CodeUnavailable
	}
	return licensor.CodeInternal
}
