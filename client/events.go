package client

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/licensor/licensor"
)

// EventQuery selects and pages the change feed. Zero fields select every
// event and take the server's defaults.
type EventQuery struct {
	Types     []licensor.EventType // filter[type]: any of these
	LicenseID int64                // filter[license_id]
	ProductID int64                // filter[product_id]: the product's events and its licenses'
	UserID    string               // filter[user_id]

	// PageSize is the number of events per page, 1 to
	// licensor.MaxPageSize; 0 takes the server's default.
	PageSize int
	// After is an EventPage.Next: where a reader stopped. "" starts at
	// the oldest retained event. A cursor is only valid with the filters
	// it was made for.
	After string
}

func (q *EventQuery) values() url.Values {
	v := url.Values{}
	if len(q.Types) > 0 {
		v.Set("filter[type]", licensor.FormatEventTypes(q.Types))
	}
	if q.LicenseID != 0 {
		v.Set("filter[license_id]", strconv.FormatInt(q.LicenseID, 10))
	}
	if q.ProductID != 0 {
		v.Set("filter[product_id]", strconv.FormatInt(q.ProductID, 10))
	}
	if q.UserID != "" {
		v.Set("filter[user_id]", q.UserID)
	}
	setPage(v, "", q.PageSize, q.After, false)
	return v
}

// EventPage is one page of the change feed.
type EventPage struct {
	// Events are in commit order. Each Data is the resource as the
	// management API showed it at the change.
	Events []licensor.Event
	// Next is the cursor to continue from (for EventQuery.After), never
	// empty: the feed has no last page. Store it once Events are handled
	// to resume there later.
	Next string
}

// eventIn is an Event resource in a response.
type eventIn struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Attributes struct {
		EventType licensor.EventType `json:"event_type"`
		Time      int64              `json:"time"`
		Actor     string             `json:"actor"`
		RequestID string             `json:"request_id"`
		LicenseID *string            `json:"license_id"`
		ProductID string             `json:"product_id"`
		UserID    *string            `json:"user_id"`
		Data      json.RawMessage    `json:"data"`
	} `json:"attributes"`
}

type eventList struct {
	Data  []eventIn `json:"data"`
	Links listLinks `json:"links"`
	Meta  struct {
		Cursor string `json:"cursor"`
	} `json:"meta"`
}

func (w *eventIn) event() (licensor.Event, error) {
	if w.Type != "Event" {
		return licensor.Event{}, fmt.Errorf("resource type %q, want Event", w.Type)
	}
	seq, err := parseID("event", w.ID)
	if err != nil {
		return licensor.Event{}, err
	}
	a := &w.Attributes
	e := licensor.Event{Seq: seq, Type: a.EventType, Time: a.Time, Actor: a.Actor, RequestID: a.RequestID, Data: a.Data}
	if e.ProductID, err = parseID("product", a.ProductID); err != nil {
		return licensor.Event{}, fmt.Errorf("event %d: %w", seq, err)
	}
	if a.LicenseID != nil {
		if e.LicenseID, err = parseID("license", *a.LicenseID); err != nil {
			return licensor.Event{}, fmt.Errorf("event %d: %w", seq, err)
		}
	}
	if a.UserID != nil {
		e.UserID = *a.UserID
	}
	return e, nil
}

// Events reads one page of the change feed (GetEvents): the events
// committed after q.After, in commit order. A page with no events means
// the reader has caught up; ask again later with its Next.
func (c *Client) Events(ctx context.Context, q EventQuery, opts ...RequestOption) (*EventPage, error) {
	var doc eventList
	if _, err := c.do(ctx, call{op: "GetEvents", method: http.MethodGet, path: "/events", query: q.values(), opts: opts}, &doc); err != nil {
		return nil, err
	}
	page := &EventPage{Events: make([]licensor.Event, len(doc.Data)), Next: doc.Meta.Cursor}
	for i := range doc.Data {
		e, err := doc.Data[i].event()
		if err != nil {
			return nil, fmt.Errorf("client: GetEvents: %w", err)
		}
		page.Events[i] = e
	}
	if page.Next == "" {
		var err error
		if page.Next, err = nextCursor(doc.Links.Next); err != nil || page.Next == "" {
			return nil, fmt.Errorf("client: GetEvents: the response has no cursor to continue from")
		}
	}
	return page, nil
}

// AllEvents yields the events of the change feed from q.After on, up to
// the head of the feed: it stops at the first page with no events. It
// stops at the first error, which it yields. To resume later, or to keep
// reading as events come, use FollowEvents, which hands out the cursors.
func (c *Client) AllEvents(ctx context.Context, q EventQuery, opts ...RequestOption) iter.Seq2[licensor.Event, error] {
	return func(yield func(licensor.Event, error) bool) {
		for {
			page, err := c.Events(ctx, q, opts...)
			if err != nil {
				yield(licensor.Event{}, err)
				return
			}
			if len(page.Events) == 0 {
				return
			}
			for _, e := range page.Events {
				if !yield(e, nil) {
					return
				}
			}
			q.After = page.Next
		}
	}
}

// FollowEvents reads the change feed from q.After on without end: it
// yields every page that has events, and when the reader has caught up it
// waits poll (a second when 0) before asking again. Store each page's
// Next once its events are handled, to resume there after a restart. It
// ends when ctx is done (yielding ctx.Err()) or at the first other error,
// which it yields; a caller that wants to ride out outages retries from
// the last Next it stored.
func (c *Client) FollowEvents(ctx context.Context, q EventQuery, poll time.Duration, opts ...RequestOption) iter.Seq2[*EventPage, error] {
	if poll <= 0 {
		poll = time.Second
	}
	return func(yield func(*EventPage, error) bool) {
		for {
			page, err := c.Events(ctx, q, opts...)
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					err = ctxErr
				}
				yield(nil, err)
				return
			}
			q.After = page.Next
			if len(page.Events) > 0 {
				if !yield(page, nil) {
					return
				}
				continue
			}
			t := time.NewTimer(poll)
			select {
			case <-ctx.Done():
				t.Stop()
				yield(nil, ctx.Err())
				return
			case <-t.C:
			}
		}
	}
}
