package sqlstore

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
)

// The rows of the tables, read the same way on both engines. A nullable
// column is read into a pointer (both database/sql and pgx set it to nil
// for NULL), a text column of a named string type into a string first
// (pgx does not scan into named types of its own accord).

// LicenseColumns are the columns ScanLicense reads, in its order.
const LicenseColumns = `id, user_id, product_id, status, start_date, stop_date, order_id, recurring,
	expiry_date, price_amount, price_currency, purchase_timestamp, payment_method, created_at,
	renewal, renewed_from, renewed_by`

// ScanLicense reads a row of LicenseColumns.
func ScanLicense(s Scanner) (licensor.License, error) {
	var l licensor.License
	var status string
	var renewal *string
	err := s.Scan(&l.ID, &l.UserID, &l.ProductID, &status, &l.StartDate, &l.StopDate, &l.OrderID, &l.Recurring,
		&l.ExpiryDate, &l.PriceAmount, &l.PriceCurrency, &l.PurchaseTimestamp, &l.PaymentMethod, &l.CreatedAt,
		&renewal, &l.RenewedFrom, &l.RenewedBy)
	l.Status = licensor.Status(status)
	if renewal != nil {
		l.Renewal = licensor.RenewalState(*renewal)
	}
	return l, err
}

// LicenseValues are the values of a new license l's row for LicenseColumns
// without id and renewed_by (set only when a successor comes): user_id,
// product_id, status, ..., payment_method, created_at, renewal,
// renewed_from.
func LicenseValues(l *licensor.License) []any {
	return []any{l.UserID, l.ProductID, string(l.Status), l.StartDate, l.StopDate,
		l.OrderID, l.Recurring, l.ExpiryDate, l.PriceAmount, l.PriceCurrency, l.PurchaseTimestamp,
		l.PaymentMethod, l.CreatedAt, sqlfilter.NullIfEmpty(string(l.Renewal)), l.RenewedFrom}
}

// SortByID sorts licenses by id: the order of the events of the licenses
// a product's deletion takes with it.
func SortByID(ls []licensor.License) {
	slices.SortFunc(ls, func(a, b licensor.License) int { return cmp.Compare(a.ID, b.ID) })
}

// SortByStopDate sorts licenses (each with a stop date) by stop date, then
// id: the order of the expiry events.
func SortByStopDate(ls []licensor.License) {
	slices.SortFunc(ls, func(a, b licensor.License) int {
		if *a.StopDate != *b.StopDate {
			return cmp.Compare(*a.StopDate, *b.StopDate)
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// ProductColumns are the columns ScanProduct reads, in its order.
const ProductColumns = `id, title, description, type, is_premium, is_buyable, is_visible, recurring,
	price_amount, price_currency, license_period, channels, created_at, updated_at, version, renewal_mode`

// ScanProduct reads a row of ProductColumns.
func ScanProduct(s Scanner) (*licensor.Product, error) {
	var p licensor.Product
	var period, mode *string
	var channels string
	err := s.Scan(&p.ID, &p.Title, &p.Description, &p.Type, &p.IsPremium, &p.IsBuyable, &p.IsVisible, &p.Recurring,
		&p.PriceAmount, &p.PriceCurrency, &period, &channels, &p.CreatedAt, &p.UpdatedAt, &p.Version, &mode)
	if err != nil {
		return nil, err
	}
	if period != nil {
		p.LicensePeriod = *period
	}
	if mode != nil {
		p.RenewalMode = licensor.RenewalMode(*mode)
	}
	if p.Channels, err = licensor.ParseChannels(channels); err != nil {
		return nil, fmt.Errorf("product %d: %w", p.ID, err)
	}
	return &p, nil
}

// ProductValues are the values of p's row that a create and an update
// write: title, title_lower, description, type, is_premium, is_buyable,
// is_visible, recurring, price_amount, price_currency, license_period,
// channels. Nil channels become none (and are stored as such in p).
func ProductValues(p *licensor.Product) ([]any, error) {
	if p.Channels == nil {
		p.Channels = licensor.Channels{}
	}
	channels, err := licensor.FormatChannels(p.Channels)
	if err != nil {
		return nil, err
	}
	return []any{p.Title, strings.ToLower(p.Title), p.Description, p.Type,
		p.IsPremium, p.IsBuyable, p.IsVisible, p.Recurring, p.PriceAmount, p.PriceCurrency,
		sqlfilter.NullIfEmpty(p.LicensePeriod), channels}, nil
}

// APIKeyColumns are the columns ScanAPIKey reads, in its order.
const APIKeyColumns = `id, name, prefix, hash, scope, networks, expires_at, created_at, revoked_at, last_used_at`

// ScanAPIKey reads a row of APIKeyColumns.
func ScanAPIKey(s Scanner) (licensor.APIKey, error) {
	var k licensor.APIKey
	var networks, scope string
	err := s.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &scope, &networks, &k.ExpiresAt, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt)
	if err != nil {
		return k, err
	}
	k.Scope = licensor.Scope(scope)
	k.Networks, err = licensor.ParseNetworks(networks)
	if err != nil {
		return k, fmt.Errorf("API key %d: %w", k.ID, err)
	}
	return k, nil
}

// ConsoleSessionColumns are the columns ScanConsoleSession reads, in its
// order.
const ConsoleSessionColumns = `id, key_id, key_prefix, csrf, created_at, seen_at, expires_at`

// ScanConsoleSession reads a row of ConsoleSessionColumns.
func ScanConsoleSession(s Scanner) (*licensor.ConsoleSession, error) {
	var cs licensor.ConsoleSession
	if err := s.Scan(&cs.ID, &cs.KeyID, &cs.KeyPrefix, &cs.CSRF, &cs.CreatedAt, &cs.SeenAt, &cs.ExpiresAt); err != nil {
		return nil, err
	}
	return &cs, nil
}

// ConsoleSessionValues are the values of s's row for ConsoleSessionColumns.
func ConsoleSessionValues(s *licensor.ConsoleSession) []any {
	return []any{s.ID, s.KeyID, s.KeyPrefix, s.CSRF, s.CreatedAt, s.SeenAt, s.ExpiresAt}
}

// WebhookColumns are the columns ScanWebhook reads, in its order.
const WebhookColumns = `id, url, event_types, description, secret, created_at, updated_at, paused_at`

// ScanWebhook reads a row of WebhookColumns.
func ScanWebhook(s Scanner) (*licensor.Webhook, error) {
	var w licensor.Webhook
	var types string
	if err := s.Scan(&w.ID, &w.URL, &types, &w.Description, &w.Secret, &w.CreatedAt, &w.UpdatedAt, &w.PausedAt); err != nil {
		return nil, err
	}
	w.EventTypes = licensor.ParseEventTypes(types)
	return &w, nil
}

// DeliveryColumns are the columns ScanDelivery reads, in its order.
const DeliveryColumns = `id, webhook_id, event_seq, event_type, state, attempts, created_at, next_attempt_at,
	last_attempt_at, last_status, last_error, delivered_at`

// ScanDelivery reads a row of DeliveryColumns followed by the columns of
// extra.
func ScanDelivery(s Scanner, extra ...any) (licensor.Delivery, error) {
	var d licensor.Delivery
	var typ, state string
	var lastStatus *int64
	dest := append([]any{&d.ID, &d.WebhookID, &d.EventSeq, &typ, &state, &d.Attempts, &d.CreatedAt,
		&d.NextAttemptAt, &d.LastAttemptAt, &lastStatus, &d.LastError, &d.DeliveredAt}, extra...)
	if err := s.Scan(dest...); err != nil {
		return d, err
	}
	d.EventType, d.State = licensor.EventType(typ), licensor.DeliveryState(state)
	if lastStatus != nil {
		st := int(*lastStatus)
		d.LastStatus = &st
	}
	return d, nil
}

// OutcomeValues are the values CompleteDelivery writes for o: the state,
// the next attempt's time, the HTTP status (nil when none came back) and
// the time of delivery (nil when not delivered).
func OutcomeValues(o licensor.DeliveryOutcome) (state string, next int64, status, deliveredAt *int64) {
	st, next := licensor.DeliveryFailed, o.At
	switch {
	case o.Delivered:
		st, deliveredAt = licensor.DeliveryDelivered, &o.At
	case o.RetryAt > 0:
		st, next = licensor.DeliveryPending, o.RetryAt
	}
	if o.Status > 0 {
		s := int64(o.Status)
		status = &s
	}
	return string(st), next, status, deliveredAt
}

// ScanDue reads a row of a delivery's id, webhook_id, next_attempt_at.
func ScanDue(s Scanner) (licensor.DueDelivery, error) {
	var d licensor.DueDelivery
	err := s.Scan(&d.ID, &d.WebhookID, &d.NextAttemptAt)
	return d, err
}

// OrderingKey is the SQL expression of an event's ordering key: a webhook
// receives the events of one license (or, for product events, of one
// product) in commit order.
const OrderingKey = `CASE WHEN license_id IS NOT NULL THEN 'license:' || license_id ELSE 'product:' || product_id END`

// Hook is a webhook behind the feed, as DispatchEvents reads it (id,
// cursor, event_types).
type Hook struct {
	ID, Cursor int64
	Types      []licensor.EventType
}

// ScanHook reads a row of id, cursor, event_types.
func ScanHook(s Scanner) (Hook, error) {
	var h Hook
	var types string
	err := s.Scan(&h.ID, &h.Cursor, &types)
	h.Types = licensor.ParseEventTypes(types)
	return h, err
}

// EventColumns are the columns of an EventRow, in its order.
const EventColumns = `seq, type, time, actor, request_id, license_id, product_id, user_id, data`

// EventRow receives the columns of an event, alone (ScanEvent) or among
// others (Dest).
type EventRow struct {
	e         licensor.Event
	typ       string
	licenseID *int64
	userID    *string
	data      string
}

// Dest are the destinations of EventColumns.
func (r *EventRow) Dest() []any {
	return []any{&r.e.Seq, &r.typ, &r.e.Time, &r.e.Actor, &r.e.RequestID, &r.licenseID, &r.e.ProductID, &r.userID, &r.data}
}

// Event is the event read.
func (r *EventRow) Event() licensor.Event {
	e := r.e
	e.Type, e.Data = licensor.EventType(r.typ), []byte(r.data)
	if r.licenseID != nil {
		e.LicenseID = *r.licenseID
	}
	if r.userID != nil {
		e.UserID = *r.userID
	}
	return e
}

// ScanEvent reads a row of EventColumns.
func ScanEvent(s Scanner) (licensor.Event, error) {
	var r EventRow
	err := s.Scan(r.Dest()...)
	return r.Event(), err
}
