package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/licensor/licensor"
)

// The JSON:API wire forms of requests and responses.

type identifier struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type toOne struct {
	Data *identifier `json:"data"`
}

type toMany struct {
	Data []identifier `json:"data"`
}

// single is a document whose data is one resource. Requests always use the
// object form; responses are read in either form.
type single[T any] struct {
	Data T `json:"data"`
}

// many is a document whose data is a list.
type many[T any] struct {
	Data []T `json:"data"`
}

// resource is the primary data of a single-resource response: an object,
// or an array of exactly one.
type resource[T any] struct{ v T }

func (r *resource[T]) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '[' {
		var list []T
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
		if len(list) != 1 {
			return fmt.Errorf("data has %d resources, want 1", len(list))
		}
		r.v = list[0]
		return nil
	}
	return json.Unmarshal(b, &r.v)
}

type listLinks struct {
	Self string `json:"self"`
	Next string `json:"next"`
}

type listMeta struct {
	Total *int64 `json:"total"`
}

type licenseList struct {
	Data     []licensor.LicenseObject `json:"data"`
	Included []licensor.ProductObject `json:"included"`
	Links    listLinks                `json:"links"`
	Meta     listMeta                 `json:"meta"`
}

type productList struct {
	Data  []licensor.ProductObject `json:"data"`
	Links listLinks                `json:"links"`
	Meta  listMeta                 `json:"meta"`
}

type batchDeleteOut struct {
	Meta struct {
		Deleted []string `json:"deleted"`
		Missing []string `json:"missing"`
	} `json:"meta"`
}

// nextCursor extracts page[after] from a links.next URL ("" for none).
func nextCursor(next string) (string, error) {
	if next == "" {
		return "", nil
	}
	u, err := url.Parse(next)
	if err != nil {
		return "", fmt.Errorf("links.next: %w", err)
	}
	c := u.Query().Get("page[after]")
	if c == "" {
		return "", fmt.Errorf("links.next %q has no page[after]", next)
	}
	return c, nil
}

func parseID(kind, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s id %q is not a positive integer", kind, s)
	}
	return n, nil
}

func parseIDs(ss []string) ([]int64, error) {
	if ss == nil {
		return nil, nil
	}
	ids := make([]int64, len(ss))
	for i, s := range ss {
		id, err := parseID("license", s)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// ---- licenses

// licenseFrom converts the wire form, the root package's LicenseObject.
// Status is the effective status the server reported.
func licenseFrom(w *licensor.LicenseObject) (licensor.License, error) {
	if w.Type != "License" {
		return licensor.License{}, fmt.Errorf("resource type %q, want License", w.Type)
	}
	id, err := parseID("license", w.ID)
	if err != nil {
		return licensor.License{}, err
	}
	user, product := w.Relationships.User.Data, w.Relationships.Product.Data
	if user.ID == "" || product.ID == "" {
		return licensor.License{}, fmt.Errorf("license %d: relationships user and product are required", id)
	}
	productID, err := parseID("product", product.ID)
	if err != nil {
		return licensor.License{}, fmt.Errorf("license %d: %w", id, err)
	}
	a := &w.Attributes
	l := licensor.License{
		ID:                id,
		UserID:            user.ID,
		ProductID:         productID,
		Status:            a.Status,
		StartDate:         a.StartDate,
		StopDate:          a.StopDate,
		OrderID:           a.OrderID,
		Recurring:         a.RenewRecord.Recurring,
		ExpiryDate:        a.RenewRecord.ExpiryDate,
		PriceAmount:       a.PurchaseRecord.PriceAmount,
		PriceCurrency:     a.PurchaseRecord.PriceCurrency,
		PurchaseTimestamp: a.PurchaseRecord.PurchaseTimestamp,
		PaymentMethod:     a.PurchaseRecord.PaymentMethod,
		CreatedAt:         a.CreatedAt,
	}
	if r := a.RenewRecord.Renewal; r != nil {
		l.Renewal = *r
	}
	for _, link := range []struct {
		rel  *licensor.ToOne
		into **int64
	}{{w.Relationships.RenewedFrom, &l.RenewedFrom}, {w.Relationships.RenewedBy, &l.RenewedBy}} {
		if link.rel == nil {
			continue
		}
		other, err := parseID("license", link.rel.Data.ID)
		if err != nil {
			return licensor.License{}, fmt.Errorf("license %d: %w", id, err)
		}
		*link.into = &other
	}
	return l, nil
}

func licenses(ws []licensor.LicenseObject) ([]licensor.License, error) {
	out := make([]licensor.License, len(ws))
	for i := range ws {
		l, err := licenseFrom(&ws[i])
		if err != nil {
			return nil, err
		}
		out[i] = l
	}
	return out, nil
}

// licenseOut is a License resource in a create request: only the
// attributes the draft sets.
type licenseOut struct {
	Type          string          `json:"type"`
	Attributes    licenseAttrsOut `json:"attributes"`
	Relationships struct {
		User        toOne  `json:"user"`
		Product     toOne  `json:"product"`
		RenewedFrom *toOne `json:"renewed_from,omitempty"`
	} `json:"relationships"`
}

type licenseAttrsOut struct {
	Status         *licensor.Status `json:"status,omitempty"`
	StartDate      *int64           `json:"start_date,omitempty"`
	StopDate       *int64           `json:"stop_date,omitempty"`
	OrderID        *string          `json:"order_id,omitempty"`
	RenewRecord    *renewOut        `json:"renew_record,omitempty"`
	PurchaseRecord *purchaseOut     `json:"purchase_record,omitempty"`
}

type renewOut struct {
	Recurring  *bool  `json:"recurring,omitempty"`
	ExpiryDate *int64 `json:"expiry_date,omitempty"`
}

type purchaseOut struct {
	PriceAmount       *int64  `json:"price_currency_amount,omitempty"`
	PriceCurrency     *string `json:"price_currency_iso4217,omitempty"`
	PurchaseTimestamp *int64  `json:"purchase_timestamp,omitempty"`
	PaymentMethod     *string `json:"payment_method,omitempty"`
}

func draftOut(d *licensor.LicenseDraft) licenseOut {
	out := licenseOut{Type: "License"}
	out.Attributes = licenseAttrsOut{Status: d.Status, StartDate: d.StartDate, StopDate: d.StopDate, OrderID: d.OrderID}
	if d.Recurring != nil || d.ExpiryDate != nil {
		out.Attributes.RenewRecord = &renewOut{Recurring: d.Recurring, ExpiryDate: d.ExpiryDate}
	}
	if d.PriceAmount != nil || d.PriceCurrency != nil || d.PurchaseTimestamp != nil || d.PaymentMethod != nil {
		out.Attributes.PurchaseRecord = &purchaseOut{
			PriceAmount:       d.PriceAmount,
			PriceCurrency:     d.PriceCurrency,
			PurchaseTimestamp: d.PurchaseTimestamp,
			PaymentMethod:     d.PaymentMethod,
		}
	}
	out.Relationships.User.Data = &identifier{Type: "User", ID: d.UserID}
	out.Relationships.Product.Data = &identifier{Type: "Product", ID: strconv.FormatInt(d.ProductID, 10)}
	if d.RenewedFrom != nil {
		out.Relationships.RenewedFrom = &toOne{Data: &identifier{Type: "License", ID: strconv.FormatInt(*d.RenewedFrom, 10)}}
	}
	return out
}

// ---- products

// productFrom converts the wire form, the root package's ProductObject.
// Version stays zero: it is not on the wire (the ETag stands for it). A
// service whose relationship is absent (or null) is left out of Channels.
func productFrom(w *licensor.ProductObject) (licensor.Product, error) {
	if w.Type != "Product" {
		return licensor.Product{}, fmt.Errorf("resource type %q, want Product", w.Type)
	}
	id, err := parseID("product", w.ID)
	if err != nil {
		return licensor.Product{}, err
	}
	a := &w.Attributes
	p := licensor.Product{
		ID:            id,
		Title:         a.Title,
		Description:   a.Description,
		Type:          a.Type,
		IsPremium:     a.IsPremium,
		IsBuyable:     a.IsBuyable,
		IsVisible:     a.IsVisible,
		Recurring:     a.Recurring,
		PriceAmount:   a.PriceAmount,
		PriceCurrency: a.PriceCurrency,
		Channels:      licensor.Channels{},
		CreatedAt:     a.CreatedAt,
		UpdatedAt:     a.UpdatedAt,
	}
	if a.LicensePeriod != nil {
		p.LicensePeriod = *a.LicensePeriod
	}
	if a.RenewalMode != nil {
		p.RenewalMode = licensor.RenewalMode(*a.RenewalMode)
	}
	r := &w.Relationships
	for s, rel := range map[licensor.Service]licensor.ToMany{
		licensor.ServiceLive: r.Live, licensor.ServiceCatchup: r.Catchup,
		licensor.ServiceNPVR: r.NPVR, licensor.ServiceStartover: r.Startover,
	} {
		if rel.Data == nil {
			continue
		}
		p.Channels[s] = identifierIDs(rel.Data)
	}
	return p, nil
}

// identifierIDs are the ids of a list of resource identifiers (an empty,
// non-nil list for none).
func identifierIDs(ids []licensor.ResourceIdentifier) []string {
	out := make([]string, len(ids))
	for i, c := range ids {
		out[i] = c.ID
	}
	return out
}

func products(ws []licensor.ProductObject) ([]licensor.Product, error) {
	out := make([]licensor.Product, len(ws))
	for i := range ws {
		p, err := productFrom(&ws[i])
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// productOut is a Product resource in a create or update request.
type productOut struct {
	Type          string            `json:"type"`
	ID            string            `json:"id,omitempty"`
	Attributes    productAttrsOut   `json:"attributes"`
	Relationships map[string]toMany `json:"relationships,omitempty"`
}

type productAttrsOut struct {
	Title         *string           `json:"title,omitempty"`
	Description   *string           `json:"description,omitempty"`
	Type          *string           `json:"type,omitempty"`
	IsPremium     *bool             `json:"is_premium,omitempty"`
	IsBuyable     *bool             `json:"is_buyable,omitempty"`
	IsVisible     *bool             `json:"is_visible,omitempty"`
	Recurring     *bool             `json:"recurring,omitempty"`
	PriceAmount   *nullable[int64]  `json:"price_currency_amount,omitempty"`
	PriceCurrency *nullable[string] `json:"price_currency_iso4217,omitempty"`
	LicensePeriod *nullable[string] `json:"license_period,omitempty"`
	RenewalMode   *nullable[string] `json:"renewal_mode,omitempty"`
}

// nullable is a member that is sent even when its value is nil, as null.
// A nil *nullable is omitted.
type nullable[T any] struct{ v *T }

func (n nullable[T]) MarshalJSON() ([]byte, error) {
	if n.v == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*n.v)
}

func channelsOut(ch licensor.Channels) map[string]toMany {
	if len(ch) == 0 {
		return nil
	}
	out := make(map[string]toMany, len(ch))
	for s, ids := range ch {
		rel := toMany{Data: make([]identifier, len(ids))}
		for i, id := range ids {
			rel.Data[i] = identifier{Type: "Channel", ID: id}
		}
		out[string(s)] = rel
	}
	return out
}

// newProductOut is the create form of p: empty description and type are
// left to the server's defaults, nil prices and an empty license period
// are omitted, and only the services present in p.Channels are sent.
func newProductOut(p *licensor.Product) productOut {
	a := productAttrsOut{
		Title:     &p.Title,
		IsPremium: &p.IsPremium,
		IsBuyable: &p.IsBuyable,
		IsVisible: &p.IsVisible,
		Recurring: &p.Recurring,
	}
	if p.Description != "" {
		a.Description = &p.Description
	}
	if p.Type != "" {
		a.Type = &p.Type
	}
	if p.PriceAmount != nil {
		a.PriceAmount = &nullable[int64]{p.PriceAmount}
	}
	if p.PriceCurrency != nil {
		a.PriceCurrency = &nullable[string]{p.PriceCurrency}
	}
	if p.LicensePeriod != "" {
		a.LicensePeriod = &nullable[string]{&p.LicensePeriod}
	}
	if p.RenewalMode != "" {
		m := string(p.RenewalMode)
		a.RenewalMode = &nullable[string]{&m}
	}
	return productOut{Type: "Product", Attributes: a, Relationships: channelsOut(p.Channels)}
}

// patchOut is the update form of u: nil fields are omitted, cleared ones
// sent as null.
func patchOut(id int64, u *licensor.ProductPatch) productOut {
	a := productAttrsOut{
		Title:       u.Title,
		Description: u.Description,
		Type:        u.Type,
		IsPremium:   u.IsPremium,
		IsBuyable:   u.IsBuyable,
		IsVisible:   u.IsVisible,
		Recurring:   u.Recurring,
	}
	if u.PriceAmount != nil {
		a.PriceAmount = &nullable[int64]{*u.PriceAmount}
	}
	if u.PriceCurrency != nil {
		a.PriceCurrency = &nullable[string]{*u.PriceCurrency}
	}
	if u.LicensePeriod != nil {
		a.LicensePeriod = &nullable[string]{}
		if *u.LicensePeriod != "" {
			a.LicensePeriod.v = u.LicensePeriod
		}
	}
	if u.RenewalMode != nil {
		a.RenewalMode = &nullable[string]{}
		if *u.RenewalMode != "" {
			m := string(*u.RenewalMode)
			a.RenewalMode.v = &m
		}
	}
	return productOut{Type: "Product", ID: strconv.FormatInt(id, 10), Attributes: a, Relationships: channelsOut(u.Channels)}
}
