package licensor

import (
	"fmt"
	"slices"
	"time"
)

// Status is the state of a license. Only StatusActive, inside the license's
// interval, entitles its user to anything.
type Status string

// The license statuses of the Amino v4 API.
const (
	StatusProcessing     Status = "PROCESSING"
	StatusCheckInvalid   Status = "CHECK_INVALID"
	StatusOrderError     Status = "ORDER_ERROR"
	StatusActive         Status = "ACTIVE"
	StatusExpired        Status = "EXPIRED"
	StatusSuspended      Status = "SUSPENDED"
	StatusSuspendedAdmin Status = "SUSPENDEDADMIN"
)

var statuses = [...]Status{
	StatusProcessing, StatusCheckInvalid, StatusOrderError, StatusActive,
	StatusExpired, StatusSuspended, StatusSuspendedAdmin,
}

// Statuses returns every valid status, in the order of the contract (a
// new slice: the caller may change it).
func Statuses() []Status { return slices.Clone(statuses[:]) }

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool {
	for _, v := range statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Limits on license attributes.
const (
	MaxOrderIDLen       = 128
	MaxPaymentMethodLen = 64
)

// License is one user's right to one product for a period. Times are unix
// seconds (UTC); the interval is half-open: [StartDate, StopDate).
type License struct {
	ID        int64
	UserID    string
	ProductID int64

	// Status is the stored status. Use EffectiveStatus for what clients see.
	Status    Status
	StartDate int64
	StopDate  *int64 // nil: never ends
	OrderID   *string

	Recurring  bool   // renew_record.recurring
	ExpiryDate *int64 // renew_record.expiry_date

	PriceAmount       *int64  // purchase_record.price_currency_amount, minor units
	PriceCurrency     *string // purchase_record.price_currency_iso4217
	PurchaseTimestamp int64   // purchase_record.purchase_timestamp
	PaymentMethod     *string // purchase_record.payment_method

	CreatedAt int64

	// Renewal is where the license stands in its renewal (see
	// RenewalState); only the server changes it.
	Renewal RenewalState
	// RenewedFrom is the predecessor this license renews; nil for a
	// first license.
	RenewedFrom *int64
	// RenewedBy is the successor that renews this license (it may have
	// been deleted since); nil until then.
	RenewedBy *int64
}

// EffectiveStatus is the status every read reports at unix time now: an
// ACTIVE license whose stop date has passed reads as EXPIRED.
func (l *License) EffectiveStatus(now int64) Status {
	if l.Status == StatusActive && l.StopDate != nil && *l.StopDate <= now {
		return StatusExpired
	}
	return l.Status
}

// LicenseDraft is a request to create a license. Nil fields were omitted by
// the client and take their defaults in Resolve.
type LicenseDraft struct {
	UserID    string
	ProductID int64

	Status            *Status
	StartDate         *int64
	StopDate          *int64
	OrderID           *string
	Recurring         *bool
	ExpiryDate        *int64
	PriceAmount       *int64
	PriceCurrency     *string
	PurchaseTimestamp *int64
	PaymentMethod     *string
	// RenewedFrom makes the license the successor of that live license,
	// whose renewal must be open (RenewalState.Open): the license then
	// starts at its stop_date (start_date defaults to it), for the same
	// user. The store sets StartDate from the predecessor before Resolve.
	RenewedFrom *int64
}

// Resolve applies the defaults of the contract to d, taking them from its
// product p, and checks the rules that span attributes. now is unix seconds.
// Pointers in returned errors are relative to the resource object.
func (d *LicenseDraft) Resolve(p *Product, now int64) (License, error) {
	l := License{
		UserID:            d.UserID,
		ProductID:         p.ID,
		Status:            StatusActive,
		StartDate:         now,
		OrderID:           d.OrderID,
		Recurring:         p.Recurring,
		PurchaseTimestamp: now,
		PaymentMethod:     d.PaymentMethod,
		PriceAmount:       p.PriceAmount,
		PriceCurrency:     p.PriceCurrency,
		RenewedFrom:       d.RenewedFrom,
	}
	if d.OrderID != nil && ReservedOrderID(*d.OrderID) {
		return License{}, AttrError(CodeInvalidAttribute, "/attributes/order_id",
			"order ids starting with %q are the server's own (the successors it creates)", RenewalOrderIDPrefix)
	}
	if d.Status != nil {
		l.Status = *d.Status
	}
	if d.StartDate != nil {
		l.StartDate = *d.StartDate
	}
	switch {
	case d.StopDate != nil:
		l.StopDate = d.StopDate
	case p.LicensePeriod != "":
		period, err := ParsePeriod(p.LicensePeriod)
		if err != nil {
			return License{}, fmt.Errorf("product %d license_period: %w", p.ID, err)
		}
		stop := period.AddTo(time.Unix(l.StartDate, 0)).Unix()
		l.StopDate = &stop
	}
	if l.StopDate != nil && *l.StopDate <= l.StartDate {
		if d.StopDate != nil {
			return License{}, AttrError(CodeInvalidAttribute, "/attributes/stop_date",
				"stop_date (%d) must be after start_date (%d)", *l.StopDate, l.StartDate)
		}
		return License{}, AttrError(CodeInvalidAttribute, "/attributes/start_date",
			"start_date (%d) leaves no time before the stop date from the product's license_period", l.StartDate)
	}
	if d.Recurring != nil {
		l.Recurring = *d.Recurring
	}
	l.ExpiryDate = l.StopDate
	if d.ExpiryDate != nil {
		l.ExpiryDate = d.ExpiryDate
	}
	if d.PriceAmount != nil {
		l.PriceAmount = d.PriceAmount
	}
	if d.PriceCurrency != nil {
		l.PriceCurrency = d.PriceCurrency
	}
	if d.PurchaseTimestamp != nil {
		l.PurchaseTimestamp = *d.PurchaseTimestamp
	}
	if l.PriceAmount != nil && l.PriceCurrency == nil {
		return License{}, AttrError(CodeMissingAttribute, "/attributes/purchase_record/price_currency_iso4217",
			"a price needs a currency, and the product has none")
	}
	if l.PriceCurrency != nil && l.PriceAmount == nil {
		return License{}, AttrError(CodeMissingAttribute, "/attributes/purchase_record/price_currency_amount",
			"a currency needs a price amount, and the product has none")
	}
	// A license created with its expiry_date passed already (imported
	// history, say) is never renewed: the periods that ended before it
	// existed are not the server's to make.
	if l.Renewal = InitialRenewal(&l); l.ExpiryDate != nil && *l.ExpiryDate <= now {
		l.Renewal = RenewalNone
	}
	return l, nil
}

// ValidUserID reports whether id is a well-formed user id: 1 to 64
// characters of A-Z a-z 0-9 . _ : - (checked without a regular
// expression: it runs on every entitlement request).
func ValidUserID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}
