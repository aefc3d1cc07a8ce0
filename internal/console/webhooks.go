package console

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/licensor/licensor"
)

type webhooksData struct {
	Webhooks   []licensor.Webhook
	EventTypes []licensor.EventType
	Secret     string // a new webhook's signing secret, shown in that one response
	SecretFor  int64
	Problem    string
	URL, Desc  string
	Types      []string
}

// Wants reports whether the create form had event type t ticked.
func (d *webhooksData) Wants(t licensor.EventType) bool { return slices.Contains(d.Types, string(t)) }

// webhooks lists the endpoints (write keys only, as the API's webhook
// routes: a subscription is a delivery target).
func (c *Console) webhooks(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.showWebhooks(w, r, s, http.StatusOK, webhooksData{})
}

func (c *Console) showWebhooks(w http.ResponseWriter, r *http.Request, s *session, status int, d webhooksData) error {
	hooks, err := c.store.FindWebhooks(r.Context())
	if err != nil {
		return err
	}
	d.Webhooks, d.EventTypes = hooks, licensor.EventTypes()
	c.render(w, r, status, "webhooks", s, page{Title: "Webhooks", Nav: "webhooks", Data: &d})
	return nil
}

// createWebhook subscribes an endpoint as POST /webhooks does, under the
// server's delivery policy; the answer shows the signing secret once.
func (c *Console) createWebhook(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := r.ParseForm(); err != nil {
		return licensor.Errorf(licensor.CodeInvalidRequest, "the form could not be read")
	}
	d := webhooksData{URL: strings.TrimSpace(r.PostFormValue("url")), Desc: strings.TrimSpace(r.PostFormValue("description")), Types: r.PostForm["event_types"]}
	hook := licensor.Webhook{URL: d.URL, Description: d.Desc, Secret: licensor.NewWebhookSecret(), EventTypes: []licensor.EventType{}}
	for _, t := range d.Types {
		hook.EventTypes = append(hook.EventTypes, licensor.EventType(t))
	}
	err := hook.Validate()
	if err == nil {
		err = c.checkWebhookURL(hook.URL)
	}
	if err == nil {
		err = c.store.CreateWebhook(r.Context(), &hook, c.change(s))
	}
	if err != nil {
		_, msg, ok := explainError(err)
		if !ok {
			return err
		}
		d.Problem = msg
		return c.showWebhooks(w, r, s, http.StatusBadRequest, d)
	}
	c.log.Info("console: webhook created", "webhook", hook.ID, "key", s.key.Name)
	return c.showWebhooks(w, r, s, http.StatusOK, webhooksData{Secret: hook.Secret, SecretFor: hook.ID})
}

func (c *Console) checkWebhookURL(raw string) error {
	if c.opts.CheckWebhookURL == nil {
		_, err := licensor.ParseWebhookURL(raw)
		return err
	}
	return c.opts.CheckWebhookURL(raw)
}

type webhookData struct {
	Webhook    *licensor.Webhook
	Failed     []licensor.Delivery
	Others     []licensor.Delivery // newest first, the failed ones left out
	MoreFailed bool
	MoreOthers bool
	Confirm    bool
	// Waiting counts the pending deliveries (up to deliveriesShown; more
	// when MoreWaiting).
	Waiting     int
	MoreWaiting bool
}

const deliveriesShown = 50

// webhook is an endpoint's page: its delivery log, failures first.
func (c *Console) webhook(w http.ResponseWriter, r *http.Request, s *session) error {
	d, err := c.loadWebhook(r)
	if err != nil {
		return err
	}
	d.Confirm = strings.HasSuffix(r.URL.Path, "/delete")
	c.render(w, r, http.StatusOK, "webhook", s, page{Title: fmt.Sprintf("Webhook %d", d.Webhook.ID), Nav: "webhooks", Data: d})
	return nil
}

func (c *Console) loadWebhook(r *http.Request) (*webhookData, error) {
	id, err := pathInt(r, "id")
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	hook, err := c.store.FindWebhookByID(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &webhookData{Webhook: hook}
	failed := licensor.DeliveryFailed
	fp, err := c.store.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: id, State: &failed, Limit: deliveriesShown})
	if err != nil {
		return nil, err
	}
	d.Failed, d.MoreFailed = fp.Deliveries, fp.Next != 0
	for _, st := range []licensor.DeliveryState{licensor.DeliveryPending, licensor.DeliveryDelivered} {
		op, err := c.store.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: id, State: &st, Limit: deliveriesShown})
		if err != nil {
			return nil, err
		}
		d.Others = append(d.Others, op.Deliveries...)
		d.MoreOthers = d.MoreOthers || op.Next != 0
		if st == licensor.DeliveryPending {
			d.Waiting, d.MoreWaiting = len(op.Deliveries), op.Next != 0
		}
	}
	slices.SortFunc(d.Others, func(a, b licensor.Delivery) int { return int(b.ID - a.ID) })
	if len(d.Others) > deliveriesShown {
		d.Others, d.MoreOthers = d.Others[:deliveriesShown], true
	}
	return d, nil
}

// redeliver queues a delivery again, as the API's redeliver does.
func (c *Console) redeliver(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	did, err := pathInt(r, "delivery")
	if err != nil {
		return err
	}
	if _, err := c.store.Redeliver(r.Context(), id, did, c.change(s)); err != nil {
		return err
	}
	c.log.Info("console: delivery queued again", "webhook", id, "delivery", did, "key", s.key.Name)
	redirect(w, r, fmt.Sprintf("/webhooks/%d?done=redelivered", id))
	return nil
}

// pauseWebhook pauses (…/pause) or resumes (…/resume) an endpoint, as
// PATCH with the paused attribute does: a paused webhook's deliveries are
// queued but not attempted. It goes back to the list when the form says
// so, else to the endpoint's page.
func (c *Console) pauseWebhook(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	pause := strings.HasSuffix(r.URL.Path, "/pause")
	if _, err := c.store.UpdateWebhook(r.Context(), id, licensor.WebhookPatch{Paused: &pause}, c.change(s)); err != nil {
		return err
	}
	done := map[bool]string{true: "paused", false: "resumed"}[pause]
	c.log.Info("console: webhook "+done, "webhook", id, "key", s.key.Name)
	if r.PostFormValue("back") == "list" {
		redirect(w, r, "/webhooks?done="+done)
		return nil
	}
	redirect(w, r, fmt.Sprintf("/webhooks/%d?done=%s", id, done))
	return nil
}

// deleteWebhook removes an endpoint and its delivery log.
func (c *Console) deleteWebhook(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	if err := c.store.DeleteWebhook(r.Context(), id, c.change(s)); err != nil {
		return err
	}
	c.log.Info("console: webhook deleted", "webhook", id, "key", s.key.Name)
	redirect(w, r, "/webhooks?done=deleted")
	return nil
}
