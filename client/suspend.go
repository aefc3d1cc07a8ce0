package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/licensor/licensor"
)

// Suspension says which suspension an action sets or lifts, and why (see
// docs/api.md, "Suspension and reinstatement").
type Suspension struct {
	// Status is licensor.StatusSuspended (also when empty: the
	// operator's suspension) or licensor.StatusSuspendedAdmin (the
	// administrative one, which outranks it).
	Status licensor.Status
	// Reason is an optional note, recorded in the event of each change.
	Reason string
}

// SuspensionResult is what a suspend or reinstate action did to one
// license.
type SuspensionResult struct {
	License        licensor.License // after the action (effective status)
	Changed        bool             // false: it was already in the state asked for
	PreviousStatus licensor.Status  // the stored status before
}

// UserSuspensionResult is what a suspend or reinstate action did to the
// licenses of a user.
type UserSuspensionResult struct {
	Licenses  []licensor.License // every live license of the user, after, by id
	Changed   []int64            // changed by the action
	Unchanged []int64            // already in the state asked for
	Refused   []RefusedLicense   // the action does not apply to them
}

// RefusedLicense is a license a per-user action left alone, and why
// (licensor.CodeLicenseNotActive, licensor.CodeLicenseSuspendedAdmin).
type RefusedLicense struct {
	ID     int64
	Code   licensor.Code
	Detail string
}

type suspensionIn struct {
	Meta struct {
		Status licensor.Status `json:"status,omitempty"`
		Reason string          `json:"reason,omitempty"`
	} `json:"meta"`
}

func suspensionBody(s Suspension) suspensionIn {
	var b suspensionIn
	b.Meta.Status, b.Meta.Reason = s.Status, s.Reason
	return b
}

// SuspendLicense suspends one license (SuspendLicense): an ACTIVE license
// stops entitling its user, its period unchanged. Errors:
// licensor.CodeLicenseNotFound, licensor.CodeLicenseNotActive.
func (c *Client) SuspendLicense(ctx context.Context, id int64, s Suspension, opts ...RequestOption) (*SuspensionResult, error) {
	return c.suspendOne(ctx, "SuspendLicense", "suspend", id, s, opts)
}

// ReinstateLicense lifts the suspension of one license (ReinstateLicense).
// A plain reinstate (Status empty) does not lift SUSPENDEDADMIN:
// licensor.CodeLicenseSuspendedAdmin.
func (c *Client) ReinstateLicense(ctx context.Context, id int64, s Suspension, opts ...RequestOption) (*SuspensionResult, error) {
	return c.suspendOne(ctx, "ReinstateLicense", "reinstate", id, s, opts)
}

// SuspendUserLicenses suspends every live license of a user
// (SuspendLicensesByUser).
func (c *Client) SuspendUserLicenses(ctx context.Context, userID string, s Suspension, opts ...RequestOption) (*UserSuspensionResult, error) {
	return c.suspendUser(ctx, "SuspendLicensesByUser", "suspend", userID, s, opts)
}

// ReinstateUserLicenses lifts the suspensions of every live license of a
// user (ReinstateLicensesByUser).
func (c *Client) ReinstateUserLicenses(ctx context.Context, userID string, s Suspension, opts ...RequestOption) (*UserSuspensionResult, error) {
	return c.suspendUser(ctx, "ReinstateLicensesByUser", "reinstate", userID, s, opts)
}

func (c *Client) suspendOne(ctx context.Context, op, action string, id int64, s Suspension, opts []RequestOption) (*SuspensionResult, error) {
	var doc struct {
		Data resource[licensor.LicenseObject] `json:"data"`
		Meta struct {
			Changed        bool            `json:"changed"`
			PreviousStatus licensor.Status `json:"previous_status"`
		} `json:"meta"`
	}
	if _, err := c.do(ctx, call{op: op, method: http.MethodPost, path: "/licenses/" + strconv.FormatInt(id, 10) + "/" + action,
		body: suspensionBody(s), opts: opts}, &doc); err != nil {
		return nil, err
	}
	l, err := licenseFrom(&doc.Data.v)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	return &SuspensionResult{License: l, Changed: doc.Meta.Changed, PreviousStatus: doc.Meta.PreviousStatus}, nil
}

func (c *Client) suspendUser(ctx context.Context, op, action, userID string, s Suspension, opts []RequestOption) (*UserSuspensionResult, error) {
	var doc struct {
		Data []licensor.LicenseObject `json:"data"`
		Meta struct {
			Changed   []string `json:"changed"`
			Unchanged []string `json:"unchanged"`
			Refused   []struct {
				ID     string        `json:"id"`
				Code   licensor.Code `json:"code"`
				Detail string        `json:"detail"`
			} `json:"refused"`
		} `json:"meta"`
	}
	if _, err := c.do(ctx, call{op: op, method: http.MethodPost, path: "/users/" + url.PathEscape(userID) + "/licenses/" + action,
		body: suspensionBody(s), opts: opts}, &doc); err != nil {
		return nil, err
	}
	out := &UserSuspensionResult{}
	var err error
	if out.Licenses, err = licenses(doc.Data); err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	if out.Changed, err = parseIDs(doc.Meta.Changed); err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	if out.Unchanged, err = parseIDs(doc.Meta.Unchanged); err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	for _, r := range doc.Meta.Refused {
		id, err := parseID("license", r.ID)
		if err != nil {
			return nil, fmt.Errorf("client: %s: %w", op, err)
		}
		out.Refused = append(out.Refused, RefusedLicense{ID: id, Code: r.Code, Detail: r.Detail})
	}
	return out, nil
}
