package api

import (
	"net/http"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

// Suspension and reinstatement (licensor.Suspension): one license, or
// every license of a user. The request body is optional:
// {"meta": {"status": "SUSPENDEDADMIN", "reason": "..."}}.

type (
	suspensionDocument struct {
		Data licenseResource `json:"data"`
		Meta suspensionMeta  `json:"meta"`
	}
	suspensionMeta struct {
		Changed        bool            `json:"changed"`
		PreviousStatus licensor.Status `json:"previous_status"`
	}
	userSuspensionDocument struct {
		Data []licenseResource  `json:"data"`
		Meta userSuspensionMeta `json:"meta"`
	}
	userSuspensionMeta struct {
		Changed   []string         `json:"changed"`
		Unchanged []string         `json:"unchanged"`
		Refused   []refusedLicense `json:"refused"`
	}
	refusedLicense struct {
		ID     string        `json:"id"`
		Code   licensor.Code `json:"code"`
		Detail string        `json:"detail"`
	}
)

func (s *Server) suspendLicense(w http.ResponseWriter, r *http.Request) error {
	return s.suspendOne(w, r, licensor.OpSuspend)
}

func (s *Server) reinstateLicense(w http.ResponseWriter, r *http.Request) error {
	return s.suspendOne(w, r, licensor.OpReinstate)
}

func (s *Server) suspendLicensesByUser(w http.ResponseWriter, r *http.Request) error {
	return s.suspendUser(w, r, licensor.OpSuspend)
}

func (s *Server) reinstateLicensesByUser(w http.ResponseWriter, r *http.Request) error {
	return s.suspendUser(w, r, licensor.OpReinstate)
}

// suspendOne serves SuspendLicense and ReinstateLicense: 200 with the
// license and whether it changed; 404, or 409 when the action does not
// apply to it.
func (s *Server) suspendOne(w http.ResponseWriter, r *http.Request, op licensor.SuspensionOp) error {
	id, err := jsonapi.PathID(r.PathValue("license_id"), "license_id")
	if err != nil {
		return err
	}
	a, err := readSuspension(r, op)
	if err != nil {
		return err
	}
	now := s.unix()
	rend := func(out []licensor.SuspensionOutcome) (licensor.StoredResponse, error) {
		o := &out[0]
		return jsonapi.Response(http.StatusOK, suspensionDocument{
			Data: licenseOut(&o.License, now),
			Meta: suspensionMeta{Changed: o.Changed, PreviousStatus: o.Previous},
		})
	}
	out, err := s.store.SuspendLicenses(r.Context(), licensor.SuspensionTarget{IDs: []int64{id}}, a, s.writeChange(r, licensor.Renders{Suspensions: rend}))
	if err != nil {
		return unbatch(err)
	}
	return respond(w, rend, out)
}

// suspendUser serves SuspendLicensesByUser and ReinstateLicensesByUser:
// 200 with every live license of the user, and which changed, which were
// already so and which the action does not apply to.
func (s *Server) suspendUser(w http.ResponseWriter, r *http.Request, op licensor.SuspensionOp) error {
	user := r.PathValue("user_id")
	if !licensor.ValidUserID(user) {
		return licensor.Errorf(licensor.CodeInvalidID, "user_id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
	}
	a, err := readSuspension(r, op)
	if err != nil {
		return err
	}
	now := s.unix()
	rend := func(out []licensor.SuspensionOutcome) (licensor.StoredResponse, error) {
		doc := userSuspensionDocument{Data: make([]licenseResource, len(out)),
			Meta: userSuspensionMeta{Changed: []string{}, Unchanged: []string{}, Refused: []refusedLicense{}}}
		for i := range out {
			o := &out[i]
			doc.Data[i] = licenseOut(&o.License, now)
			switch {
			case o.Refused != nil:
				doc.Meta.Refused = append(doc.Meta.Refused, refusedLicense{ID: id(o.License.ID), Code: o.Refused.Code, Detail: o.Refused.Detail})
			case o.Changed:
				doc.Meta.Changed = append(doc.Meta.Changed, id(o.License.ID))
			default:
				doc.Meta.Unchanged = append(doc.Meta.Unchanged, id(o.License.ID))
			}
		}
		return jsonapi.Response(http.StatusOK, doc)
	}
	out, err := s.store.SuspendLicenses(r.Context(), licensor.SuspensionTarget{UserID: user}, a, s.writeChange(r, licensor.Renders{Suspensions: rend}))
	if err != nil {
		return err
	}
	return respond(w, rend, out)
}

// readSuspension reads the optional body of a suspension action. An empty
// body (with or without a Content-Type) takes the defaults.
func readSuspension(r *http.Request, op licensor.SuspensionOp) (licensor.Suspension, error) {
	a := licensor.Suspension{Op: op}
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return a, err
	}
	body, err := jsonapi.ReadBody(r)
	if err != nil {
		return a, jsonapi.BodyReadError(err)
	}
	if len(body) == 0 {
		return a, nil
	}
	if err := jsonapi.CheckMediaType(r.Header.Get("Content-Type")); err != nil {
		return a, err
	}
	doc, err := jsonapi.ParseDocument(body, jsonapi.Limits{})
	if err != nil {
		return a, err
	}
	var errs licensor.Errors
	top := jsonapi.NewObject(doc, "", &errs)
	top.Ignore("jsonapi")
	if meta, ok := top.Object("meta"); ok {
		if v, ok := meta.Str("status", 0); ok {
			a.Status = licensor.Status(*v)
		}
		if v, ok := meta.Str("reason", licensor.MaxSuspensionReasonLen); ok {
			a.Reason = *v
		}
		meta.Done()
	}
	top.Done()
	if len(errs) > 0 {
		return a, errs
	}
	if err := a.Validate(); err != nil {
		if e, ok := err.(*licensor.Error); ok {
			e.Pointer = "/meta" + e.Pointer
		}
		return a, err
	}
	return a, nil
}
