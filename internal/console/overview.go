package console

import (
	"net/http"
	"slices"

	"github.com/licensor/licensor"
)

type overviewData struct {
	Licenses, Products int64
	Webhooks, Keys     int
	Events             []licensor.Event
	Failing            []failingDelivery
	NextExpiry         *int64
	ExpiryLag          int64 // seconds an ACTIVE license is overdue for expiry; 0 when none is
}

type failingDelivery struct {
	Webhook licensor.Webhook
	licensor.Delivery
}

// overview: counts, the latest events, failing deliveries, the expiry lag.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, now := r.Context(), c.now()
	var d overviewData
	lp, err := c.store.FindLicenses(ctx, licensor.LicenseQuery{Limit: 1, Count: true, Now: now})
	if err != nil {
		return err
	}
	d.Licenses = *lp.Total
	pp, err := c.store.FindProducts(ctx, licensor.ProductQuery{Limit: 1, Count: true})
	if err != nil {
		return err
	}
	d.Products = *pp.Total
	keys, err := c.store.FindAPIKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Usable(now) == nil {
			d.Keys++
		}
	}
	hooks, err := c.store.FindWebhooks(ctx)
	if err != nil {
		return err
	}
	d.Webhooks = len(hooks)
	failed := licensor.DeliveryFailed
	for _, h := range hooks {
		dp, err := c.store.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: h.ID, State: &failed, Limit: 5})
		if err != nil {
			return err
		}
		for _, dl := range dp.Deliveries {
			d.Failing = append(d.Failing, failingDelivery{h, dl})
		}
	}
	if d.Events, err = c.recentEvents(r, 10); err != nil {
		return err
	}
	next, ok, err := c.store.NextExpiry(ctx)
	if err != nil {
		return err
	}
	if ok {
		d.NextExpiry = &next
		d.ExpiryLag = max(0, now-next)
	}
	c.render(w, r, http.StatusOK, "overview", s, page{Title: "Overview", Nav: "overview", Data: d})
	return nil
}

// recentEvents returns the last n events of the feed, newest first.
func (c *Console) recentEvents(r *http.Request, n int64) ([]licensor.Event, error) {
	head, err := c.store.EventHead(r.Context())
	if err != nil {
		return nil, err
	}
	p, err := c.store.Events(r.Context(), licensor.EventQuery{After: max(0, head-n), Limit: int(n)})
	if licensor.ErrorCode(err) == licensor.CodeInvalidCursor { // pruned up to there
		p, err = c.store.Events(r.Context(), licensor.EventQuery{Limit: int(n)})
	}
	if err != nil {
		return nil, err
	}
	slices.Reverse(p.Events)
	return p.Events, nil
}
