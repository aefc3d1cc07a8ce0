package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/licensor/licensor"
)

// entitlementsIn is an Entitlements resource in a response.
type entitlementsIn struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Attributes struct {
		ValidUntil *int64 `json:"valid_until"`
	} `json:"attributes"`
	Relationships struct {
		User      licensor.ToOne  `json:"user"`
		Products  licensor.ToMany `json:"products"`
		Live      licensor.ToMany `json:"live"`
		Catchup   licensor.ToMany `json:"catchup"`
		NPVR      licensor.ToMany `json:"npvr"`
		Startover licensor.ToMany `json:"startover"`
	} `json:"relationships"`
}

// Entitlements is what one user may use at one instant: the entitling
// products and the channels they grant per service. The answer holds until
// ValidUntil, writes aside. (The root package's licensor.Entitlements is
// the rule's result over whole products; this is the answer as the API
// sends it.)
type Entitlements struct {
	UserID string
	// Products are the ids of the entitling products, ascending; a
	// product that grants no channel (SVOD, say) is listed too.
	Products []int64
	// Channels holds, for every service of licensor.Services, the channel
	// ids granted, ascending (an empty, non-nil list when none).
	Channels licensor.Channels
	// ValidUntil is the next instant the answer can change by the passing
	// of time; nil when none (only a write can change it).
	ValidUntil *int64
}

// Allows reports whether the answer grants channel on service s.
func (e *Entitlements) Allows(s licensor.Service, channel string) bool {
	return slices.Contains(e.Channels[s], channel)
}

// Holds reports whether the product is among the entitling ones.
func (e *Entitlements) Holds(productID int64) bool { return slices.Contains(e.Products, productID) }

// entitlements converts the wire form.
func (w *entitlementsIn) entitlements() (Entitlements, error) {
	if w.Type != "Entitlements" {
		return Entitlements{}, fmt.Errorf("resource type %q, want Entitlements", w.Type)
	}
	r := &w.Relationships
	e := Entitlements{
		UserID:     w.ID,
		Products:   make([]int64, len(r.Products.Data)),
		ValidUntil: w.Attributes.ValidUntil,
		Channels: licensor.Channels{
			licensor.ServiceLive: identifierIDs(r.Live.Data), licensor.ServiceCatchup: identifierIDs(r.Catchup.Data),
			licensor.ServiceNPVR: identifierIDs(r.NPVR.Data), licensor.ServiceStartover: identifierIDs(r.Startover.Data),
		},
	}
	for i, p := range r.Products.Data {
		id, err := parseID("product", p.ID)
		if err != nil {
			return Entitlements{}, fmt.Errorf("entitlements of %q: %w", w.ID, err)
		}
		e.Products[i] = id
	}
	return e, nil
}

// entitlementsCall reads an Entitlements document and its ETag.
func (c *Client) entitlementsCall(ctx context.Context, op, path string, at int64, opts []RequestOption) (*Entitlements, string, error) {
	var query url.Values
	if at != 0 {
		query = url.Values{"at": {strconv.FormatInt(at, 10)}}
	}
	var doc single[entitlementsIn]
	h, err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, query: query, opts: opts}, &doc)
	if err == ErrNotModified {
		return nil, h.Get("ETag"), err
	}
	if err != nil {
		return nil, "", err
	}
	e, err := doc.Data.entitlements()
	if err != nil {
		return nil, "", fmt.Errorf("client: %s: %w", op, err)
	}
	return &e, h.Get("ETag"), nil
}

// UserEntitlements reads what a user may use at unix time at (now when
// at is 0) (GetEntitlementsByUser): the entitling products and the channels
// they grant per service, with every service in Channels; an unknown user
// is entitled to nothing. The answer holds until ValidUntil, writes aside;
// its ETag, sent back WithIfNoneMatch, makes the call fail with
// ErrNotModified while the answer stands.
func (c *Client) UserEntitlements(ctx context.Context, userID string, at int64, opts ...RequestOption) (*Entitlements, string, error) {
	return c.entitlementsCall(ctx, "GetEntitlementsByUser", "/users/"+url.PathEscape(userID)+"/entitlements", at, opts)
}

// EntitlementCheck is one question of CheckEntitlements: may user UserID
// use channel ChannelID on Service at unix time At (now when 0)?
type EntitlementCheck struct {
	UserID    string
	ChannelID string
	Service   licensor.Service
	At        int64
}

// EntitlementAnswer is the answer to one EntitlementCheck.
type EntitlementAnswer struct {
	// EntitlementCheck is the question, its At the instant the server
	// answered for.
	EntitlementCheck
	Entitled bool
	// ValidUntil is the next instant the answer can change by the passing
	// of time; nil when none (only a write can change it).
	ValidUntil *int64
}

type checkOut struct {
	Type       string `json:"type"`
	Attributes struct {
		UserID    string           `json:"user_id"`
		ChannelID string           `json:"channel_id"`
		Service   licensor.Service `json:"service"`
		At        *int64           `json:"at,omitempty"`
	} `json:"attributes"`
}

type checkIn struct {
	Type       string `json:"type"`
	Attributes struct {
		UserID     string           `json:"user_id"`
		ChannelID  string           `json:"channel_id"`
		Service    licensor.Service `json:"service"`
		At         int64            `json:"at"`
		Entitled   bool             `json:"entitled"`
		ValidUntil *int64           `json:"valid_until"`
	} `json:"attributes"`
}

// CheckEntitlements answers many entitlement questions in one request
// (CheckEntitlements), in the order asked; a read key may call it. Invalid
// questions fail the whole call, one error object per problem
// (ErrorObject.Index tells which question).
func (c *Client) CheckEntitlements(ctx context.Context, questions []EntitlementCheck, opts ...RequestOption) ([]EntitlementAnswer, error) {
	body := many[checkOut]{Data: make([]checkOut, len(questions))}
	for i, q := range questions {
		o := checkOut{Type: "EntitlementCheck"}
		o.Attributes.UserID, o.Attributes.ChannelID, o.Attributes.Service = q.UserID, q.ChannelID, q.Service
		if q.At != 0 {
			at := q.At
			o.Attributes.At = &at
		}
		body.Data[i] = o
	}
	var doc many[checkIn]
	if _, err := c.do(ctx, call{op: "CheckEntitlements", method: http.MethodPost, path: "/entitlements/check",
		body: body, opts: opts}, &doc); err != nil {
		return nil, err
	}
	if len(doc.Data) != len(questions) {
		return nil, fmt.Errorf("client: CheckEntitlements: %d answers to %d questions", len(doc.Data), len(questions))
	}
	out := make([]EntitlementAnswer, len(doc.Data))
	for i, w := range doc.Data {
		if w.Type != "EntitlementCheck" {
			return nil, fmt.Errorf("client: CheckEntitlements: resource type %q, want EntitlementCheck", w.Type)
		}
		a := &w.Attributes
		out[i] = EntitlementAnswer{
			EntitlementCheck: EntitlementCheck{UserID: a.UserID, ChannelID: a.ChannelID, Service: a.Service, At: a.At},
			Entitled:         a.Entitled, ValidUntil: a.ValidUntil,
		}
	}
	return out, nil
}
