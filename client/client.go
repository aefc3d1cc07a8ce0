// Package client is the Go client of the licensor License Management API v4
// (the AminoTV License v4 management API) and of its End-user License API
// v4. It speaks the JSON:API wire form, decoding licenses and products into
// the root package's wire types (licensor.LicenseObject, ProductObject), and
// hands back the domain types of package licensor.
//
// A Client (New) calls every management operation with an API key:
// licenses, products, the change feed (Events, AllEvents, FollowEvents),
// webhooks and their delivery logs, entitlements (UserEntitlements,
// CheckEntitlements). An EndUser (NewEndUser) calls the end-user operations
// as one user with that user's bearer token: the visible products, the
// user's licenses and entitlements, a purchase. The test
// TestEveryOperationHasAMethod keeps the two covering every operation of
// the OpenAPI document.
//
// Every method makes one HTTP request (the All* and Follow* iterators one
// per page).
// Timeouts and cancellation come from the context and from the http.Client
// given with WithHTTPClient. A response with a status other than 2xx is
// returned as an *Error (status, error objects with code, source pointer
// or parameter and meta, request id, Retry-After), which unwraps to
// *licensor.Error values, so licensor.ErrorCode works on every error the
// client returns:
//
//	c := client.New("https://licensor.example.com", apiKey)
//	orderID := "1adc0dbe-3c65-4248-896c-78c049e276c8"
//	lic, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: 7, OrderID: &orderID})
//	var apiErr *client.Error
//	switch {
//	case err == nil:
//		fmt.Println("created license", lic.ID)
//	case licensor.ErrorCode(err) == licensor.CodeOrderIDConflict && errors.As(err, &apiErr):
//		id, _ := apiErr.ExistingID()
//		fmt.Println("already created as license", id)
//	default:
//		return err
//	}
//
// Licenses read through the client carry the effective status (an ACTIVE
// license past its stop date reads as EXPIRED). Products carry in Channels
// every service the server sent (an empty list for a service granting
// nothing) and a zero Version: the version is not on the wire, the ETag
// returned with each product stands for it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// BasePath is the path prefix of every management operation.
const BasePath = "/api/license/management/v4"

// MediaType is the JSON:API media type of requests and responses.
const MediaType = "application/vnd.api+json"

// maxResponseBytes caps how much of a response body is read; the largest
// legitimate response (a page of 1000 licenses with their products) is far
// smaller.
const maxResponseBytes = 64 << 20

// Client calls the management API with one API key. It is safe for
// concurrent use.
type Client struct {
	baseURL   string
	base      string // BasePath, or EndUserPath for an EndUser's client
	auth      string // the Authorization header
	hc        *http.Client
	userAgent string
}

// An Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc (its timeout,
// transport and TLS settings). The default is http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client of the server at baseURL (scheme, host and an
// optional path prefix, such as "http://127.0.0.1:8080") that authenticates
// with apiKey.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{
		baseURL:   strings.TrimRight(baseURL, "/"),
		base:      BasePath,
		auth:      "Apikey " + apiKey,
		hc:        http.DefaultClient,
		userAgent: "licensor-client",
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// A RequestOption changes one request.
type RequestOption func(*http.Request)

// WithIdempotencyKey sends an Idempotency-Key header, which makes a POST
// (a create or a batch) safe to retry: the server replays its first answer
// to a repeat of the same request.
func WithIdempotencyKey(key string) RequestOption {
	return func(r *http.Request) { r.Header.Set("Idempotency-Key", key) }
}

// WithIfNoneMatch sends an If-None-Match header with an ETag from an
// earlier answer (the entitlement reads honour it): when the answer has
// not changed, the call fails with ErrNotModified instead of reading it
// again.
func WithIfNoneMatch(etag string) RequestOption {
	return func(r *http.Request) { r.Header.Set("If-None-Match", etag) }
}

// ErrNotModified is the error of a read sent WithIfNoneMatch whose answer
// has not changed (304 Not Modified): the answer behind the ETag still
// holds. It is not an *Error.
var ErrNotModified = errors.New("client: not modified")

// WithRequestID sends an X-Request-Id header, which the server uses as the
// id of the request in its logs and echoes back.
func WithRequestID(id string) RequestOption {
	return func(r *http.Request) { r.Header.Set("X-Request-Id", id) }
}

// call is one HTTP exchange with the API.
type call struct {
	op     string // operation id, for error messages
	method string
	path   string // below the client's base path, already escaped
	query  url.Values
	header http.Header
	body   any // encoded as JSON when not nil
	opts   []RequestOption
}

// do sends the call and decodes a 2xx response body into out (when out is
// not nil). Any other status becomes an *Error.
func (c *Client) do(ctx context.Context, cl call, out any) (http.Header, error) {
	u := c.baseURL + c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return nil, fmt.Errorf("client: %s: encoding request: %w", cl.op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", cl.op, err)
	}
	req.Header.Set("Accept", MediaType)
	req.Header.Set("Authorization", c.auth)
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", MediaType)
	}
	for k, vs := range cl.header {
		req.Header[k] = vs
	}
	for _, o := range cl.opts {
		o(req)
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", cl.op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("client: %s: reading response: %w", cl.op, err)
	}
	if resp.StatusCode == http.StatusNotModified {
		return resp.Header, ErrNotModified
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Header, newError(resp, data)
	}
	if out != nil {
		if len(bytes.TrimSpace(data)) == 0 {
			return resp.Header, fmt.Errorf("client: %s: empty response body (status %d)", cl.op, resp.StatusCode)
		}
		if err := json.Unmarshal(data, out); err != nil {
			return resp.Header, fmt.Errorf("client: %s: decoding response: %w", cl.op, err)
		}
	}
	return resp.Header, nil
}
