package licensor

import (
	"encoding/json"
	"strconv"
)

// ManagementPath is the prefix of every route of the License Management API.
const ManagementPath = "/api/license/management/v4"

// The JSON:API resource objects of licenses and products, as the management
// API shows them. Both the API's responses and the events (Event.Data,
// rendered by the store in the transaction of the change) use these, so
// the two forms cannot drift apart. Field order follows the contract.
type (
	ResourceIdentifier struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	ToOne struct {
		Data ResourceIdentifier `json:"data"`
	}
	ToMany struct {
		Data []ResourceIdentifier `json:"data"`
	}
	SelfLink struct {
		Self string `json:"self"`
	}

	LicenseObject struct {
		ID            string               `json:"id"`
		Type          string               `json:"type"`
		Attributes    LicenseAttributes    `json:"attributes"`
		Relationships LicenseRelationships `json:"relationships"`
		Links         SelfLink             `json:"links"`
	}
	LicenseAttributes struct {
		Status         Status         `json:"status"`
		StartDate      int64          `json:"start_date"`
		StopDate       *int64         `json:"stop_date"`
		OrderID        *string        `json:"order_id"`
		RenewRecord    RenewRecord    `json:"renew_record"`
		PurchaseRecord PurchaseRecord `json:"purchase_record"`
		CreatedAt      int64          `json:"created_at"`
	}
	RenewRecord struct {
		Recurring  bool   `json:"recurring"`
		ExpiryDate *int64 `json:"expiry_date"`
		// Renewal is the renewal state (RenewalState); null when the
		// license is not renewable.
		Renewal *RenewalState `json:"renewal"`
	}
	PurchaseRecord struct {
		PriceAmount       *int64  `json:"price_currency_amount"`
		PriceCurrency     *string `json:"price_currency_iso4217"`
		PurchaseTimestamp int64   `json:"purchase_timestamp"`
		PaymentMethod     *string `json:"payment_method"`
	}
	LicenseRelationships struct {
		User    ToOne `json:"user"`
		Product ToOne `json:"product"`
		// The predecessor this license renews and the successor that
		// renews it, each present only when there is one.
		RenewedFrom *ToOne `json:"renewed_from,omitempty"`
		RenewedBy   *ToOne `json:"renewed_by,omitempty"`
	}

	ProductObject struct {
		ID            string               `json:"id"`
		Type          string               `json:"type"`
		Attributes    ProductAttributes    `json:"attributes"`
		Relationships ProductRelationships `json:"relationships"`
		Links         SelfLink             `json:"links"`
	}
	ProductAttributes struct {
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
		RenewalMode   *string `json:"renewal_mode"`
		CreatedAt     int64   `json:"created_at"`
		UpdatedAt     int64   `json:"updated_at"`
	}
	ProductRelationships struct {
		Live      ToMany `json:"live"`
		Catchup   ToMany `json:"catchup"`
		NPVR      ToMany `json:"npvr"`
		Startover ToMany `json:"startover"`
	}
)

// NewLicenseObject is the resource object of l as the management API shows it
// at unix time now (with its effective status).
func NewLicenseObject(l *License, now int64) LicenseObject {
	var renewal *RenewalState
	if l.Renewal != RenewalNone {
		renewal = &l.Renewal
	}
	license := func(id *int64) *ToOne {
		if id == nil {
			return nil
		}
		return &ToOne{ResourceIdentifier{Type: "License", ID: strconv.FormatInt(*id, 10)}}
	}
	return LicenseObject{
		ID:   strconv.FormatInt(l.ID, 10),
		Type: "License",
		Attributes: LicenseAttributes{
			Status:      l.EffectiveStatus(now),
			StartDate:   l.StartDate,
			StopDate:    l.StopDate,
			OrderID:     l.OrderID,
			RenewRecord: RenewRecord{Recurring: l.Recurring, ExpiryDate: l.ExpiryDate, Renewal: renewal},
			PurchaseRecord: PurchaseRecord{
				PriceAmount:       l.PriceAmount,
				PriceCurrency:     l.PriceCurrency,
				PurchaseTimestamp: l.PurchaseTimestamp,
				PaymentMethod:     l.PaymentMethod,
			},
			CreatedAt: l.CreatedAt,
		},
		Relationships: LicenseRelationships{
			User:        ToOne{ResourceIdentifier{Type: "User", ID: l.UserID}},
			Product:     ToOne{ResourceIdentifier{Type: "Product", ID: strconv.FormatInt(l.ProductID, 10)}},
			RenewedFrom: license(l.RenewedFrom),
			RenewedBy:   license(l.RenewedBy),
		},
		Links: SelfLink{Self: ManagementPath + "/licenses/" + strconv.FormatInt(l.ID, 10)},
	}
}

// NewProductObject is the resource object of p as the management API shows it.
func NewProductObject(p *Product) ProductObject {
	channels := func(s Service) ToMany {
		ids := p.Channels[s]
		out := ToMany{Data: make([]ResourceIdentifier, len(ids))}
		for i, c := range ids {
			out.Data[i] = ResourceIdentifier{Type: "Channel", ID: c}
		}
		return out
	}
	var period, mode *string
	if p.LicensePeriod != "" {
		period = &p.LicensePeriod
	}
	if p.RenewalMode != "" {
		m := string(p.RenewalMode)
		mode = &m
	}
	return ProductObject{
		ID:   strconv.FormatInt(p.ID, 10),
		Type: "Product",
		Attributes: ProductAttributes{
			Title:         p.Title,
			Description:   p.Description,
			Type:          p.Type,
			IsPremium:     p.IsPremium,
			IsBuyable:     p.IsBuyable,
			IsVisible:     p.IsVisible,
			Recurring:     p.Recurring,
			PriceAmount:   p.PriceAmount,
			PriceCurrency: p.PriceCurrency,
			LicensePeriod: period,
			RenewalMode:   mode,
			CreatedAt:     p.CreatedAt,
			UpdatedAt:     p.UpdatedAt,
		},
		Relationships: ProductRelationships{
			Live:      channels(ServiceLive),
			Catchup:   channels(ServiceCatchup),
			NPVR:      channels(ServiceNPVR),
			Startover: channels(ServiceStartover),
		},
		Links: SelfLink{Self: ManagementPath + "/products/" + strconv.FormatInt(p.ID, 10)},
	}
}

// LicenseResource is NewLicenseObject as JSON.
func LicenseResource(l *License, now int64) json.RawMessage {
	return mustMarshal(NewLicenseObject(l, now))
}

// ProductResource is NewProductObject as JSON.
func ProductResource(p *Product) json.RawMessage { return mustMarshal(NewProductObject(p)) }

// mustMarshal marshals a value made only of strings, numbers, bools and
// pointers to them, which cannot fail.
func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("licensor: marshal resource: " + err.Error())
	}
	return b
}
