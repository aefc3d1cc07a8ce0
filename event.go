package licensor

import (
	"encoding/json"
	"slices"
	"strings"
)

// EventType names a kind of change. Event types are part of the public API:
// they appear in the change feed, in webhook messages and in subscriptions.
type EventType string

// The event types. Every change to a license or a product is recorded as
// one event, in the same transaction as the change.
const (
	EventLicenseCreated EventType = "license.created"
	EventLicenseDeleted EventType = "license.deleted" // also for each license of a cascading product delete
	EventLicenseExpired EventType = "license.expired" // an ACTIVE license passed its stop_date
	// A license was suspended (ACTIVE → SUSPENDED or SUSPENDEDADMIN, or
	// SUSPENDED → SUSPENDEDADMIN) or reinstated (→ ACTIVE); see Suspension.
	EventLicenseSuspended  EventType = "license.suspended"
	EventLicenseReinstated EventType = "license.reinstated"
	// Renewal (see RenewalState): a license was renewed by its successor
	// (the event is the predecessor's, with meta.successor; the successor
	// has its own license.created), its renewal is due in notify mode (the
	// BSS is to create the successor), or the BSS cancelled it.
	EventLicenseRenewed          EventType = "license.renewed"
	EventLicenseRenewalDue       EventType = "license.renewal_due"
	EventLicenseRenewalCancelled EventType = "license.renewal_cancelled"
	EventProductCreated          EventType = "product.created"
	EventProductUpdated          EventType = "product.updated"
	EventProductDeleted          EventType = "product.deleted"
)

var eventTypes = [...]EventType{
	EventLicenseCreated, EventLicenseDeleted, EventLicenseExpired,
	EventLicenseSuspended, EventLicenseReinstated,
	EventLicenseRenewed, EventLicenseRenewalDue, EventLicenseRenewalCancelled,
	EventProductCreated, EventProductUpdated, EventProductDeleted,
}

// EventTypes returns every event type (a new slice: the caller may change
// it).
func EventTypes() []EventType { return slices.Clone(eventTypes[:]) }

// Valid reports whether t is one of EventTypes.
func (t EventType) Valid() bool {
	for _, v := range eventTypes {
		if t == v {
			return true
		}
	}
	return false
}

// Event is one committed change, as the change feed and webhooks carry it.
type Event struct {
	// Seq is the event's position in commit order: 1, 2, 3, ... without
	// gaps. An event with a larger Seq committed after every event with a
	// smaller one, so a reader that has seen Seq n has seen everything
	// before it.
	Seq       int64
	Type      EventType
	Time      int64  // unix seconds: the Change's time
	Actor     string // name of the API key, or "system" (expiry, renewal)
	RequestID string // X-Request-Id of the request; RequestIDExpiry for expiries, RequestIDRenewal for the renewer's events
	LicenseID int64  // 0 for product events
	ProductID int64  // the product, or the license's product
	UserID    string // the license's user; "" for product events
	// Data is the resource as the management API shows it (a JSON:API
	// resource object; for deletions, as it was just before).
	Data json.RawMessage
}

// ActorSystem is the Actor of changes the server makes by itself.
const ActorSystem = "system"

// RequestIDExpiry is the RequestID of the license.expired events the server
// makes by itself: no request made them, and a consumer that correlates
// events with requests can tell them apart by this marker.
const RequestIDExpiry = "expiry"

// EventFilter selects events. Zero fields select everything.
type EventFilter struct {
	Types     []EventType
	LicenseID *int64
	ProductID *int64
	UserID    *string
}

// EventQuery is one page of the change feed.
type EventQuery struct {
	Filter EventFilter
	// After is the position the reader has reached (EventPage.Next of its
	// last page); 0 starts at the oldest retained event.
	After int64
	Limit int // 1..MaxPageSize; 0 means DefaultPageSize
}

// EventPage is one page of the change feed.
type EventPage struct {
	Events []Event // in commit order
	// Next is the position to continue from: the Seq of the last event
	// returned when the page is full, otherwise the last position
	// committed when the page was read (so that a filtered reader skips
	// what it has already scanned). It is never less than the query's After.
	Next int64
}

// LicenseEvents are the events of change typ to each of ls at c.
func LicenseEvents(typ EventType, ls []License, c Change) []Event {
	out := make([]Event, len(ls))
	for i := range ls {
		out[i] = LicenseEvent(typ, &ls[i], c)
	}
	return out
}

// FormatEventTypes is the text form in which stores keep a webhook's event
// types: a comma list, empty for every type.
func FormatEventTypes(ts []EventType) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = string(t)
	}
	return strings.Join(parts, ",")
}

// ParseEventTypes reads FormatEventTypes's form.
func ParseEventTypes(s string) []EventType {
	out := []EventType{}
	if s == "" {
		return out
	}
	for _, p := range strings.Split(s, ",") {
		out = append(out, EventType(p))
	}
	return out
}

// LicenseEvent is the event of change typ to license l at c. l is rendered
// with its effective status at c.Time.
func LicenseEvent(typ EventType, l *License, c Change) Event {
	return Event{
		Type: typ, Time: c.Time, Actor: c.Actor, RequestID: c.RequestID,
		LicenseID: l.ID, ProductID: l.ProductID, UserID: l.UserID,
		Data: LicenseResource(l, c.Time),
	}
}

// ProductEvent is the event of change typ to product p at c.
func ProductEvent(typ EventType, p *Product, c Change) Event {
	return Event{
		Type: typ, Time: c.Time, Actor: c.Actor, RequestID: c.RequestID,
		ProductID: p.ID, Data: ProductResource(p),
	}
}
