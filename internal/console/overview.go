package console

import (
	"net/http"
	"slices"

	"github.com/licensor/licensor"
)

type overviewData struct {
	Licenses, Products int64
	CountedAt          int64 // when Licenses was counted
	Webhooks, Keys     int
	Paused             int // webhooks paused
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
	n, at, err := c.liveLicenses(r)
	if err != nil {
		return err
	}
	d.Licenses, d.CountedAt = n, at
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
	for _, h := range hooks {
		if h.Paused() {
			d.Paused++
		}
	}
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

// liveLicenses counts the live licenses, reusing a count younger than
// Options.CountEvery.
func (c *Console) liveLicenses(r *http.Request) (int64, int64, error) {
	c.countMu.Lock()
	defer c.countMu.Unlock()
	now := c.opts.Now()
	if c.opts.CountEvery > 0 && !c.countAt.IsZero() && now.Sub(c.countAt) < c.opts.CountEvery {
		return c.count, c.countAt.Unix(), nil
	}
	lp, err := c.store.FindLicenses(r.Context(), licensor.LicenseQuery{Limit: 1, Count: true, Now: now.Unix()})
	if err != nil {
		return 0, 0, err
	}
	c.count, c.countAt = *lp.Total, now
	return c.count, now.Unix(), nil
}
