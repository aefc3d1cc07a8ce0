package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

// Webhooks: subscriptions to the change feed (write scope on every route,
// reads included: a subscription's URL may carry a token of its own). The
// deliveries themselves are made by internal/webhook.
type (
	webhookResource struct {
		ID         string            `json:"id"`
		Type       string            `json:"type"`
		Attributes webhookAttributes `json:"attributes"`
		Links      selfLink          `json:"links"`
	}
	webhookAttributes struct {
		URL         string               `json:"url"`
		EventTypes  []licensor.EventType `json:"event_types"`
		Description string               `json:"description"`
		// Secret is shown once, in the response that creates the webhook.
		Secret    string `json:"secret,omitempty"`
		CreatedAt int64  `json:"created_at"`
		UpdatedAt int64  `json:"updated_at"`
		// Paused webhooks queue their deliveries without attempting them.
		Paused   bool   `json:"paused"`
		PausedAt *int64 `json:"paused_at"`
	}
	webhookDocument struct {
		Data webhookResource `json:"data"`
	}
	webhookListDocument struct {
		Data  []webhookResource `json:"data"`
		Links listLinks         `json:"links"`
		Meta  listMeta          `json:"meta"`
	}

	deliveryResource struct {
		ID         string             `json:"id"`
		Type       string             `json:"type"`
		Attributes deliveryAttributes `json:"attributes"`
	}
	deliveryAttributes struct {
		WebhookID     string                 `json:"webhook_id"`
		EventID       string                 `json:"event_id"`
		EventType     licensor.EventType     `json:"event_type"`
		State         licensor.DeliveryState `json:"state"`
		Attempts      int                    `json:"attempts"`
		CreatedAt     int64                  `json:"created_at"`
		NextAttemptAt *int64                 `json:"next_attempt_at"` // pending deliveries only
		LastAttemptAt *int64                 `json:"last_attempt_at"`
		LastStatus    *int                   `json:"last_status"`
		LastError     *string                `json:"last_error"`
		DeliveredAt   *int64                 `json:"delivered_at"`
	}
	deliveryDocument struct {
		Data deliveryResource `json:"data"`
	}
	deliveryListDocument struct {
		Data  []deliveryResource `json:"data"`
		Links listLinks          `json:"links"`
		Meta  listMeta           `json:"meta"`
	}
)

func webhookPath(wid int64) string { return basePath + "/webhooks/" + id(wid) }

func webhookOut(w *licensor.Webhook, withSecret bool) webhookResource {
	out := webhookResource{ID: id(w.ID), Type: "Webhook", Attributes: webhookAttributes{
		URL: w.URL, EventTypes: w.EventTypes, Description: w.Description,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, Paused: w.Paused(), PausedAt: w.PausedAt,
	}, Links: selfLink{Self: webhookPath(w.ID)}}
	if out.Attributes.EventTypes == nil {
		out.Attributes.EventTypes = []licensor.EventType{}
	}
	if withSecret {
		out.Attributes.Secret = w.Secret
	}
	return out
}

func deliveryOut(d *licensor.Delivery) deliveryResource {
	out := deliveryResource{ID: id(d.ID), Type: "WebhookDelivery", Attributes: deliveryAttributes{
		WebhookID: id(d.WebhookID), EventID: id(d.EventSeq), EventType: d.EventType, State: d.State,
		Attempts: d.Attempts, CreatedAt: d.CreatedAt, LastAttemptAt: d.LastAttemptAt,
		LastStatus: d.LastStatus, DeliveredAt: d.DeliveredAt,
	}}
	if d.State == licensor.DeliveryPending {
		next := d.NextAttemptAt
		out.Attributes.NextAttemptAt = &next
	}
	if d.LastError != "" {
		e := d.LastError
		out.Attributes.LastError = &e
	}
	return out
}

func (s *Server) getWebhooks(w http.ResponseWriter, r *http.Request) error {
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return err
	}
	hooks, err := s.store.FindWebhooks(r.Context())
	if err != nil {
		return err
	}
	doc := webhookListDocument{Data: make([]webhookResource, len(hooks)), Links: listLinks{Self: r.URL.RequestURI()}}
	for i := range hooks {
		doc.Data[i] = webhookOut(&hooks[i], false)
	}
	return jsonapi.Write(w, http.StatusOK, doc)
}

func (s *Server) getWebhookById(w http.ResponseWriter, r *http.Request) error {
	wid, err := jsonapi.PathID(r.PathValue("webhook_id"), "webhook_id")
	if err != nil {
		return err
	}
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return err
	}
	hook, err := s.store.FindWebhookByID(r.Context(), wid)
	if err != nil {
		return err
	}
	return jsonapi.Write(w, http.StatusOK, webhookDocument{Data: webhookOut(hook, false)})
}

// checkWebhookURL applies the server's delivery policy to a URL.
func (s *Server) checkWebhookURL(raw string) error {
	if s.opts.CheckWebhookURL == nil {
		_, err := licensor.ParseWebhookURL(raw)
		return err
	}
	return s.opts.CheckWebhookURL(raw)
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	item, base, err := jsonapi.ReadResource(r)
	if err != nil {
		return err
	}
	patch, err := parseWebhook(item, 0)
	if err != nil {
		return jsonapi.At(base, err)
	}
	hook := licensor.Webhook{URL: *patch.URL, Secret: licensor.NewWebhookSecret(), EventTypes: []licensor.EventType{}}
	if patch.EventTypes != nil {
		hook.EventTypes = *patch.EventTypes
	}
	if patch.Description != nil {
		hook.Description = *patch.Description
	}
	if patch.Secret != nil {
		hook.Secret = *patch.Secret
	}
	if patch.Paused != nil && *patch.Paused {
		hook.PausedAt = new(int64(0)) // the store sets the time
	}
	if err := hook.Validate(); err != nil {
		return jsonapi.At(base, err)
	}
	if err := s.checkWebhookURL(hook.URL); err != nil {
		return jsonapi.At(base, err)
	}
	rend := func(h *licensor.Webhook) (licensor.StoredResponse, error) {
		return jsonapi.Response(http.StatusCreated, webhookDocument{Data: webhookOut(h, true)}, "Location", webhookPath(h.ID))
	}
	if err := s.store.CreateWebhook(r.Context(), &hook, s.writeChange(r, licensor.Renders{Webhook: rend})); err != nil {
		return jsonapi.At(base, err)
	}
	return respond(w, rend, &hook)
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) error {
	wid, err := jsonapi.PathID(r.PathValue("webhook_id"), "webhook_id")
	if err != nil {
		return err
	}
	item, base, err := jsonapi.ReadResource(r)
	if err != nil {
		return err
	}
	patch, err := parseWebhook(item, wid)
	if err != nil {
		return jsonapi.At(base, err)
	}
	if patch.URL != nil {
		if err := s.checkWebhookURL(*patch.URL); err != nil {
			return jsonapi.At(base, err)
		}
	}
	hook, err := s.store.UpdateWebhook(r.Context(), wid, patch, s.change(r))
	if err != nil {
		return jsonapi.At(base, err)
	}
	return jsonapi.Write(w, http.StatusOK, webhookDocument{Data: webhookOut(hook, false)})
}

func (s *Server) deleteWebhookById(w http.ResponseWriter, r *http.Request) error {
	wid, err := jsonapi.PathID(r.PathValue("webhook_id"), "webhook_id")
	if err != nil {
		return err
	}
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return err
	}
	if err := s.store.DeleteWebhook(r.Context(), wid, s.change(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getWebhookDeliveries serves a webhook's delivery log, newest first.
func (s *Server) getWebhookDeliveries(w http.ResponseWriter, r *http.Request) error {
	wid, err := jsonapi.PathID(r.PathValue("webhook_id"), "webhook_id")
	if err != nil {
		return err
	}
	q := jsonapi.NewQuery(r.URL)
	dq := licensor.DeliveryQuery{WebhookID: wid}
	if v, ok := q.Get("filter[state]"); ok {
		st := licensor.DeliveryState(v)
		if !st.Valid() {
			q.Fail(licensor.CodeInvalidParameter, "filter[state]", "filter[state] must be pending, delivered or failed")
		}
		dq.State = &st
	}
	dq.EventSeq = q.Int("filter[event_id]", 1)
	scope := q.Scope(r.URL.Path)
	dq.Limit = q.PageSize()
	if v, ok := q.Get("page[after]"); ok {
		var c logCursor
		b, err := base64.RawURLEncoding.DecodeString(v)
		switch {
		case err != nil || len(b) > 1024 || json.Unmarshal(b, &c) != nil || c.Before <= 0:
			q.Fail(licensor.CodeInvalidCursor, "page[after]", "page[after] is not a cursor from links.next")
		case c.Scope != scope:
			q.Fail(licensor.CodeInvalidCursor, "page[after]", "page[after] was made for other filters; start again without it")
		}
		dq.Before = c.Before
	}
	if err := q.Done(); err != nil {
		return err
	}
	page, err := s.store.FindDeliveries(r.Context(), dq)
	if err != nil {
		return err
	}
	doc := deliveryListDocument{Data: make([]deliveryResource, len(page.Deliveries)), Links: listLinks{Self: r.URL.RequestURI()}}
	for i := range page.Deliveries {
		doc.Data[i] = deliveryOut(&page.Deliveries[i])
	}
	if page.Next != 0 {
		b, _ := json.Marshal(logCursor{Before: page.Next, Scope: scope})
		doc.Links.Next = jsonapi.NextLink(r.URL, base64.RawURLEncoding.EncodeToString(b))
	}
	return jsonapi.Write(w, http.StatusOK, doc)
}

// logCursor is the JSON inside a page[after] of a delivery log.
type logCursor struct {
	Before int64  `json:"b"`
	Scope  string `json:"q"`
}

// redeliverWebhookDelivery queues a delivery again: 202, with the delivery that is now
// pending.
func (s *Server) redeliverWebhookDelivery(w http.ResponseWriter, r *http.Request) error {
	wid, err := jsonapi.PathID(r.PathValue("webhook_id"), "webhook_id")
	if err != nil {
		return err
	}
	did, err := jsonapi.PathID(r.PathValue("delivery_id"), "delivery_id")
	if err != nil {
		return err
	}
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return err
	}
	d, err := s.store.Redeliver(r.Context(), wid, did, s.change(r))
	if err != nil {
		return err
	}
	return jsonapi.Write(w, http.StatusAccepted, deliveryDocument{Data: deliveryOut(d)})
}

// parseWebhook reads a Webhook resource object. On create (wantID == 0)
// id must be absent and url present; on update an id, if present, must
// equal wantID. Pointers are relative to the resource object.
func parseWebhook(m map[string]any, wantID int64) (licensor.WebhookPatch, error) {
	var errs licensor.Errors
	var p licensor.WebhookPatch
	res := jsonapi.NewObject(m, "", &errs)
	res.PrimaryType("Webhook")
	res.Ignore("links", "meta")
	if wantID == 0 {
		res.Forbid("id", "id is assigned by the server; leave it out")
	} else if s, ok := res.Str("id", 0); ok && *s != id(wantID) {
		res.Fail(licensor.CodeResourceMismatch, "id", "id %q does not match the webhook in the path (%d)", *s, wantID)
	}
	if a, ok := res.Object("attributes"); ok {
		p.URL, _ = a.Str("url", licensor.MaxWebhookURLLen)
		if v, present := a.Member("event_types"); present {
			a.Ignore("event_types") // read here: null is every type
			types := []licensor.EventType{}
			list, isList := v.([]any)
			switch {
			case v == nil: // every type
			case !isList:
				a.Fail(licensor.CodeInvalidAttribute, "event_types", "event_types must be an array of event types (empty for every type)")
			default:
				for _, item := range list {
					t, _ := item.(string)
					if !licensor.EventType(t).Valid() {
						a.Fail(licensor.CodeInvalidAttribute, "event_types", "unknown event type %v; one of %s", item, joinEventTypes())
						continue
					}
					types = append(types, licensor.EventType(t))
				}
			}
			p.EventTypes = &types
		}
		p.Description, _ = a.Str("description", licensor.MaxWebhookDescriptionLen)
		p.Secret, _ = a.Str("secret", 0)
		p.Paused, _ = a.Bool("paused")
		a.Forbid("paused_at", "paused_at is read-only; set paused")
		a.Forbid("created_at", "created_at is read-only")
		a.Forbid("updated_at", "updated_at is read-only")
		a.Done()
	}
	if wantID == 0 && p.URL == nil && !hasPointer(errs, "/attributes/url") {
		res.Fail(licensor.CodeMissingAttribute, "attributes/url", "url is required")
	}
	res.Done()
	if len(errs) > 0 {
		return p, errs
	}
	return p, nil
}
