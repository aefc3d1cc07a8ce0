package licensor

import "fmt"

// Suspension and reinstatement.
//
// A license's status is the one thing about it that changes after it is
// created, and only the server changes it: the expirer moves it to EXPIRED,
// and the suspend and reinstate actions move it between ACTIVE and the two
// suspended statuses. Its id, user, product, period (start_date, stop_date,
// expiry_date) and purchase record never change: suspension does not
// extend the period, and a license reinstated after its stop_date reads as
// EXPIRED at once.
//
// The two suspended statuses are two holders of the suspension (Amino's
// docs: SUSPENDED "by the client through the BSS, or by support via the
// CMS"; SUSPENDEDADMIN "by an AminoTV script"):
//
//   - SUSPENDED, the operator's suspension: what a BSS sets when a
//     subscriber stops paying, and lifts when they pay. The default of both
//     actions.
//   - SUSPENDEDADMIN, the administrative suspension (the platform's own
//     scripts or administrators: fraud, abuse, legal holds). It outranks
//     SUSPENDED: suspending a SUSPENDED license with it escalates it,
//     suspending a SUSPENDEDADMIN license with SUSPENDED leaves it as it is,
//     and a plain reinstate does not lift it (CodeLicenseSuspendedAdmin):
//     only a reinstate that names SUSPENDEDADMIN does, and that one lifts
//     either suspension.
//
// Both actions are idempotent: asking for the state a license is already in
// changes nothing, records no event and succeeds.

// Suspension actions.
type SuspensionOp string

const (
	OpSuspend   SuspensionOp = "suspend"
	OpReinstate SuspensionOp = "reinstate"
)

// MaxSuspensionReasonLen bounds the reason of a suspension action, in
// characters.
const MaxSuspensionReasonLen = 1024

// Suspension is a suspend or reinstate action.
type Suspension struct {
	Op SuspensionOp
	// Status is the suspension set or lifted: StatusSuspended (also when
	// empty) or StatusSuspendedAdmin.
	Status Status
	// Reason is an optional note for the audit trail: it is recorded in
	// the event of each change (Event.Data's meta.reason).
	Reason string
}

// Level is the suspension the action sets or lifts.
func (a Suspension) Level() Status {
	if a.Status == "" {
		return StatusSuspended
	}
	return a.Status
}

// Validate checks the action's fields. Pointers are relative to the
// request document's meta.
func (a Suspension) Validate() error {
	if a.Op != OpSuspend && a.Op != OpReinstate {
		return fmt.Errorf("suspension: unknown op %q", a.Op)
	}
	if s := a.Level(); s != StatusSuspended && s != StatusSuspendedAdmin {
		return AttrError(CodeInvalidAttribute, "/status",
			"status must be %s or %s", StatusSuspended, StatusSuspendedAdmin)
	}
	if !ValidText(a.Reason) || TextLen(a.Reason) > MaxSuspensionReasonLen {
		return AttrError(CodeInvalidAttribute, "/reason", "reason must be text of at most %d characters", MaxSuspensionReasonLen)
	}
	return nil
}

// EventType is the type of the event of each change the action makes.
func (a Suspension) EventType() EventType {
	if a.Op == OpReinstate {
		return EventLicenseReinstated
	}
	return EventLicenseSuspended
}

// Apply decides what the action does to l at unix time now: the status l
// moves to and whether that is a change, or why the action does not apply
// to it (CodeLicenseNotActive, CodeLicenseSuspendedAdmin). It is the one
// rule both engines follow.
func (a Suspension) Apply(l *License, now int64) (Status, bool, *Error) {
	level := a.Level()
	switch a.Op {
	case OpSuspend:
		switch {
		case l.Status == level, l.Status == StatusSuspendedAdmin:
			return l.Status, false, nil // already suspended (as strongly)
		case l.Status == StatusSuspended: // level is SUSPENDEDADMIN
			return level, true, nil
		case l.EffectiveStatus(now) == StatusActive:
			return level, true, nil
		}
		return l.Status, false, &Error{Code: CodeLicenseNotActive,
			Detail: fmt.Sprintf("license %d is %s: only an ACTIVE license can be suspended", l.ID, l.EffectiveStatus(now))}
	case OpReinstate:
		switch {
		case l.Status == StatusSuspended:
			return StatusActive, true, nil
		case l.Status == StatusSuspendedAdmin && level == StatusSuspendedAdmin:
			return StatusActive, true, nil
		case l.Status == StatusSuspendedAdmin:
			return l.Status, false, &Error{Code: CodeLicenseSuspendedAdmin,
				Detail: fmt.Sprintf("license %d is under an administrative suspension (SUSPENDEDADMIN), which only a reinstate with status SUSPENDEDADMIN lifts", l.ID)}
		}
		return l.Status, false, nil // not suspended: nothing to lift
	}
	return l.Status, false, Errorf(CodeInvalidRequest, "unknown action %q", a.Op)
}

// SuspensionTarget selects the licenses of a suspension action: exactly
// one of its fields is set.
type SuspensionTarget struct {
	// IDs are licenses that must all be live and accept the action:
	// otherwise nothing changes and the call fails with ItemErrors
	// (CodeLicenseNotFound, CodeLicenseNotActive, CodeLicenseSuspendedAdmin).
	IDs []int64
	// UserID selects every live license of the user; those the action
	// does not apply to are left alone and reported (Outcome.Refused).
	UserID string
}

// SuspensionOutcome is what an action did to one license.
type SuspensionOutcome struct {
	License  License // as it is after the call, stored status
	Previous Status  // the stored status before
	Changed  bool
	// Refused says why the action left the license alone (a user
	// target only; nil otherwise).
	Refused *Error
}

// SuspensionMeta is the meta member of the license resource in the events
// of suspension actions: the status before and the action's reason.
type SuspensionMeta struct {
	PreviousStatus Status `json:"previous_status"`
	Reason         string `json:"reason,omitempty"`
}

// SuspensionEvent is the event of one change of a suspension action: the
// license as it is after the change (rendered at c.Time), with
// SuspensionMeta as the resource's meta.
func SuspensionEvent(a Suspension, o *SuspensionOutcome, c Change) Event {
	e := LicenseEvent(a.EventType(), &o.License, c)
	e.Data = mustMarshal(struct {
		LicenseObject
		Meta SuspensionMeta `json:"meta"`
	}{NewLicenseObject(&o.License, c.Time), SuspensionMeta{PreviousStatus: o.Previous, Reason: a.Reason}})
	return e
}

// ApplySuspension runs a over the licenses a store selected for target
// (for IDs, in the order of target.IDs, nil where an id is not live;
// for a user, in id order) and returns the outcomes or, for IDs, the
// ItemErrors that fail the call. Both engines call it inside their write
// transaction, then store the changed outcomes with their events. The
// result rendered for an idempotency claim is the outcomes
// (SuspendedLicenses).
func ApplySuspension(a Suspension, target SuspensionTarget, found []*License, now int64) ([]SuspensionOutcome, error) {
	out := make([]SuspensionOutcome, 0, len(found))
	var errs ItemErrors
	for i, l := range found {
		if l == nil {
			e := LicenseNotFound(target.IDs[i])
			e.Pointer = "/id"
			errs = append(errs, ItemError{Index: i, Err: e})
			continue
		}
		to, changed, refused := a.Apply(l, now)
		if refused != nil && target.UserID == "" {
			errs = append(errs, ItemError{Index: i, Err: refused})
			continue
		}
		o := SuspensionOutcome{License: *l, Previous: l.Status, Changed: changed, Refused: refused}
		o.License.Status = to
		out = append(out, o)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}
