package legacy

import (
	"encoding/json"
	"strings"
)

// Kind is the type of a field's value as it was written.
type Kind int

// Kinds of field values. CSV fields are always KindString.
const (
	KindString Kind = iota
	KindNumber
	KindBool
	KindOther // a JSON object or array
)

// Field is one field of a legacy license as read.
type Field struct {
	// Text is the value: the content of a JSON string or a CSV field, or a
	// JSON number or boolean exactly as written ("1.0", "true").
	Text string
	Kind Kind
	// Set is false when the field is absent, JSON null, or an empty CSV
	// field.
	Set bool
	// Problem, when not "", is why Text is not what was written: a JSON
	// string with an escaped UTF-16 surrogate that has no partner
	// ("\ud800"), which JSON decoders replace by U+FFFD.
	Problem string
}

// Fields are the fields of a legacy license that matter to the import.
// Other members of a legacy license object are ignored.
type Fields struct {
	ID            Field // "id"
	Status        Field // "status"
	StartDate     Field // "startDate"
	StopDate      Field // "stopDate"
	PurchaseDate  Field // "purchaseDate"
	Price         Field // "price"
	Currency      Field // "currency"
	PaymentMethod Field // "paymentMethod"
	Recurring     Field // "recurring"
	ProductURL    Field // "productUrl"
	ProductID     Field // "productId" (CSV only): the legacy product id itself
}

// Record is one legacy license as read, before conversion.
type Record struct {
	// Source says where the record was read: "FILE:LINE" for CSV (the
	// line of the record), "FILE:LINE#I" for JSON (the line where the
	// record's document starts, and the record's 0-based index in the
	// document's licenses). FILE is "-" for standard input.
	Source string
	// Raw is the record as read, a JSON value, for reject reports: the
	// license object of a JSON document, an object of column → value for a
	// CSV record, or the text of a document that could not be read.
	Raw json.RawMessage
	// Email is the user's e-mail as found in the input ("" when the input
	// does not say).
	Email  string
	Fields Fields
	// Err is set when the record could not be read at all (a broken JSON
	// document or CSV line); it is then rejected without conversion.
	Err error
}

// byName returns the field filled by the member (or column) name, or nil
// for a name the import ignores.
func (f *Fields) byName(name string) *Field {
	switch name {
	case "id":
		return &f.ID
	case "status":
		return &f.Status
	case "startDate":
		return &f.StartDate
	case "stopDate":
		return &f.StopDate
	case "purchaseDate":
		return &f.PurchaseDate
	case "price":
		return &f.Price
	case "currency":
		return &f.Currency
	case "paymentMethod":
		return &f.PaymentMethod
	case "recurring":
		return &f.Recurring
	case "productUrl":
		return &f.ProductURL
	case "productId":
		return &f.ProductID
	}
	return nil
}

// fieldNames are the member and column names, in the order of the CSV
// documentation.
var fieldNames = []string{"email", "id", "status", "startDate", "stopDate", "purchaseDate",
	"price", "currency", "paymentMethod", "recurring", "productUrl", "productId"}

// canonicalName returns the field name matching name case-insensitively,
// or "".
func canonicalName(name string) string {
	for _, n := range fieldNames {
		if strings.EqualFold(n, name) {
			return n
		}
	}
	return ""
}

// rawText is a JSON string holding s, for Raw when the input was not JSON.
func rawText(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
