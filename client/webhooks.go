package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/licensor/licensor"
)

// The webhook routes need an API key of scope write, reads included:
// subscriptions carry their signing secrets.

// webhookIn is a Webhook resource in a response.
type webhookIn struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Attributes struct {
		URL         string               `json:"url"`
		EventTypes  []licensor.EventType `json:"event_types"`
		Description string               `json:"description"`
		Secret      string               `json:"secret"`
		CreatedAt   int64                `json:"created_at"`
		UpdatedAt   int64                `json:"updated_at"`
		PausedAt    *int64               `json:"paused_at"`
	} `json:"attributes"`
}

func (w *webhookIn) webhook() (licensor.Webhook, error) {
	if w.Type != "Webhook" {
		return licensor.Webhook{}, fmt.Errorf("resource type %q, want Webhook", w.Type)
	}
	id, err := parseID("webhook", w.ID)
	if err != nil {
		return licensor.Webhook{}, err
	}
	a := &w.Attributes
	h := licensor.Webhook{ID: id, URL: a.URL, EventTypes: a.EventTypes, Description: a.Description,
		Secret: a.Secret, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, PausedAt: a.PausedAt}
	if h.EventTypes == nil {
		h.EventTypes = []licensor.EventType{}
	}
	return h, nil
}

// webhookOut is a Webhook resource in a create or update request.
type webhookOut struct {
	Type       string `json:"type"`
	ID         string `json:"id,omitempty"`
	Attributes struct {
		URL         *string               `json:"url,omitempty"`
		EventTypes  *[]licensor.EventType `json:"event_types,omitempty"`
		Description *string               `json:"description,omitempty"`
		Secret      *string               `json:"secret,omitempty"`
		Paused      *bool                 `json:"paused,omitempty"`
	} `json:"attributes"`
}

// CreateWebhook subscribes w.URL to the change feed (CreateWebhook) and
// returns the webhook with its signing Secret: the only response that
// shows it, so store it. Empty EventTypes subscribe to every type; an empty
// Description or Secret is left out (the server then makes a random
// secret). A non-nil PausedAt subscribes it paused (the server sets the
// time). ID and the other times of w are ignored.
func (c *Client) CreateWebhook(ctx context.Context, w licensor.Webhook, opts ...RequestOption) (*licensor.Webhook, error) {
	out := webhookOut{Type: "Webhook"}
	out.Attributes.URL = &w.URL
	if len(w.EventTypes) > 0 {
		out.Attributes.EventTypes = &w.EventTypes
	}
	if w.Description != "" {
		out.Attributes.Description = &w.Description
	}
	if w.Secret != "" {
		out.Attributes.Secret = &w.Secret
	}
	if w.PausedAt != nil {
		out.Attributes.Paused = new(true)
	}
	return c.webhookCall(ctx, call{op: "CreateWebhook", method: http.MethodPost, path: "/webhooks",
		body: single[webhookOut]{out}, opts: opts})
}

// Webhook reads one webhook (GetWebhookById), without its secret.
func (c *Client) Webhook(ctx context.Context, id int64, opts ...RequestOption) (*licensor.Webhook, error) {
	return c.webhookCall(ctx, call{op: "GetWebhookById", method: http.MethodGet, path: webhookPath(id), opts: opts})
}

// UpdateWebhook applies a partial update (UpdateWebhook) and returns the
// webhook, without its secret. Nil fields of patch are left out; an
// EventTypes pointing at an empty list subscribes to every type; a new
// Secret takes effect for the next delivery; Paused pauses (true) or
// resumes (false) the webhook's deliveries (see PauseWebhook).
func (c *Client) UpdateWebhook(ctx context.Context, id int64, patch licensor.WebhookPatch, opts ...RequestOption) (*licensor.Webhook, error) {
	out := webhookOut{Type: "Webhook", ID: strconv.FormatInt(id, 10)}
	out.Attributes.URL, out.Attributes.Description, out.Attributes.Secret = patch.URL, patch.Description, patch.Secret
	out.Attributes.Paused = patch.Paused
	if patch.EventTypes != nil {
		types := append([]licensor.EventType{}, *patch.EventTypes...)
		out.Attributes.EventTypes = &types
	}
	return c.webhookCall(ctx, call{op: "UpdateWebhook", method: http.MethodPatch, path: webhookPath(id),
		body: single[webhookOut]{out}, opts: opts})
}

// PauseWebhook pauses (paused true) or resumes (false) a webhook
// (UpdateWebhook with the paused attribute) and returns it. A paused
// webhook's events are still queued as deliveries, but none is attempted
// until it is resumed; its backlog then goes out in the usual order.
func (c *Client) PauseWebhook(ctx context.Context, id int64, paused bool, opts ...RequestOption) (*licensor.Webhook, error) {
	return c.UpdateWebhook(ctx, id, licensor.WebhookPatch{Paused: &paused}, opts...)
}

func (c *Client) webhookCall(ctx context.Context, cl call) (*licensor.Webhook, error) {
	var doc single[resource[webhookIn]]
	if _, err := c.do(ctx, cl, &doc); err != nil {
		return nil, err
	}
	h, err := doc.Data.v.webhook()
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", cl.op, err)
	}
	return &h, nil
}

// Webhooks lists every webhook, by id (GetWebhooks), without their
// secrets. The list is not paged.
func (c *Client) Webhooks(ctx context.Context, opts ...RequestOption) ([]licensor.Webhook, error) {
	var doc many[webhookIn]
	if _, err := c.do(ctx, call{op: "GetWebhooks", method: http.MethodGet, path: "/webhooks", opts: opts}, &doc); err != nil {
		return nil, err
	}
	out := make([]licensor.Webhook, len(doc.Data))
	for i := range doc.Data {
		h, err := doc.Data[i].webhook()
		if err != nil {
			return nil, fmt.Errorf("client: GetWebhooks: %w", err)
		}
		out[i] = h
	}
	return out, nil
}

// DeleteWebhook deletes a webhook and its delivery log
// (DeleteWebhookById).
func (c *Client) DeleteWebhook(ctx context.Context, id int64, opts ...RequestOption) error {
	_, err := c.do(ctx, call{op: "DeleteWebhookById", method: http.MethodDelete, path: webhookPath(id), opts: opts}, nil)
	return err
}

func webhookPath(id int64) string { return "/webhooks/" + strconv.FormatInt(id, 10) }

// DeliveryQuery selects and pages a webhook's delivery log. Zero fields
// select every delivery and take the server's defaults.
type DeliveryQuery struct {
	State   licensor.DeliveryState // filter[state]
	EventID int64                  // filter[event_id]: the deliveries of one event (its Seq)

	// PageSize is the number of deliveries per page, 1 to
	// licensor.MaxPageSize; 0 takes the server's default.
	PageSize int
	// After is the Next of the previous page.
	After string
}

func (q *DeliveryQuery) values() url.Values {
	v := url.Values{}
	if q.State != "" {
		v.Set("filter[state]", string(q.State))
	}
	if q.EventID != 0 {
		v.Set("filter[event_id]", strconv.FormatInt(q.EventID, 10))
	}
	setPage(v, "", q.PageSize, q.After, false)
	return v
}

// DeliveryPage is one page of a delivery log.
type DeliveryPage struct {
	Deliveries []licensor.Delivery // newest first
	// Next is the cursor of the next page (for DeliveryQuery.After); ""
	// on the last page.
	Next string
}

// deliveryIn is a WebhookDelivery resource in a response.
type deliveryIn struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Attributes struct {
		WebhookID     string                 `json:"webhook_id"`
		EventID       string                 `json:"event_id"`
		EventType     licensor.EventType     `json:"event_type"`
		State         licensor.DeliveryState `json:"state"`
		Attempts      int                    `json:"attempts"`
		CreatedAt     int64                  `json:"created_at"`
		NextAttemptAt *int64                 `json:"next_attempt_at"`
		LastAttemptAt *int64                 `json:"last_attempt_at"`
		LastStatus    *int                   `json:"last_status"`
		LastError     *string                `json:"last_error"`
		DeliveredAt   *int64                 `json:"delivered_at"`
	} `json:"attributes"`
}

// delivery converts the wire form: NextAttemptAt is 0 and LastError ""
// where the server sent null.
func (w *deliveryIn) delivery() (licensor.Delivery, error) {
	if w.Type != "WebhookDelivery" {
		return licensor.Delivery{}, fmt.Errorf("resource type %q, want WebhookDelivery", w.Type)
	}
	id, err := parseID("delivery", w.ID)
	if err != nil {
		return licensor.Delivery{}, err
	}
	a := &w.Attributes
	d := licensor.Delivery{ID: id, EventType: a.EventType, State: a.State, Attempts: a.Attempts, CreatedAt: a.CreatedAt,
		LastAttemptAt: a.LastAttemptAt, LastStatus: a.LastStatus, DeliveredAt: a.DeliveredAt}
	if d.WebhookID, err = parseID("webhook", a.WebhookID); err != nil {
		return licensor.Delivery{}, fmt.Errorf("delivery %d: %w", id, err)
	}
	if d.EventSeq, err = parseID("event", a.EventID); err != nil {
		return licensor.Delivery{}, fmt.Errorf("delivery %d: %w", id, err)
	}
	if a.NextAttemptAt != nil {
		d.NextAttemptAt = *a.NextAttemptAt
	}
	if a.LastError != nil {
		d.LastError = *a.LastError
	}
	return d, nil
}

// Deliveries reads one page of a webhook's delivery log, newest first
// (GetWebhookDeliveries).
func (c *Client) Deliveries(ctx context.Context, webhookID int64, q DeliveryQuery, opts ...RequestOption) (*DeliveryPage, error) {
	var doc struct {
		Data  []deliveryIn `json:"data"`
		Links listLinks    `json:"links"`
	}
	if _, err := c.do(ctx, call{op: "GetWebhookDeliveries", method: http.MethodGet, path: webhookPath(webhookID) + "/deliveries",
		query: q.values(), opts: opts}, &doc); err != nil {
		return nil, err
	}
	page := &DeliveryPage{Deliveries: make([]licensor.Delivery, len(doc.Data))}
	for i := range doc.Data {
		d, err := doc.Data[i].delivery()
		if err != nil {
			return nil, fmt.Errorf("client: GetWebhookDeliveries: %w", err)
		}
		page.Deliveries[i] = d
	}
	var err error
	if page.Next, err = nextCursor(doc.Links.Next); err != nil {
		return nil, fmt.Errorf("client: GetWebhookDeliveries: %w", err)
	}
	return page, nil
}

// AllDeliveries walks every page of a webhook's delivery log from q.After
// on, newest first, yielding each delivery. It stops at the first error,
// which it yields.
func (c *Client) AllDeliveries(ctx context.Context, webhookID int64, q DeliveryQuery, opts ...RequestOption) iter.Seq2[licensor.Delivery, error] {
	return walk(q.After, func(after string) ([]licensor.Delivery, string, error) {
		q.After = after
		page, err := c.Deliveries(ctx, webhookID, q, opts...)
		if err != nil {
			return nil, "", err
		}
		return page.Deliveries, page.Next, nil
	})
}

// Redeliver queues a delivery again (RedeliverWebhookDelivery): a new
// pending delivery of the same event, due now, which it returns.
func (c *Client) Redeliver(ctx context.Context, webhookID, deliveryID int64, opts ...RequestOption) (*licensor.Delivery, error) {
	var doc single[resource[deliveryIn]]
	if _, err := c.do(ctx, call{op: "RedeliverWebhookDelivery", method: http.MethodPost,
		path: webhookPath(webhookID) + "/deliveries/" + strconv.FormatInt(deliveryID, 10) + "/redeliver", opts: opts}, &doc); err != nil {
		return nil, err
	}
	d, err := doc.Data.v.delivery()
	if err != nil {
		return nil, fmt.Errorf("client: RedeliverWebhookDelivery: %w", err)
	}
	return &d, nil
}
