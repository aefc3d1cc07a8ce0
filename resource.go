package licensor

import (
	"encoding/json"
	"strconv"
)

// ManagementPath is the prefix of every route of the License Management API.
const ManagementPath = "/api/license/management/v4"

// The JSON:API resource objects of licenses and products, as the management
// API shows them. Events carry them (Event.Data), rendered by the store in
// the transaction of the change, so this form lives here, beside the
// domain, where both the stores and the API can reach it. internal/api has
// its own encoder for responses; a test there checks that the two produce
// the same bytes.
type (
	resourceID struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	resourceToOne struct {
		Data resourceID `json:"data"`
	}
	resourceToMany struct {
		Data []resourceID `json:"data"`
	}
	resourceLinks struct {
		Self string `json:"self"`
	}

	licenseWire struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Attributes struct {
			Status      Status  `json:"status"`
			StartDate   int64   `json:"start_date"`
			StopDate    *int64  `json:"stop_date"`
			OrderID     *string `json:"order_id"`
			RenewRecord struct {
				Recurring  bool   `json:"recurring"`
				ExpiryDate *int64 `json:"expiry_date"`
			} `json:"renew_record"`
			PurchaseRecord struct {
				PriceAmount       *int64  `json:"price_currency_amount"`
				PriceCurrency     *string `json:"price_currency_iso4217"`
				PurchaseTimestamp int64   `json:"purchase_timestamp"`
				PaymentMethod     *string `json:"payment_method"`
			} `json:"purchase_record"`
			CreatedAt int64 `json:"created_at"`
		} `json:"attributes"`
		Relationships struct {
			User    resourceToOne `json:"user"`
			Product resourceToOne `json:"product"`
		} `json:"relationships"`
		Links resourceLinks `json:"links"`
	}

	productWire struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Attributes struct {
			Title         string  `json:"title"`
			Description   string  `json:"description"`
			Type          string  `json:"type"`
			IsPremium     bool    `json:"is_premium"`
			IsBuyable     bool    `json:"is_buyable"`
			IsVisible     bool    `json:"is_visible"`
			Recurring     bool    `json:"recurring"`
			PriceAmount   *int64  `json:"price_currency_amount"`
			PriceCurrency *string `json:"price_currency_iso4217"`
			LicensePeriod *string `json:"license_period"`
			CreatedAt     int64   `json:"created_at"`
			UpdatedAt     int64   `json:"updated_at"`
		} `json:"attributes"`
		Relationships struct {
			Live      resourceToMany `json:"live"`
			Catchup   resourceToMany `json:"catchup"`
			NPVR      resourceToMany `json:"npvr"`
			Startover resourceToMany `json:"startover"`
		} `json:"relationships"`
		Links resourceLinks `json:"links"`
	}
)

// LicenseResource is the JSON:API resource object of l as the management
// API shows it at unix time now (with its effective status).
func LicenseResource(l *License, now int64) json.RawMessage {
	var w licenseWire
	w.ID, w.Type = strconv.FormatInt(l.ID, 10), "License"
	a := &w.Attributes
	a.Status, a.StartDate, a.StopDate, a.OrderID = l.EffectiveStatus(now), l.StartDate, l.StopDate, l.OrderID
	a.RenewRecord.Recurring, a.RenewRecord.ExpiryDate = l.Recurring, l.ExpiryDate
	a.PurchaseRecord.PriceAmount, a.PurchaseRecord.PriceCurrency = l.PriceAmount, l.PriceCurrency
	a.PurchaseRecord.PurchaseTimestamp, a.PurchaseRecord.PaymentMethod = l.PurchaseTimestamp, l.PaymentMethod
	a.CreatedAt = l.CreatedAt
	w.Relationships.User.Data = resourceID{Type: "User", ID: l.UserID}
	w.Relationships.Product.Data = resourceID{Type: "Product", ID: strconv.FormatInt(l.ProductID, 10)}
	w.Links.Self = ManagementPath + "/licenses/" + w.ID
	return mustMarshal(w)
}

// ProductResource is the JSON:API resource object of p as the management
// API shows it.
func ProductResource(p *Product) json.RawMessage {
	var w productWire
	w.ID, w.Type = strconv.FormatInt(p.ID, 10), "Product"
	a := &w.Attributes
	a.Title, a.Description, a.Type = p.Title, p.Description, p.Type
	a.IsPremium, a.IsBuyable, a.IsVisible, a.Recurring = p.IsPremium, p.IsBuyable, p.IsVisible, p.Recurring
	a.PriceAmount, a.PriceCurrency = p.PriceAmount, p.PriceCurrency
	if p.LicensePeriod != "" {
		period := p.LicensePeriod
		a.LicensePeriod = &period
	}
	a.CreatedAt, a.UpdatedAt = p.CreatedAt, p.UpdatedAt
	channels := func(s Service) resourceToMany {
		ids := p.Channels[s]
		out := resourceToMany{Data: make([]resourceID, len(ids))}
		for i, c := range ids {
			out.Data[i] = resourceID{Type: "Channel", ID: c}
		}
		return out
	}
	r := &w.Relationships
	r.Live, r.Catchup = channels(ServiceLive), channels(ServiceCatchup)
	r.NPVR, r.Startover = channels(ServiceNPVR), channels(ServiceStartover)
	w.Links.Self = ManagementPath + "/products/" + w.ID
	return mustMarshal(w)
}

// mustMarshal marshals a value made only of strings, numbers, bools and
// pointers to them, which cannot fail.
func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("licensor: marshal resource: " + err.Error())
	}
	return b
}
