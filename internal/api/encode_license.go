package api

import (
	"encoding/json"
	"strconv"
)

// The license documents are the API's most frequent responses (a list is up
// to 1000 of them), so they are written by hand rather than by reflection:
// the same bytes as json.Marshal (TestLicenseJSONIsMarshal holds the two
// together, field by field), in a fraction of the time. writeJSON uses
// appendJSON when a document has it.

// jsonAppender is a value that appends its own JSON.
type jsonAppender interface {
	appendJSON(b []byte) ([]byte, error)
}

func (d licenseDocument) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"data":`...)
	b = appendLicenseObject(b, &d.Data)
	return appendIncluded(b, d.Included)
}

func (d licenseListDocument) appendJSON(b []byte) ([]byte, error) {
	b = appendLicenseArray(append(b, `{"data":`...), d.Data)
	b, err := appendIncluded(b, d.Included)
	if err != nil {
		return b, err
	}
	b = b[:len(b)-1] // appendIncluded closed the object
	b = appendString(append(b, `,"links":{"self":`...), d.Links.Self)
	if d.Links.Next != "" {
		b = appendString(append(b, `,"next":`...), d.Links.Next)
	}
	b = append(b, `},"meta":{`...)
	if d.Meta.Total != nil {
		b = strconv.AppendInt(append(b, `"total":`...), *d.Meta.Total, 10)
	}
	return append(b, "}}"...), nil
}

func (d licenseBatchDocument) appendJSON(b []byte) ([]byte, error) {
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
	b = appendString(append(b, `{"id":`...), o.ID)
	b = appendString(append(b, `,"type":`...), o.Type)
	b = appendString(append(b, `,"attributes":{"status":`...), string(a.Status))
	b = strconv.AppendInt(append(b, `,"start_date":`...), a.StartDate, 10)
	b = appendIntPtr(append(b, `,"stop_date":`...), a.StopDate)
	b = appendStringPtr(append(b, `,"order_id":`...), a.OrderID)
	b = strconv.AppendBool(append(b, `,"renew_record":{"recurring":`...), a.RenewRecord.Recurring)
	b = appendIntPtr(append(b, `,"expiry_date":`...), a.RenewRecord.ExpiryDate)
	p := &a.PurchaseRecord
	b = appendIntPtr(append(b, `},"purchase_record":{"price_currency_amount":`...), p.PriceAmount)
	b = appendStringPtr(append(b, `,"price_currency_iso4217":`...), p.PriceCurrency)
	b = strconv.AppendInt(append(b, `,"purchase_timestamp":`...), p.PurchaseTimestamp, 10)
	b = appendStringPtr(append(b, `,"payment_method":`...), p.PaymentMethod)
	b = strconv.AppendInt(append(b, `},"created_at":`...), a.CreatedAt, 10)
	rel := &o.Relationships
	b = appendString(append(b, `},"relationships":{"user":{"data":{"type":`...), rel.User.Data.Type)
	b = appendString(append(b, `,"id":`...), rel.User.Data.ID)
	b = appendString(append(b, `}},"product":{"data":{"type":`...), rel.Product.Data.Type)
	b = appendString(append(b, `,"id":`...), rel.Product.Data.ID)
	b = appendString(append(b, `}}},"links":{"self":`...), o.Links.Self)
	return append(b, "}}"...)
}

func appendIntPtr(b []byte, n *int64) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *n, 10)
}

func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendString appends s as encoding/json writes it: as it is when it needs
// no escaping (printable ASCII but " \ < > &), else by json.Marshal itself
// (control characters, HTML characters, U+2028, invalid UTF-8: rare in
// ids, codes and paths).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
