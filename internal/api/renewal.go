package api

import (
	"net/http"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

// Renewal (licensor.RenewalState): a BSS stops a license's renewal before
// it happens, keeping the license as it is. The request body is optional:
// {"meta": {"reason": "..."}}.

type (
	cancelRenewalDocument struct {
		Data licenseResource   `json:"data"`
		Meta cancelRenewalMeta `json:"meta"`
	}
	cancelRenewalMeta struct {
		Changed         bool                  `json:"changed"`
		PreviousRenewal licensor.RenewalState `json:"previous_renewal"`
	}
)

// cancelLicenseRenewal serves CancelLicenseRenewal: 200 with the license
// (renew_record.renewal CANCELLED) and whether it changed; 404, or 409
// RENEWAL_CLOSED when the renewal already happened, lapsed or never
// applied.
func (s *Server) cancelLicenseRenewal(w http.ResponseWriter, r *http.Request) error {
	id, err := jsonapi.PathID(r.PathValue("license_id"), "license_id")
	if err != nil {
		return err
	}
	reason, err := readCancelRenewal(r)
	if err != nil {
		return err
	}
	now := s.unix()
	rend := func(o *licensor.RenewalCancellation) (licensor.StoredResponse, error) {
		return jsonapi.Response(http.StatusOK, cancelRenewalDocument{
			Data: licenseOut(&o.License, now),
			Meta: cancelRenewalMeta{Changed: o.Changed, PreviousRenewal: o.Previous},
		})
	}
	out, err := s.store.CancelRenewal(r.Context(), id, reason, s.writeChange(r, licensor.Renders{Renewal: rend}))
	if err != nil {
		return err
	}
	return respond(w, rend, &out)
}

// readCancelRenewal reads the optional body of CancelLicenseRenewal: the
// reason recorded in the event.
func readCancelRenewal(r *http.Request) (string, error) {
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return "", err
	}
	body, err := jsonapi.ReadBody(r)
	if err != nil {
		return "", jsonapi.BodyReadError(err)
	}
	if len(body) == 0 {
		return "", nil
	}
	if err := jsonapi.CheckMediaType(r.Header.Get("Content-Type")); err != nil {
		return "", err
	}
	doc, err := jsonapi.ParseDocument(body, jsonapi.Limits{})
	if err != nil {
		return "", err
	}
	var errs licensor.Errors
	reason := ""
	top := jsonapi.NewObject(doc, "", &errs)
	top.Ignore("jsonapi")
	if meta, ok := top.Object("meta"); ok {
		if v, ok := meta.Str("reason", licensor.MaxRenewalReasonLen); ok {
			reason = *v
		}
		meta.Done()
	}
	top.Done()
	if len(errs) > 0 {
		return "", errs
	}
	if !licensor.ValidText(reason) || licensor.TextLen(reason) > licensor.MaxRenewalReasonLen {
		return "", licensor.AttrError(licensor.CodeInvalidAttribute, "/meta/reason", "reason must be text of at most %d characters", licensor.MaxRenewalReasonLen)
	}
	return reason, nil
}
