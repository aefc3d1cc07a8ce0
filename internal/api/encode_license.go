package api

import (
	"encoding/json"
	"strconv"

	"github.com/licensor/licensor/internal/jsonapi"
)

// The license documents are the API's most frequent responses (a list is up
// to 1000 of them), so they are written by hand rather than by reflection:
// the same bytes as json.Marshal (TestLicenseJSONIsMarshal holds the two
// together, field by field), in a fraction of the time. jsonapi.WriteJSON uses
// AppendJSON when a document has it.

func (d licenseDocument) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"data":`...)
	b = appendLicenseObject(b, &d.Data)
	return appendIncluded(b, d.Included)
}

func (d licenseListDocument) AppendJSON(b []byte) ([]byte, error) {
	b = appendLicenseArray(append(b, `{"data":`...), d.Data)
	b, err := appendIncluded(b, d.Included)
	if err != nil {
		return b, err
	}
	b = b[:len(b)-1] // appendIncluded closed the object
	b = jsonapi.AppendString(append(b, `,"links":{"self":`...), d.Links.Self)
	if d.Links.Next != "" {
		b = jsonapi.AppendString(append(b, `,"next":`...), d.Links.Next)
	}
	b = append(b, `},"meta":{`...)
	if d.Meta.Total != nil {
		b = strconv.AppendInt(append(b, `"total":`...), *d.Meta.Total, 10)
	}
	return append(b, "}}"...), nil
}

func (d licenseBatchDocument) AppendJSON(b []byte) ([]byte, error) {
	b = appendLicenseArray(append(b, `{"data":`...), d.Data)
	return append(b, '}'), nil
}

// appendIncluded appends ,"included":[...] when there are products (by
// json.Marshal: rare, and products are not the hot path), and the
// document's closing brace.
func appendIncluded(b []byte, included []productResource) ([]byte, error) {
	if len(included) > 0 {
		p, err := json.Marshal(included)
		if err != nil {
			return b, err
		}
		b = append(append(b, `,"included":`...), p...)
	}
	return append(b, '}'), nil
}

func appendLicenseArray(b []byte, ls []licenseResource) []byte {
	if ls == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLicenseObject(b, &ls[i])
	}
	return append(b, ']')
}

// appendLicenseObject appends json.Marshal(*o).
func appendLicenseObject(b []byte, o *licenseResource) []byte {
	a := &o.Attributes
	b = jsonapi.AppendString(append(b, `{"id":`...), o.ID)
	b = jsonapi.AppendString(append(b, `,"type":`...), o.Type)
	b = jsonapi.AppendString(append(b, `,"attributes":{"status":`...), string(a.Status))
	b = strconv.AppendInt(append(b, `,"start_date":`...), a.StartDate, 10)
	b = jsonapi.AppendIntPtr(append(b, `,"stop_date":`...), a.StopDate)
	b = jsonapi.AppendStringPtr(append(b, `,"order_id":`...), a.OrderID)
	b = strconv.AppendBool(append(b, `,"renew_record":{"recurring":`...), a.RenewRecord.Recurring)
	b = jsonapi.AppendIntPtr(append(b, `,"expiry_date":`...), a.RenewRecord.ExpiryDate)
	if r := a.RenewRecord.Renewal; r != nil {
		b = jsonapi.AppendString(append(b, `,"renewal":`...), string(*r))
	} else {
		b = append(b, `,"renewal":null`...)
	}
	p := &a.PurchaseRecord
	b = jsonapi.AppendIntPtr(append(b, `},"purchase_record":{"price_currency_amount":`...), p.PriceAmount)
	b = jsonapi.AppendStringPtr(append(b, `,"price_currency_iso4217":`...), p.PriceCurrency)
	b = strconv.AppendInt(append(b, `,"purchase_timestamp":`...), p.PurchaseTimestamp, 10)
	b = jsonapi.AppendStringPtr(append(b, `,"payment_method":`...), p.PaymentMethod)
	b = strconv.AppendInt(append(b, `},"created_at":`...), a.CreatedAt, 10)
	rel := &o.Relationships
	b = jsonapi.AppendString(append(b, `},"relationships":{"user":{"data":{"type":`...), rel.User.Data.Type)
	b = jsonapi.AppendString(append(b, `,"id":`...), rel.User.Data.ID)
	b = jsonapi.AppendString(append(b, `}},"product":{"data":{"type":`...), rel.Product.Data.Type)
	b = jsonapi.AppendString(append(b, `,"id":`...), rel.Product.Data.ID)
	b = append(b, "}}"...)
	if r := rel.RenewedFrom; r != nil {
		b = jsonapi.AppendString(append(b, `,"renewed_from":{"data":{"type":`...), r.Data.Type)
		b = jsonapi.AppendString(append(b, `,"id":`...), r.Data.ID)
		b = append(b, "}}"...)
	}
	if r := rel.RenewedBy; r != nil {
		b = jsonapi.AppendString(append(b, `,"renewed_by":{"data":{"type":`...), r.Data.Type)
		b = jsonapi.AppendString(append(b, `,"id":`...), r.Data.ID)
		b = append(b, "}}"...)
	}
	b = jsonapi.AppendString(append(b, `},"links":{"self":`...), o.Links.Self)
	return append(b, "}}"...)
}
