package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

// The change feed: GET /events, every committed change to a license or a
// product, in commit order (see licensor.Store.Events).
type (
	eventResource struct {
		ID         string          `json:"id"`
		Type       string          `json:"type"`
		Attributes eventAttributes `json:"attributes"`
	}
	eventAttributes struct {
		EventType licensor.EventType `json:"event_type"`
		Time      int64              `json:"time"`
		Actor     string             `json:"actor"`
		RequestID string             `json:"request_id"`
		LicenseID *string            `json:"license_id"`
		ProductID string             `json:"product_id"`
		UserID    *string            `json:"user_id"`
		Data      json.RawMessage    `json:"data"`
	}
	eventListDocument struct {
		Data  []eventResource `json:"data"`
		Links listLinks       `json:"links"`
		Meta  eventListMeta   `json:"meta"`
	}
	eventListMeta struct {
		// Cursor is page[after] of links.next: what a consumer stores to
		// resume where it stopped.
		Cursor string `json:"cursor"`
	}
)

func eventOut(e *licensor.Event) eventResource {
	out := eventResource{ID: id(e.Seq), Type: "Event", Attributes: eventAttributes{
		EventType: e.Type, Time: e.Time, Actor: e.Actor, RequestID: e.RequestID,
		ProductID: id(e.ProductID), Data: e.Data,
	}}
	if e.LicenseID != 0 {
		l := id(e.LicenseID)
		out.Attributes.LicenseID = &l
	}
	if e.UserID != "" {
		u := e.UserID
		out.Attributes.UserID = &u
	}
	return out
}

// getEvents serves one page of the change feed. links.next is always
// there: the feed has no last page, and a consumer polls links.next until
// it returns events.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) error {
	q := jsonapi.NewQuery(r.URL)
	var f licensor.EventFilter
	if v, ok := q.Get("filter[type]"); ok {
		for _, part := range strings.Split(v, ",") {
			t := licensor.EventType(strings.TrimSpace(part))
			if !t.Valid() {
				q.Fail(licensor.CodeInvalidParameter, "filter[type]", "unknown event type %q; one of %s", part, joinEventTypes())
				continue
			}
			f.Types = append(f.Types, t)
		}
	}
	f.LicenseID = q.Int("filter[license_id]", 1)
	f.ProductID = q.Int("filter[product_id]", 1)
	if u := q.Text("filter[user_id]", 64); u != nil {
		if !licensor.ValidUserID(*u) {
			q.Fail(licensor.CodeInvalidParameter, "filter[user_id]", "a user id is 1 to 64 characters of A-Z a-z 0-9 . _ : -")
		}
		f.UserID = u
	}
	scope := q.Scope(r.URL.Path)
	limit := q.PageSize()
	var after int64
	if v, ok := q.Get("page[after]"); ok {
		var c feedCursor
		if !decodeFeedCursor(v, &c) || c.After < 0 {
			q.Fail(licensor.CodeInvalidCursor, "page[after]", "page[after] is not a cursor from links.next")
		} else if c.Scope != scope {
			q.Fail(licensor.CodeInvalidCursor, "page[after]", "page[after] was made for other filters; start again without it")
		}
		after = c.After
	}
	if err := q.Done(); err != nil {
		return err
	}
	page, err := s.store.Events(r.Context(), licensor.EventQuery{Filter: f, After: after, Limit: limit})
	if err != nil {
		return err
	}
	doc := eventListDocument{Data: make([]eventResource, len(page.Events)), Links: listLinks{Self: r.URL.RequestURI()}}
	for i := range page.Events {
		doc.Data[i] = eventOut(&page.Events[i])
	}
	doc.Meta.Cursor = encodeFeedCursor(feedCursor{After: page.Next, Scope: scope})
	doc.Links.Next = jsonapi.NextLink(r.URL, doc.Meta.Cursor)
	return jsonapi.Write(w, http.StatusOK, doc)
}

// feedCursor is the JSON inside a page[after] of the change feed: the
// position reached, bound to the filters it was read with.
type feedCursor struct {
	After int64  `json:"p"`
	Scope string `json:"q"`
}

func encodeFeedCursor(c feedCursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeFeedCursor(s string, c *feedCursor) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 1024 {
		return false
	}
	return json.Unmarshal(b, c) == nil && c.Scope != ""
}

func joinEventTypes() string {
	parts := make([]string, len(licensor.EventTypes()))
	for i, t := range licensor.EventTypes() {
		parts[i] = string(t)
	}
	return strings.Join(parts, " ")
}
