package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/licensor/licensor"
)

// Renewal (see docs/api.md, "Recurring renewal"): a license's
// licensor.License.Renewal, RenewedFrom and RenewedBy come with every
// license read; CreateLicense with licensor.LicenseDraft.RenewedFrom makes a
// successor; CancelRenewal stops a renewal.

// CancelRenewalResult is what CancelRenewal did.
type CancelRenewalResult struct {
	License         licensor.License      // after the call; its Renewal is CANCELLED
	Changed         bool                  // false: it was cancelled already
	PreviousRenewal licensor.RenewalState // before the call
}

// CancelRenewal cancels the renewal of a license (CancelLicenseRenewal): it
// gets no successor and keeps its period. reason (optional) is recorded in
// the license.renewal_cancelled event. Errors: licensor.CodeLicenseNotFound,
// licensor.CodeRenewalClosed (renewed already, lapsed, or not renewable).
func (c *Client) CancelRenewal(ctx context.Context, id int64, reason string, opts ...RequestOption) (*CancelRenewalResult, error) {
	const op = "CancelLicenseRenewal"
	var body struct {
		Meta struct {
			Reason string `json:"reason,omitempty"`
		} `json:"meta"`
	}
	body.Meta.Reason = reason
	var doc struct {
		Data resource[licensor.LicenseObject] `json:"data"`
		Meta struct {
			Changed         bool                  `json:"changed"`
			PreviousRenewal licensor.RenewalState `json:"previous_renewal"`
		} `json:"meta"`
	}
	if _, err := c.do(ctx, call{op: op, method: http.MethodPost, path: "/licenses/" + strconv.FormatInt(id, 10) + "/cancel-renewal",
		body: body, opts: opts}, &doc); err != nil {
		return nil, err
	}
	l, err := licenseFrom(&doc.Data.v)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	return &CancelRenewalResult{License: l, Changed: doc.Meta.Changed, PreviousRenewal: doc.Meta.PreviousRenewal}, nil
}
