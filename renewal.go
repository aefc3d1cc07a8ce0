package licensor

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Recurring renewal.
//
// Licenses are immutable, so a renewal never extends one: a recurring
// license is renewed by its successor, a new license for the next period
// that starts where its predecessor stops. The successor names its
// predecessor (License.RenewedFrom, the renewed_from relationship) and the
// predecessor its successor (License.RenewedBy, renewed_by); each license
// has at most one live successor (a unique index), so however many
// instances race, a period is renewed once.
//
// Whether a license will be renewed is its renewal state
// (License.Renewal, renew_record.renewal), which, like its status, only the
// server changes:
//
//   - PENDING: a recurring ACTIVE license with a stop_date and an
//     expiry_date still ahead, at its creation. Nothing has happened yet.
//   - DUE: in notify mode, the license.renewal_due event was sent
//     (RenewalPass.Notice before expiry_date): the BSS is to create the
//     successor itself (LicenseDraft.RenewedFrom).
//   - RENEWED: its successor exists (license.renewed).
//   - CANCELLED: the BSS cancelled the renewal (license.renewal_cancelled);
//     the license keeps its period, and ends at its stop_date.
//   - LAPSED: at its expiry_date the license was not ACTIVE (suspended, say):
//     it is not renewed.
//   - "" (null on the wire): not renewable (not recurring, not ACTIVE at
//     creation, without a stop or expiry date, or created with its
//     expiry_date passed already).
//
// The renewal mode (RenewalMode) decides who makes the successor: the
// server at expiry_date (automatic), or the BSS after the server's notice
// (notify). The deployment chooses a default (licensor serve
// --renewal-mode) and each product may override it (Product.RenewalMode).

// RenewalState is where a license stands in its renewal; see above.
type RenewalState string

// The renewal states.
const (
	RenewalNone      RenewalState = ""
	RenewalPending   RenewalState = "PENDING"
	RenewalDue       RenewalState = "DUE"
	RenewalRenewed   RenewalState = "RENEWED"
	RenewalCancelled RenewalState = "CANCELLED"
	RenewalLapsed    RenewalState = "LAPSED"
)

// Open reports whether the renewal can still happen: a successor may be
// created, or the renewal cancelled.
func (s RenewalState) Open() bool { return s == RenewalPending || s == RenewalDue }

// RenewalStates returns every state but RenewalNone.
func RenewalStates() []RenewalState {
	return []RenewalState{RenewalPending, RenewalDue, RenewalRenewed, RenewalCancelled, RenewalLapsed}
}

// RenewalMode is who creates a successor.
type RenewalMode string

// The renewal modes. A product's mode "" is the deployment's.
const (
	RenewalAutomatic RenewalMode = "automatic" // the server, at expiry_date
	RenewalNotify    RenewalMode = "notify"    // the BSS, after license.renewal_due
)

// DefaultRenewalMode is the deployment's mode unless it chooses: notify,
// which creates nothing by itself (a deployment whose BSS already renews
// licenses keeps doing so, and is told when each is due).
const DefaultRenewalMode = RenewalNotify

// DefaultRenewalNotice is how long before expiry_date license.renewal_due is
// sent in notify mode.
const DefaultRenewalNotice = 72 * time.Hour

// Valid reports whether m is a mode (not "").
func (m RenewalMode) Valid() bool { return m == RenewalAutomatic || m == RenewalNotify }

// RenewalOrderIDPrefix starts the order id of every successor the server
// creates: "renewal:" and the predecessor's id. Clients cannot use it.
const RenewalOrderIDPrefix = "renewal:"

// RenewalOrderID is the order id of the successor the server makes of
// license id: deterministic, so the database's unique order ids refuse a
// second one.
func RenewalOrderID(id int64) string { return RenewalOrderIDPrefix + strconv.FormatInt(id, 10) }

// ReservedOrderID reports whether a client may not use order id s.
func ReservedOrderID(s string) bool { return strings.HasPrefix(s, RenewalOrderIDPrefix) }

// InitialRenewal is the renewal state of license l at its creation
// (LicenseDraft.Resolve also makes a license whose expiry_date has passed
// at its creation not renewable; a successor the server makes in a
// backlog is PENDING whatever its dates, so the catch-up goes on).
func InitialRenewal(l *License) RenewalState {
	if l.Recurring && l.Status == StatusActive && l.StopDate != nil && l.ExpiryDate != nil {
		return RenewalPending
	}
	return RenewalNone
}

// Renewable reports whether a license in status st can be renewed at its
// expiry_date: ACTIVE, or EXPIRED (by the expirer, the stored status of an
// ACTIVE license past its stop_date; a license created EXPIRED is never
// PENDING).
func Renewable(st Status) bool { return st == StatusActive || st == StatusExpired }

// Successor is the license that renews l, made by the server at unix time
// now from l's product p as it is then: the same user and product, from
// l's stop_date for p's license_period (l's own length when p has none
// now), at p's price, recurring, with the deterministic order id, the
// purchase at now and l's payment method. Its expiry_date keeps l's lead:
// as far before its stop_date as l's was before l's (so that a deployment
// that renews ahead, to leave the renewer time for a backlog, keeps doing
// so period after period), at its stop_date when l's was, and never before
// its start. Its ID is not set.
func Successor(l *License, p *Product, now int64) (License, error) {
	if l.StopDate == nil {
		return License{}, fmt.Errorf("renew license %d: it has no stop_date", l.ID)
	}
	start := *l.StopDate
	var stop int64
	if p.LicensePeriod != "" {
		period, err := ParsePeriod(p.LicensePeriod)
		if err != nil {
			return License{}, fmt.Errorf("renew license %d: product %d license_period: %w", l.ID, p.ID, err)
		}
		stop = period.AddTo(time.Unix(start, 0)).Unix()
	} else {
		stop = start + (*l.StopDate - l.StartDate)
	}
	if stop <= start {
		return License{}, fmt.Errorf("renew license %d: the period from %d is empty", l.ID, start)
	}
	expiry := stop
	if l.ExpiryDate != nil && *l.ExpiryDate < *l.StopDate {
		expiry = max(start, stop-(*l.StopDate-*l.ExpiryDate))
	}
	order := RenewalOrderID(l.ID)
	from := l.ID
	s := License{
		UserID:            l.UserID,
		ProductID:         l.ProductID,
		Status:            StatusActive,
		StartDate:         start,
		StopDate:          &stop,
		OrderID:           &order,
		Recurring:         true,
		ExpiryDate:        &expiry,
		PriceAmount:       p.PriceAmount,
		PriceCurrency:     p.PriceCurrency,
		PurchaseTimestamp: now,
		PaymentMethod:     l.PaymentMethod,
		CreatedAt:         now,
		RenewedFrom:       &from,
	}
	s.Renewal = InitialRenewal(&s)
	return s, nil
}

// CheckSuccessor checks a license a client creates as the successor of
// pred (LicenseDraft.RenewedFrom), resolved as l: pred's renewal must be
// open, and l must be for the same user and start at pred's stop_date.
// Pointers are relative to the resource object.
func CheckSuccessor(l *License, pred *License) *Error {
	switch {
	case !pred.Renewal.Open():
		return &Error{Code: CodeRenewalClosed, Pointer: "/relationships/renewed_from",
			Detail: fmt.Sprintf("license %d cannot be renewed: its renewal is %s", pred.ID, pred.Renewal.describe())}
	case l.UserID != pred.UserID:
		return &Error{Code: CodeInvalidRelationship, Pointer: "/relationships/renewed_from",
			Detail: fmt.Sprintf("license %d belongs to another user", pred.ID)}
	case l.StartDate != *pred.StopDate:
		return &Error{Code: CodeInvalidAttribute, Pointer: "/attributes/start_date",
			Detail: fmt.Sprintf("a successor starts where its predecessor stops (%d); leave start_date out", *pred.StopDate)}
	}
	return nil
}

func (s RenewalState) describe() string {
	if s == RenewalNone {
		return "not applicable (the license is not a recurring ACTIVE license with a stop_date)"
	}
	return string(s)
}

// RenewalClosed is the error of an action on a license whose renewal is
// not open (RenewalState.Open).
func RenewalClosed(l *License) *Error {
	return &Error{Code: CodeRenewalClosed,
		Detail: fmt.Sprintf("license %d: its renewal is %s", l.ID, l.Renewal.describe())}
}

// RenewalPass is one run of the renewer (Store.RenewLicenses).
type RenewalPass struct {
	// Mode is the deployment's renewal mode, for products without one.
	Mode RenewalMode
	// Notice is how long before expiry_date, in seconds, license.renewal_due
	// is sent in notify mode.
	Notice int64
	// Limit bounds the licenses the pass handles.
	Limit int
}

// Renewal is one renewal made by the server.
type Renewal struct {
	Predecessor License // as it is after the renewal (RENEWED, RenewedBy set)
	Successor   License
}

// RenewalResult is what a pass did.
type RenewalResult struct {
	Renewed []Renewal
	Due     []License // licenses whose license.renewal_due was sent
	Lapsed  []License
}

// Len is how many licenses the pass handled.
func (r *RenewalResult) Len() int { return len(r.Renewed) + len(r.Due) + len(r.Lapsed) }

// MaxRenewalReasonLen bounds the reason of a cancelled renewal, in
// characters.
const MaxRenewalReasonLen = MaxSuspensionReasonLen

// RenewalMeta is the meta member of the license resource in the events of
// renewals: the successor of a license.renewed event, the reason of a
// license.renewal_cancelled one.
type RenewalMeta struct {
	Successor string `json:"successor,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// RenewalEvent is the event typ (license.renewed, license.renewal_due,
// license.renewal_cancelled) of predecessor l at c, with meta.
func RenewalEvent(typ EventType, l *License, meta RenewalMeta, c Change) Event {
	e := LicenseEvent(typ, l, c)
	if meta == (RenewalMeta{}) {
		return e
	}
	e.Data = mustMarshal(struct {
		LicenseObject
		Meta RenewalMeta `json:"meta"`
	}{NewLicenseObject(l, c.Time), meta})
	return e
}

// RenewedEvents are the events of a renewal: license.created of the
// successor, then license.renewed of the predecessor.
func RenewedEvents(r *Renewal, c Change) []Event {
	return []Event{
		LicenseEvent(EventLicenseCreated, &r.Successor, c),
		RenewalEvent(EventLicenseRenewed, &r.Predecessor, RenewalMeta{Successor: strconv.FormatInt(r.Successor.ID, 10)}, c),
	}
}

// RequestIDRenewal is the RequestID of the events the renewer makes.
const RequestIDRenewal = "renewal"

// CheckSuccessorDrafts checks the drafts that name a predecessor
// (LicenseDraft.RenewedFrom) against the live predecessors a store read in
// its write transaction (preds, by id; a missing id is not live), and
// returns the drafts with each successor's start_date defaulted to its
// predecessor's stop_date (a new slice; drafts is not changed), and the
// ItemErrors of the failing items: CodeLicenseNotFound, CodeRenewalClosed,
// CodeDuplicateInBatch (two successors of one license), and
// CheckSuccessor's. A failing item's RenewedFrom is cleared in the drafts
// returned, which the store still creates (in the transaction it then
// rolls back) to report their other errors too (MergeItemErrors).
func CheckSuccessorDrafts(drafts []LicenseDraft, preds map[int64]*License) ([]LicenseDraft, ItemErrors) {
	out := make([]LicenseDraft, len(drafts))
	copy(out, drafts)
	var errs ItemErrors
	seen := map[int64]int{}
	for i := range out {
		d := &out[i]
		if d.RenewedFrom == nil {
			continue
		}
		id := *d.RenewedFrom
		if j, ok := seen[id]; ok {
			errs = append(errs, ItemError{Index: i, Err: &Error{Code: CodeDuplicateInBatch, Pointer: "/relationships/renewed_from",
				Detail: fmt.Sprintf("item %d already renews license %d", j, id)}})
			continue
		}
		seen[id] = i
		pred := preds[id]
		if pred == nil {
			e := LicenseNotFound(id)
			e.Pointer = "/relationships/renewed_from"
			errs = append(errs, ItemError{Index: i, Err: e})
			continue
		}
		if d.StartDate == nil && pred.StopDate != nil {
			start := *pred.StopDate
			d.StartDate = &start
		}
		start := int64(0)
		if d.StartDate != nil {
			start = *d.StartDate
		}
		if e := CheckSuccessor(&License{UserID: d.UserID, StartDate: start}, pred); e != nil {
			errs = append(errs, ItemError{Index: i, Err: e})
		}
	}
	for _, e := range errs {
		out[e.Index].RenewedFrom = nil
	}
	return out, errs
}

// MergeItemErrors returns the errors of a and of b (b may be nil, or an
// error that is not ItemErrors, which is returned as it is), one per item
// (a's first), by index.
func MergeItemErrors(a ItemErrors, b error) error {
	var items ItemErrors
	if b != nil && !errors.As(b, &items) {
		return b
	}
	seen := map[int]bool{}
	out := make(ItemErrors, 0, len(a)+len(items))
	for _, e := range append(slices.Clone(a), items...) {
		if !seen[e.Index] {
			seen[e.Index] = true
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(x, y ItemError) int { return x.Index - y.Index })
	return out
}

// Predecessors returns the ids the drafts renew (RenewedFrom), ascending,
// without repeats.
func Predecessors(drafts []LicenseDraft) []int64 {
	var ids []int64
	for _, d := range drafts {
		if d.RenewedFrom != nil && !slices.Contains(ids, *d.RenewedFrom) {
			ids = append(ids, *d.RenewedFrom)
		}
	}
	slices.Sort(ids)
	return ids
}

// Decide is what the pass does to pending license l of product p (nil
// when the product is gone) at unix time now, its mode being p's or the
// pass's: renew it (automatic, at expiry_date, if Renewable), send its
// notice (notify, Notice before expiry_date, if Renewable), lapse it (at
// expiry_date, not Renewable), or nothing yet.
func (r RenewalPass) Decide(l *License, p *Product, now int64) RenewalAction {
	if l.Renewal != RenewalPending || l.ExpiryDate == nil {
		return RenewNothing
	}
	due := *l.ExpiryDate <= now
	if p == nil {
		if due {
			return RenewLapse
		}
		return RenewNothing
	}
	ok := Renewable(l.Status)
	switch p.Mode(r.Mode) {
	case RenewalAutomatic:
		switch {
		case due && ok:
			return RenewNow
		case due:
			return RenewLapse
		}
	default:
		switch {
		case ok && *l.ExpiryDate <= now+r.Notice:
			return RenewNotify
		case due:
			return RenewLapse
		}
	}
	return RenewNothing
}

// RenewalAction is what a pass does to one license (RenewalPass.Decide).
type RenewalAction int

// The renewal actions.
const (
	RenewNothing RenewalAction = iota
	RenewNow                   // create the successor: RENEWED, license.created and license.renewed
	RenewNotify                // DUE, license.renewal_due
	RenewLapse                 // LAPSED, no event
)

// CancelRenewal decides a cancellation of l's renewal: CANCELLED from
// PENDING or DUE (a change), nothing for one already CANCELLED, and
// CodeRenewalClosed otherwise (renewed, lapsed, not renewable: a
// successor already made is deleted like any license).
func CancelRenewal(l *License) (RenewalState, bool, *Error) {
	switch {
	case l.Renewal == RenewalCancelled:
		return l.Renewal, false, nil
	case l.Renewal.Open():
		return RenewalCancelled, true, nil
	}
	return l.Renewal, false, RenewalClosed(l)
}

// RenewalCancellation is the outcome of Store.CancelRenewal, and the
// result given to the Render of its idempotency claim (Renders.Renewal).
type RenewalCancellation struct {
	License  License // as it is after the call
	Previous RenewalState
	Changed  bool
}

// SortByExpiry sorts licenses by expiry_date (missing last), then id.
func SortByExpiry(ls []License) {
	slices.SortFunc(ls, func(a, b License) int {
		x, y := int64(math.MaxInt64), int64(math.MaxInt64)
		if a.ExpiryDate != nil {
			x = *a.ExpiryDate
		}
		if b.ExpiryDate != nil {
			y = *b.ExpiryDate
		}
		if x != y {
			return cmp.Compare(x, y)
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
