package api

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

// Bulk jobs (licensor.BulkJob): an action applied in the background to
// every license a filter selects. The filter is the license list's:
// attributes.filter has a member per filter parameter of GetLicenses
// ("user_id" for filter[user_id], "stop_date": {"lt": ...} for
// filter[stop_date][lt]), read by the list's own parser (licenseFilter),
// so that a job selects exactly what the list shows with the same
// parameters. The jobs themselves run in internal/lifecycle (Bulk).

type (
	bulkJobResource struct {
		ID         string            `json:"id"`
		Type       string            `json:"type"`
		Attributes bulkJobAttributes `json:"attributes"`
		Links      selfLink          `json:"links"`
	}
	bulkJobAttributes struct {
		Action licensor.BulkAction `json:"action"`
		// Status and Reason are the suspension's: null for a delete.
		Status        *licensor.Status      `json:"status"`
		Reason        *string               `json:"reason"`
		Filter        bulkFilter            `json:"filter"`
		State         licensor.BulkJobState `json:"state"`
		Matched       int64                 `json:"matched"`
		Processed     int64                 `json:"processed"`
		Changed       int64                 `json:"changed"`
		Unchanged     int64                 `json:"unchanged"`
		Refused       int64                 `json:"refused"`
		RefusedSample []refusedLicenseCode  `json:"refused_sample"`
		Error         *string               `json:"error"`
		Actor         string                `json:"actor"`
		CreatedAt     int64                 `json:"created_at"`
		UpdatedAt     int64                 `json:"updated_at"`
		StartedAt     *int64                `json:"started_at"`
		FinishedAt    *int64                `json:"finished_at"`
	}
	refusedLicenseCode struct {
		ID   string        `json:"id"`
		Code licensor.Code `json:"code"`
	}
	// bulkFilter is a job's filter as the API shows it: the members
	// present, in the form the list's parameters take (ids as strings,
	// statuses as a comma list, ranges as {op: unix seconds}).
	bulkFilter struct {
		UserID            *string          `json:"user_id,omitempty"`
		ProductID         *string          `json:"product_id,omitempty"`
		OrderID           *string          `json:"order_id,omitempty"`
		Status            *string          `json:"status,omitempty"`
		Recurring         *bool            `json:"recurring,omitempty"`
		StartDate         map[string]int64 `json:"start_date,omitempty"`
		StopDate          map[string]int64 `json:"stop_date,omitempty"`
		ExpiryDate        map[string]int64 `json:"expiry_date,omitempty"`
		PurchaseTimestamp map[string]int64 `json:"purchase_timestamp,omitempty"`
		CreatedAt         map[string]int64 `json:"created_at,omitempty"`
	}
	bulkJobDocument struct {
		Data bulkJobResource `json:"data"`
	}
	bulkDryRunDocument struct {
		Meta bulkDryRunMeta `json:"meta"`
	}
	bulkDryRunMeta struct {
		DryRun  bool     `json:"dry_run"`
		Matched int64    `json:"matched"`
		Sample  []string `json:"sample"`
	}
)

// bulkDryRunSample is how many matching ids a dry run shows.
const bulkDryRunSample = 10

func bulkJobPath(jid int64) string { return basePath + "/bulk_jobs/" + id(jid) }

func bulkJobOut(j *licensor.BulkJob) bulkJobResource {
	a := bulkJobAttributes{
		Action: j.Action, Filter: bulkFilterOut(j.Filter), State: j.State,
		Matched: j.Matched, Processed: j.Processed, Changed: j.Changed, Unchanged: j.Unchanged, Refused: j.Refused,
		RefusedSample: make([]refusedLicenseCode, len(j.RefusedSample)),
		Actor:         j.Actor, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
	}
	if j.Action != licensor.BulkDelete {
		level := j.Suspension().Level()
		a.Status, a.Reason = &level, &j.Reason
	}
	for i, r := range j.RefusedSample {
		a.RefusedSample[i] = refusedLicenseCode{ID: id(r.ID), Code: r.Code}
	}
	if j.Error != "" {
		a.Error = &j.Error
	}
	return bulkJobResource{ID: id(j.ID), Type: "BulkJob", Attributes: a, Links: selfLink{Self: bulkJobPath(j.ID)}}
}

func bulkFilterOut(f licensor.LicenseFilter) bulkFilter {
	out := bulkFilter{UserID: f.UserID, OrderID: f.OrderID, Recurring: f.Recurring}
	if f.ProductID != nil {
		s := id(*f.ProductID)
		out.ProductID = &s
	}
	if len(f.Statuses) > 0 {
		parts := make([]string, len(f.Statuses))
		for i, s := range f.Statuses {
			parts[i] = string(s)
		}
		s := strings.Join(parts, ",")
		out.Status = &s
	}
	for _, r := range f.Ranges {
		var m *map[string]int64
		switch r.Field {
		case "start_date":
			m = &out.StartDate
		case "stop_date":
			m = &out.StopDate
		case "expiry_date":
			m = &out.ExpiryDate
		case "purchase_timestamp":
			m = &out.PurchaseTimestamp
		case "created_at":
			m = &out.CreatedAt
		default:
			continue
		}
		if *m == nil {
			*m = map[string]int64{}
		}
		(*m)[r.Op] = r.Value
	}
	return out
}

// createBulkJob serves CreateBulkJob: 202 with the queued job, or with
// dry_run 200 with the number of matches and the first ids.
func (s *Server) createBulkJob(w http.ResponseWriter, r *http.Request) error {
	item, base, err := jsonapi.ReadResource(r)
	if err != nil {
		return err
	}
	j, dryRun, err := parseBulkJob(item)
	if err != nil {
		return jsonapi.At(base, err)
	}
	now := s.unix()
	if dryRun {
		page, err := s.store.FindLicenses(r.Context(), licensor.LicenseQuery{Filter: j.Filter, Limit: bulkDryRunSample, Count: true, Now: now})
		if err != nil {
			return jsonapi.At(base, err)
		}
		doc := bulkDryRunDocument{Meta: bulkDryRunMeta{DryRun: true, Matched: *page.Total, Sample: make([]string, len(page.Licenses))}}
		for i := range page.Licenses {
			doc.Meta.Sample[i] = id(page.Licenses[i].ID)
		}
		return jsonapi.Write(w, http.StatusOK, doc)
	}
	rend := func(j *licensor.BulkJob) (licensor.StoredResponse, error) {
		return jsonapi.Response(http.StatusAccepted, bulkJobDocument{Data: bulkJobOut(j)}, "Location", bulkJobPath(j.ID))
	}
	if err := s.store.CreateBulkJob(r.Context(), &j, s.writeChange(r, licensor.Renders{BulkJob: rend})); err != nil {
		return jsonapi.At(base, err)
	}
	return respond(w, rend, &j)
}

func (s *Server) getBulkJobById(w http.ResponseWriter, r *http.Request) error {
	jid, err := jsonapi.PathID(r.PathValue("bulk_job_id"), "bulk_job_id")
	if err != nil {
		return err
	}
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return err
	}
	j, err := s.store.FindBulkJobByID(r.Context(), jid)
	if err != nil {
		return err
	}
	return jsonapi.Write(w, http.StatusOK, bulkJobDocument{Data: bulkJobOut(j)})
}

// cancelBulkJob serves CancelBulkJob: 200 with the cancelled job (also
// when it was cancelled already); 409 when it finished.
func (s *Server) cancelBulkJob(w http.ResponseWriter, r *http.Request) error {
	jid, err := jsonapi.PathID(r.PathValue("bulk_job_id"), "bulk_job_id")
	if err != nil {
		return err
	}
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return err
	}
	body, err := jsonapi.ReadBody(r)
	if err != nil {
		return jsonapi.BodyReadError(err)
	}
	if len(body) > 0 {
		return licensor.Errorf(licensor.CodeInvalidRequest, "cancel takes no request body")
	}
	rend := func(j *licensor.BulkJob) (licensor.StoredResponse, error) {
		return jsonapi.Response(http.StatusOK, bulkJobDocument{Data: bulkJobOut(j)})
	}
	j, err := s.store.CancelBulkJob(r.Context(), jid, s.writeChange(r, licensor.Renders{BulkJob: rend}))
	if err != nil {
		return err
	}
	return respond(w, rend, j)
}

// parseBulkJob reads a BulkJob resource object of a create. Pointers are
// relative to the resource object.
func parseBulkJob(m map[string]any) (licensor.BulkJob, bool, error) {
	var errs licensor.Errors
	var j licensor.BulkJob
	dryRun := false
	res := jsonapi.NewObject(m, "", &errs)
	res.PrimaryType("BulkJob")
	res.Ignore("links", "meta")
	res.Forbid("id", "id is assigned by the server; leave it out")
	if a, ok := res.Object("attributes"); ok {
		if v, ok := a.Str("action", 0); ok {
			j.Action = licensor.BulkAction(*v)
		} else if !hasPointer(errs, "/attributes/action") {
			a.Fail(licensor.CodeMissingAttribute, "action", "action is required: %s, %s or %s", licensor.BulkDelete, licensor.BulkSuspend, licensor.BulkReinstate)
		}
		if v, ok := a.Str("status", 0); ok {
			j.Status = licensor.Status(*v)
		}
		if v, ok := a.Str("reason", licensor.MaxSuspensionReasonLen); ok {
			j.Reason = *v
		}
		if v, ok := a.Bool("dry_run"); ok {
			dryRun = *v
		}
		switch v, ok := a.Get("filter"); {
		case !ok:
			a.Fail(licensor.CodeMissingAttribute, "filter", "filter is required: the license list's filters, such as {\"product_id\": \"5\"}")
		default:
			f, isObj := v.(map[string]any)
			if !isObj {
				a.Fail(licensor.CodeInvalidAttribute, "filter", "filter must be an object")
				break
			}
			j.Filter = parseBulkFilter(f, a.Pointer()+"/filter", &errs)
		}
		for _, name := range []string{"state", "matched", "processed", "changed", "unchanged", "refused", "refused_sample",
			"error", "actor", "created_at", "updated_at", "started_at", "finished_at"} {
			a.Forbid(name, name+" is read-only")
		}
		a.Done()
	} else if !hasPointer(errs, "/attributes") {
		res.Fail(licensor.CodeMissingAttribute, "attributes", "attributes (action and filter) are required")
	}
	res.Done()
	if len(errs) > 0 {
		return j, false, errs
	}
	if err := j.Validate(); err != nil {
		return j, false, err
	}
	return j, dryRun, nil
}

// bulkRangeFields are the filter members that take {op: value}.
var bulkRangeFields = licensor.LicenseRangeFields()

// pointerEscaper escapes a member name for a JSON pointer (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// parseBulkFilter reads attributes.filter (m, at pointer ptr) with the
// license list's parser: each member becomes the list's query parameter
// (user_id: filter[user_id], stop_date.lt: filter[stop_date][lt]) with the
// text of its value, and licenseFilter reads them, with the list's rules
// and errors (their parameters turned into pointers under ptr).
func parseBulkFilter(m map[string]any, ptr string, errs *licensor.Errors) licensor.LicenseFilter {
	values := url.Values{}
	pointers := map[string]string{} // parameter → pointer
	f := jsonapi.NewObject(m, ptr, errs)
	text := func(o *jsonapi.Object, name string, v any) (string, bool) {
		switch v := v.(type) {
		case string:
			return v, true
		case json.Number:
			return v.String(), true
		case bool:
			return strconv.FormatBool(v), true
		case []any: // a status list
			parts := make([]string, len(v))
			for i, p := range v {
				s, ok := p.(string)
				if !ok {
					o.Fail(licensor.CodeInvalidAttribute, name, "%s must be a string or an array of strings", name)
					return "", false
				}
				parts[i] = s
			}
			if name == "status" && len(parts) > 0 {
				return strings.Join(parts, ","), true
			}
		}
		o.Fail(licensor.CodeInvalidAttribute, name, "%s must be a string, a number or a boolean, as the list's filter[%s] takes", name, name)
		return "", false
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		v := m[name]
		if v == nil {
			continue
		}
		if !slices.Contains(bulkRangeFields, name) {
			if s, ok := text(f, name, v); ok {
				param := "filter[" + name + "]"
				values.Set(param, s)
				pointers[param] = ptr + "/" + pointerEscaper.Replace(name)
			}
			continue
		}
		ops, ok := v.(map[string]any)
		if !ok {
			f.Fail(licensor.CodeInvalidAttribute, name, "%s must be an object of bounds: {\"gt\"|\"gte\"|\"lt\"|\"lte\": unix seconds}", name)
			continue
		}
		o := jsonapi.NewObject(ops, ptr+"/"+pointerEscaper.Replace(name), errs)
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			if s, ok := text(o, op, ops[op]); ok {
				param := "filter[" + name + "][" + op + "]"
				values.Set(param, s)
				pointers[param] = o.Pointer() + "/" + pointerEscaper.Replace(op)
			}
		}
	}
	q := jsonapi.NewQuery(&url.URL{RawQuery: values.Encode()})
	filter := licenseFilter(q, false)
	if err := q.Done(); err != nil {
		for _, e := range err.(licensor.Errors) {
			e := *e
			member := strings.TrimSuffix(strings.TrimPrefix(e.Parameter, "filter["), "]")
			e.Pointer, e.Parameter = pointers[e.Parameter], ""
			if e.Pointer == "" {
				e.Pointer = ptr
			}
			switch e.Code {
			case licensor.CodeInvalidParameter:
				e.Code = licensor.CodeInvalidAttribute
			case licensor.CodeUnknownParameter:
				e.Code = licensor.CodeUnknownAttribute
				e.Detail = "unknown filter " + member + "; the filters are the license list's: user_id product_id order_id status recurring and " +
					strings.Join(bulkRangeFields, " ") + " with gt gte lt lte"
			}
			*errs = append(*errs, &e)
		}
	}
	return filter
}
