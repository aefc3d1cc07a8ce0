package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
)

// held is one of a user's licenses with its product (nil when the product
// was deleted).
type held struct {
	licensor.License // Status is the effective status
	Product          *licensor.Product
}

// Reason is what a license does for one channel of one service.
type Reason string

// Reasons, in the words of the subscriber page.
const (
	ReasonGrants         Reason = "grants it"
	ReasonExpired        Reason = "expired"
	ReasonNotStarted     Reason = "not started"
	ReasonSuspended      Reason = "suspended"
	ReasonStatus         Reason = "status"
	ReasonNoChannel      Reason = "product without that channel"
	ReasonProductDeleted Reason = "product deleted"
)

// Verdict is one license's part in the answer for a channel.
type Verdict struct {
	License licensor.License
	Product *licensor.Product
	Reason  Reason
	Detail  string
}

// Grants reports whether this license grants the channel.
func (v Verdict) Grants() bool { return v.Reason == ReasonGrants }

// explain says, for each of a user's licenses, whether it grants channel on
// svc at now and, if not, what stops it. It restates the rule of
// licensor.EntitlementsAt one license at a time; the page's yes or no is
// EntitlementsAt's own answer.
func explain(ls []held, svc licensor.Service, channel string, now int64) []Verdict {
	out := make([]Verdict, 0, len(ls))
	for _, l := range ls {
		v := Verdict{License: l.License, Product: l.Product}
		switch {
		case l.Product == nil:
			v.Reason, v.Detail = ReasonProductDeleted, fmt.Sprintf("product %d no longer exists, so the license grants nothing", l.ProductID)
		case !slices.Contains(l.Product.Channels[svc], channel):
			v.Reason = ReasonNoChannel
			var others []string
			for _, s := range licensor.Services() {
				if s != svc && slices.Contains(l.Product.Channels[s], channel) {
					others = append(others, string(s))
				}
			}
			v.Detail = fmt.Sprintf("product %q does not list channel %q for %s", l.Product.Title, channel, svc)
			if len(others) > 0 {
				v.Detail += " (it does for " + strings.Join(others, ", ") + ")"
			}
		case l.Status == licensor.StatusSuspended || l.Status == licensor.StatusSuspendedAdmin:
			v.Reason, v.Detail = ReasonSuspended, "the license is "+string(l.Status)
		case l.Status == licensor.StatusExpired:
			v.Reason, v.Detail = ReasonExpired, "the license is EXPIRED"
			if l.StopDate != nil {
				v.Detail += "; it stopped at " + fmtTime(*l.StopDate)
			}
		case l.Status != licensor.StatusActive:
			v.Reason, v.Detail = ReasonStatus, "the license's status is "+string(l.Status)+": only ACTIVE licenses entitle"
		case l.StartDate > now:
			v.Reason, v.Detail = ReasonNotStarted, "the license starts at "+fmtTime(l.StartDate)
		case l.StopDate != nil && *l.StopDate <= now:
			v.Reason, v.Detail = ReasonExpired, "the license stopped at "+fmtTime(*l.StopDate)
		default:
			v.Reason, v.Detail = ReasonGrants, fmt.Sprintf("ACTIVE from %s until %s, and product %q lists the channel", fmtTime(l.StartDate), fmtPtime(l.StopDate), l.Product.Title)
		}
		out = append(out, v)
	}
	// The granting licenses first, then the near misses.
	slices.SortStableFunc(out, func(a, b Verdict) int {
		rank := func(v Verdict) int {
			switch v.Reason {
			case ReasonGrants:
				return 0
			case ReasonNoChannel, ReasonProductDeleted:
				return 2
			}
			return 1
		}
		return rank(a) - rank(b)
	})
	return out
}

type serviceChannels struct {
	Service  licensor.Service
	Channels []string
}

type subscriberData struct {
	User, Order  string
	Found        bool
	Licenses     []held
	Truncated    bool
	Products     []*licensor.Product // entitling now
	Services     []serviceChannels
	ValidUntil   *int64
	AllServices  []licensor.Service
	Service      string
	Channel      string
	Asked        bool
	Entitled     bool
	Verdicts     []Verdict
	Events       []licensor.Event
	EventsNext   int64
	EventsAfter  int64
	NotFoundText string
}

// subscriber is the page about one user: by user id or by order id.
func (c *Console) subscriber(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, now, q := r.Context(), c.now(), r.URL.Query()
	d := subscriberData{User: strings.TrimSpace(q.Get("user")), Order: strings.TrimSpace(q.Get("order")),
		AllServices: licensor.Services(), Service: q.Get("service"), Channel: strings.TrimSpace(q.Get("channel"))}
	if d.Service == "" {
		d.Service = string(licensor.ServiceLive)
	}
	render := func() error {
		c.render(w, r, http.StatusOK, "subscriber", s, page{Title: "Subscriber", Nav: "subscriber", Data: d})
		return nil
	}
	if d.User == "" && d.Order != "" {
		p, err := c.store.FindLicenses(ctx, licensor.LicenseQuery{Filter: licensor.LicenseFilter{OrderID: &d.Order}, Limit: 1, Now: now})
		if err != nil {
			return err
		}
		if len(p.Licenses) == 0 {
			d.NotFoundText = fmt.Sprintf("No live license has order id %q.", d.Order)
			return render()
		}
		d.User = p.Licenses[0].UserID
	}
	if d.User == "" {
		return render()
	}
	p, err := c.store.FindLicenses(ctx, licensor.LicenseQuery{Filter: licensor.LicenseFilter{UserID: &d.User}, Limit: licensor.MaxPageSize, Now: now})
	if err != nil {
		return err
	}
	d.Truncated = p.Next != nil
	products := map[int64]*licensor.Product{}
	product := func(id int64) (*licensor.Product, bool, error) {
		if p, ok := products[id]; ok {
			return p, p != nil, nil
		}
		p, err := c.store.FindProductByID(ctx, id)
		if licensor.ErrorCode(err) == licensor.CodeProductNotFound {
			products[id] = nil
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		products[id] = p
		return p, true, nil
	}
	var grants []licensor.Grant
	for _, l := range p.Licenses {
		pr, _, err := product(l.ProductID)
		if err != nil {
			return err
		}
		d.Licenses = append(d.Licenses, held{l, pr})
		if g, ok := licensor.GrantOf(&l); ok {
			grants = append(grants, g)
		}
	}
	d.Found = len(d.Licenses) > 0
	if !d.Found {
		d.NotFoundText = fmt.Sprintf("User %q has no live licenses.", d.User)
	}
	ents, err := licensor.EntitlementsAt(grants, now, product)
	if err != nil {
		return err
	}
	d.Products, d.ValidUntil = ents.Products, ents.ValidUntil
	for _, svc := range licensor.Services() {
		var chs []string
		for _, pr := range ents.Products {
			chs = append(chs, pr.Channels[svc]...)
		}
		slices.Sort(chs)
		d.Services = append(d.Services, serviceChannels{svc, slices.Compact(chs)})
	}
	if svc, ok := licensor.ParseService(d.Service); ok && d.Channel != "" && d.Found {
		d.Asked = true
		for _, sc := range d.Services {
			if sc.Service == svc {
				_, d.Entitled = slices.BinarySearch(sc.Channels, d.Channel)
			}
		}
		d.Verdicts = explain(d.Licenses, svc, d.Channel, now)
	}
	d.EventsAfter, _ = strconv.ParseInt(q.Get("after"), 10, 64)
	ep, err := c.store.Events(ctx, licensor.EventQuery{Filter: licensor.EventFilter{UserID: &d.User}, After: max(0, d.EventsAfter), Limit: 50})
	if err != nil && licensor.ErrorCode(err) != licensor.CodeInvalidCursor {
		return err
	}
	if err == nil {
		d.Events = ep.Events
		if len(ep.Events) == 50 {
			d.EventsNext = ep.Next
		}
	}
	return render()
}
