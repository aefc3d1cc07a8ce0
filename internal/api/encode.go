package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/licensor/licensor"
)

const mediaType = "application/vnd.api+json"

// Wire forms of the resources. Field order follows the contract.
type (
	identifier struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	toOne struct {
		Data identifier `json:"data"`
	}
	toMany struct {
		Data []identifier `json:"data"`
	}
	selfLink struct {
		Self string `json:"self"`
	}

	licenseResource struct {
		ID            string            `json:"id"`
		Type          string            `json:"type"`
		Attributes    licenseAttributes `json:"attributes"`
		Relationships licenseRelations  `json:"relationships"`
		Links         selfLink          `json:"links"`
	}
	licenseAttributes struct {
		Status         licensor.Status `json:"status"`
		StartDate      int64           `json:"start_date"`
		StopDate       *int64          `json:"stop_date"`
		OrderID        *string         `json:"order_id"`
		RenewRecord    renewRecord     `json:"renew_record"`
		PurchaseRecord purchaseRecord  `json:"purchase_record"`
		CreatedAt      int64           `json:"created_at"`
	}
	renewRecord struct {
		Recurring  bool   `json:"recurring"`
		ExpiryDate *int64 `json:"expiry_date"`
	}
	purchaseRecord struct {
		PriceAmount       *int64  `json:"price_currency_amount"`
		PriceCurrency     *string `json:"price_currency_iso4217"`
		PurchaseTimestamp int64   `json:"purchase_timestamp"`
		PaymentMethod     *string `json:"payment_method"`
	}
	licenseRelations struct {
		User    toOne `json:"user"`
		Product toOne `json:"product"`
	}

	productResource struct {
		ID            string            `json:"id"`
		Type          string            `json:"type"`
		Attributes    productAttributes `json:"attributes"`
		Relationships productRelations  `json:"relationships"`
		Links         selfLink          `json:"links"`
	}
	productAttributes struct {
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
	}
	productRelations struct {
		Live      toMany `json:"live"`
		Catchup   toMany `json:"catchup"`
		NPVR      toMany `json:"npvr"`
		Startover toMany `json:"startover"`
	}

	listLinks struct {
		Self string `json:"self"`
		Next string `json:"next,omitempty"`
	}
	listMeta struct {
		Total *int64 `json:"total,omitempty"`
	}
)

func id(n int64) string { return strconv.FormatInt(n, 10) }

// licenseOut is the wire form of l as seen at unix time now.
func licenseOut(l *licensor.License, now int64) licenseResource {
	return licenseResource{
		ID:   id(l.ID),
		Type: "License",
		Attributes: licenseAttributes{
			Status:      l.EffectiveStatus(now),
			StartDate:   l.StartDate,
			StopDate:    l.StopDate,
			OrderID:     l.OrderID,
			RenewRecord: renewRecord{Recurring: l.Recurring, ExpiryDate: l.ExpiryDate},
			PurchaseRecord: purchaseRecord{
				PriceAmount:       l.PriceAmount,
				PriceCurrency:     l.PriceCurrency,
				PurchaseTimestamp: l.PurchaseTimestamp,
				PaymentMethod:     l.PaymentMethod,
			},
			CreatedAt: l.CreatedAt,
		},
		Relationships: licenseRelations{
			User:    toOne{identifier{Type: "User", ID: l.UserID}},
			Product: toOne{identifier{Type: "Product", ID: id(l.ProductID)}},
		},
		Links: selfLink{Self: basePath + "/licenses/" + id(l.ID)},
	}
}

func productOut(p *licensor.Product) productResource {
	channels := func(s licensor.Service) toMany {
		ids := p.Channels[s]
		out := toMany{Data: make([]identifier, len(ids))}
		for i, c := range ids {
			out.Data[i] = identifier{Type: "Channel", ID: c}
		}
		return out
	}
	var period *string
	if p.LicensePeriod != "" {
		period = &p.LicensePeriod
	}
	return productResource{
		ID:   id(p.ID),
		Type: "Product",
		Attributes: productAttributes{
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
			CreatedAt:     p.CreatedAt,
			UpdatedAt:     p.UpdatedAt,
		},
		Relationships: productRelations{
			Live:      channels(licensor.ServiceLive),
			Catchup:   channels(licensor.ServiceCatchup),
			NPVR:      channels(licensor.ServiceNPVR),
			Startover: channels(licensor.ServiceStartover),
		},
		Links: selfLink{Self: basePath + "/products/" + id(p.ID)},
	}
}

// encode writes v as a JSON:API document with the given status.
func encode(w http.ResponseWriter, status int, v any) error {
	return writeJSON(w, status, mediaType, v)
}

// writeJSON writes v as JSON of the given media type.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b) // a client that went away is not the handler's failure
	return nil
}
