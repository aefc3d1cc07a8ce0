package client_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
)

// asError returns err as a *client.Error, failing the test otherwise.
func asError(t *testing.T, err error) *client.Error {
	t.Helper()
	var apiErr *client.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want a *client.Error", err, err)
	}
	return apiErr
}

func TestOrderIDConflict(t *testing.T) {
	c, _ := serve(t, reply{status: 409, header: map[string][]string{"X-Request-Id": {"req-9"}}, body: `{"errors":[{
	  "status":"409","code":"ORDER_ID_CONFLICT","title":"Order id already used",
	  "detail":"order_id \"abc\" is held by license 42","source":{"pointer":"/data/attributes/order_id"},
	  "meta":{"existing_id":"42"}}]}`})
	_, err := c.CreateLicense(t.Context(), licensor.LicenseDraft{UserID: "41", ProductID: 7, OrderID: ptr("abc")})

	apiErr := asError(t, err)
	want := &client.Error{
		StatusCode: 409,
		RequestID:  "req-9",
		Errors: []client.ErrorObject{{
			Status: "409", Code: licensor.CodeOrderIDConflict, Title: "Order id already used",
			Detail: `order_id "abc" is held by license 42`, Pointer: "/data/attributes/order_id",
			Meta: map[string]any{"existing_id": "42"},
		}},
	}
	if !reflect.DeepEqual(apiErr, want) {
		t.Errorf("error\n got %+v\nwant %+v", apiErr, want)
	}
	if apiErr.Code() != licensor.CodeOrderIDConflict || licensor.ErrorCode(err) != licensor.CodeOrderIDConflict {
		t.Errorf("Code() = %q, ErrorCode = %q", apiErr.Code(), licensor.ErrorCode(err))
	}
	if id, ok := apiErr.ExistingID(); !ok || id != 42 {
		t.Errorf("ExistingID() = %d, %v", id, ok)
	}
	var domain *licensor.Error
	if !errors.As(err, &domain) || domain.Pointer != "/data/attributes/order_id" || domain.Meta["existing_id"] != "42" {
		t.Errorf("as *licensor.Error: %+v", domain)
	}
	if got := err.Error(); got != `client: 409 ORDER_ID_CONFLICT: order_id "abc" is held by license 42 (at /data/attributes/order_id) [request req-9]` {
		t.Errorf("Error() = %q", got)
	}
	// Wrapped by a caller, it still works.
	wrapped := fmt.Errorf("buying: %w", err)
	if licensor.ErrorCode(wrapped) != licensor.CodeOrderIDConflict {
		t.Errorf("ErrorCode(wrapped) = %q", licensor.ErrorCode(wrapped))
	}
}

func TestExistingID(t *testing.T) {
	for _, tt := range []struct {
		meta string
		id   int64
		ok   bool
	}{
		{`{"existing_id":"42"}`, 42, true},
		{`{"existing_id":42}`, 42, true},
		{`{"existing_id":"x"}`, 0, false},
		{`{}`, 0, false},
	} {
		c, _ := serve(t, reply{status: 409, body: `{"errors":[{"status":"409","code":"ORDER_ID_CONFLICT","title":"t","meta":` + tt.meta + `}]}`})
		_, err := c.CreateLicense(t.Context(), licensor.LicenseDraft{})
		if id, ok := asError(t, err).ExistingID(); id != tt.id || ok != tt.ok {
			t.Errorf("meta %s: ExistingID() = %d, %v", tt.meta, id, ok)
		}
	}
	c, _ := serve(t, reply{status: 409, body: `{"errors":[{"status":"409","code":"PRODUCT_IN_USE","title":"t","meta":{"existing_id":"1"}}]}`})
	err := c.DeleteProduct(t.Context(), 1, false, "")
	if _, ok := asError(t, err).ExistingID(); ok {
		t.Error("ExistingID of a PRODUCT_IN_USE error")
	}
}

func TestErrorResponses(t *testing.T) {
	tests := []struct {
		name   string
		reply  reply
		code   licensor.Code
		params []string
		retry  time.Duration
		msg    string
	}{
		{"unauthorized", reply{status: 401, header: map[string][]string{"Www-Authenticate": {"Apikey"}},
			body: `{"errors":[{"status":"401","code":"API_KEY_REVOKED","title":"API key revoked","detail":"the API key was revoked"}]}`},
			licensor.CodeAPIKeyRevoked, []string{""}, 0, "client: 401 API_KEY_REVOKED: the API key was revoked [request req-1]"},
		{"parameters", reply{status: 400, body: `{"errors":[
		  {"status":"400","code":"UNKNOWN_PARAMETER","title":"Unknown query parameter","source":{"parameter":"filter[colour]"}},
		  {"status":"400","code":"INVALID_PARAMETER","title":"Invalid query parameter","source":{"parameter":"page[size]"}}]}`},
			licensor.CodeUnknownParameter, []string{"filter[colour]", "page[size]"}, 0,
			"client: 400 UNKNOWN_PARAMETER (parameter filter[colour]) (and 1 more) [request req-1]"},
		{"rate limited", reply{status: 429, header: map[string][]string{"Retry-After": {"7"}},
			body: `{"errors":[{"status":"429","code":"RATE_LIMITED","title":"Too many requests"}]}`},
			"RATE_LIMITED", []string{""}, 7 * time.Second, "client: 429 RATE_LIMITED [request req-1]"},
		{"unavailable", reply{status: 503, body: `{"errors":[{"status":"503","code":"UNAVAILABLE","title":"Service unavailable"}]}`},
			licensor.CodeUnavailable, []string{""}, 0, "client: 503 UNAVAILABLE [request req-1]"},
		{"not JSON:API", reply{status: 502, body: "<html>Bad Gateway</html>"},
			licensor.CodeUnavailable, []string{""}, 0, "client: 502 UNAVAILABLE: <html>Bad Gateway</html> [request req-1]"},
		{"empty 404", reply{status: 404},
			licensor.CodeNotFound, []string{""}, 0, "client: 404 NOT_FOUND [request req-1]"},
		{"no code", reply{status: 500, body: `{"errors":[{"status":"500","title":"oops"}]}`},
			licensor.CodeInternal, []string{""}, 0, "client: 500 INTERNAL [request req-1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := serve(t, tt.reply)
			_, err := c.Licenses(t.Context(), client.LicenseQuery{})
			apiErr := asError(t, err)
			if apiErr.StatusCode != tt.reply.status || apiErr.Code() != tt.code || licensor.ErrorCode(err) != tt.code {
				t.Errorf("status %d code %q ErrorCode %q", apiErr.StatusCode, apiErr.Code(), licensor.ErrorCode(err))
			}
			var params []string
			for _, o := range apiErr.Errors {
				params = append(params, o.Parameter)
			}
			if !reflect.DeepEqual(params, tt.params) {
				t.Errorf("parameters %q, want %q", params, tt.params)
			}
			if apiErr.RetryAfter != tt.retry {
				t.Errorf("RetryAfter %v, want %v", apiErr.RetryAfter, tt.retry)
			}
			if got := err.Error(); got != tt.msg {
				t.Errorf("Error()\n got %q\nwant %q", got, tt.msg)
			}
		})
	}
}

func TestErrorUnwrapsEveryObject(t *testing.T) {
	c, _ := serve(t, reply{status: 400, body: `{"errors":[
	  {"status":"400","code":"DUPLICATE_IN_BATCH","title":"Duplicate in batch","source":{"pointer":"/data/1/attributes/order_id"}},
	  {"status":"404","code":"PRODUCT_NOT_FOUND","title":"Product not found","source":{"pointer":"/data/2/relationships/product"}}]}`})
	_, err := c.CreateLicenses(t.Context(), make([]licensor.LicenseDraft, 3))
	var codes []licensor.Code
	for _, e := range asError(t, err).Unwrap() {
		var d *licensor.Error
		if !errors.As(e, &d) {
			t.Fatalf("%T is not a *licensor.Error", e)
		}
		codes = append(codes, d.Code)
	}
	if !reflect.DeepEqual(codes, []licensor.Code{licensor.CodeDuplicateInBatch, licensor.CodeProductNotFound}) {
		t.Errorf("codes %v", codes)
	}
	if licensor.ErrorCode(err) != licensor.CodeDuplicateInBatch {
		t.Errorf("ErrorCode = %q, want the first", licensor.ErrorCode(err))
	}
}
