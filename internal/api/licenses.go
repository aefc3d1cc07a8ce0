package api

import (
	"net/http"
	"strconv"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

type (
	licenseDocument struct {
		Data     licenseResource   `json:"data"`
		Included []productResource `json:"included,omitempty"`
	}
	licenseListDocument struct {
		Data     []licenseResource `json:"data"`
		Included []productResource `json:"included,omitempty"`
		Links    listLinks         `json:"links"`
		Meta     listMeta          `json:"meta"`
	}
	licenseBatchDocument struct {
		Data []licenseResource `json:"data"`
	}
	batchDeleteDocument struct {
		Meta batchDeleteMeta `json:"meta"`
	}
	batchDeleteMeta struct {
		Deleted []string  `json:"deleted"`
		Missing *[]string `json:"missing,omitempty"` // present with allow_missing=true
	}
)

func (s *Server) getLicenses(w http.ResponseWriter, r *http.Request) error {
	return s.listLicenses(w, r, nil)
}

func (s *Server) getLicensesByUser(w http.ResponseWriter, r *http.Request) error {
	user := r.PathValue("user_id")
	if !licensor.ValidUserID(user) {
		return licensor.Errorf(licensor.CodeInvalidID, "user_id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
	}
	return s.listLicenses(w, r, &user)
}

// listLicenses serves GetLicenses and, with user set, GetLicensesByUser.
func (s *Server) listLicenses(w http.ResponseWriter, r *http.Request, user *string) error {
	q := jsonapi.NewQuery(r.URL)
	lq := licensor.LicenseQuery{Filter: licenseFilter(q, user != nil), Now: s.unix()}
	if user != nil {
		lq.Filter.UserID = user
	}
	lq.Sort = q.Sort(licenseSortFields)
	scope := q.Scope(r.URL.Path)
	lq.Limit, lq.After, lq.Count = q.Page(scope)
	include := includeProduct(q)
	if err := q.Done(); err != nil {
		return err
	}
	page, err := s.store.FindLicenses(r.Context(), lq)
	if err != nil {
		return err
	}
	doc := licenseListDocument{Data: make([]licenseResource, len(page.Licenses)), Links: listLinks{Self: r.URL.RequestURI()}}
	for i := range page.Licenses {
		doc.Data[i] = licenseOut(&page.Licenses[i], lq.Now)
	}
	if page.Next != nil {
		doc.Links.Next = jsonapi.NextLink(r.URL, jsonapi.EncodeCursor(page.Next, scope))
	}
	doc.Meta.Total = page.Total
	if include {
		if doc.Included, err = s.includedProducts(r, page.Licenses); err != nil {
			return err
		}
	}
	return jsonapi.Write(w, http.StatusOK, doc)
}

// includedProducts returns the distinct products of licenses, in order of
// first appearance.
func (s *Server) includedProducts(r *http.Request, licenses []licensor.License) ([]productResource, error) {
	out := []productResource{}
	seen := map[int64]bool{}
	for _, l := range licenses {
		if seen[l.ProductID] {
			continue
		}
		seen[l.ProductID] = true
		p, err := s.store.FindProductByID(r.Context(), l.ProductID)
		if err != nil {
			return nil, err
		}
		out = append(out, productOut(p))
	}
	return out, nil
}

func (s *Server) getLicenseById(w http.ResponseWriter, r *http.Request) error {
	if isBatchPath(r) {
		return methodNotAllowed("POST")(w, r)
	}
	id, err := jsonapi.PathID(r.PathValue("license_id"), "license_id")
	if err != nil {
		return err
	}
	q := jsonapi.NewQuery(r.URL)
	include := includeProduct(q)
	if err := q.Done(); err != nil {
		return err
	}
	l, err := s.store.FindLicenseByID(r.Context(), id)
	if err != nil {
		return err
	}
	doc := licenseDocument{Data: licenseOut(l, s.unix())}
	if include {
		if doc.Included, err = s.includedProducts(r, []licensor.License{*l}); err != nil {
			return err
		}
	}
	return jsonapi.Write(w, http.StatusOK, doc)
}

func (s *Server) createLicense(w http.ResponseWriter, r *http.Request) error {
	item, base, err := jsonapi.ReadResource(r)
	if err != nil {
		return err
	}
	draft, err := parseLicense(item)
	if err != nil {
		return jsonapi.At(base, err)
	}
	now := s.unix()
	rend := func(created []licensor.License) (licensor.StoredResponse, error) {
		l := &created[0]
		return jsonapi.Response(http.StatusCreated, licenseDocument{Data: licenseOut(l, now)}, "Location", basePath+"/licenses/"+id(l.ID))
	}
	created, err := s.store.CreateLicenses(r.Context(), []licensor.LicenseDraft{draft}, s.writeChange(r, licensor.Renders{Licenses: rend}))
	if err != nil {
		return jsonapi.At(base, err)
	}
	return respond(w, rend, created)
}

// respond renders result and sends it.
func respond[T any](w http.ResponseWriter, rend licensor.Render[T], result T) error {
	resp, err := rend(result)
	if err != nil {
		return err
	}
	return jsonapi.WriteResponse(w, resp)
}

func (s *Server) batchCreateLicenses(w http.ResponseWriter, r *http.Request) error {
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return err
	}
	doc, err := jsonapi.ReadDocument(r, jsonapi.Limits{Batch: s.opts.MaxBatch})
	if err != nil {
		return err
	}
	items, _, err := jsonapi.Resources(doc, true)
	if err != nil {
		return err
	}
	if err := s.checkBatchSize(len(items)); err != nil {
		return err
	}
	s.metrics.Batch("batch_create", len(items))
	drafts := make([]licensor.LicenseDraft, len(items))
	var bad licensor.ItemErrors
	for i, m := range items {
		d, err := parseLicense(m)
		if err != nil {
			bad = jsonapi.AddItemErrors(bad, i, err.(licensor.Errors))
		}
		drafts[i] = d
	}
	if len(bad) > 0 {
		return jsonapi.At(jsonapi.BatchBase, bad)
	}
	now := s.unix()
	rend := func(created []licensor.License) (licensor.StoredResponse, error) {
		out := licenseBatchDocument{Data: make([]licenseResource, len(created))}
		for i := range created {
			out.Data[i] = licenseOut(&created[i], now)
		}
		return jsonapi.Response(http.StatusCreated, out)
	}
	created, err := s.store.CreateLicenses(r.Context(), drafts, s.writeChange(r, licensor.Renders{Licenses: rend}))
	if err != nil {
		return jsonapi.At(jsonapi.BatchBase, err)
	}
	return respond(w, rend, created)
}

func (s *Server) checkBatchSize(n int) error {
	switch {
	case n == 0:
		return &licensor.Error{Code: licensor.CodeInvalidRequest, Pointer: "/data", Detail: "a batch needs at least one item"}
	case n > s.opts.MaxBatch:
		return &licensor.Error{Code: licensor.CodeBatchTooLarge, Pointer: "/data",
			Detail: "a batch may have at most " + strconv.Itoa(s.opts.MaxBatch) + " items; this one has " + strconv.Itoa(n)}
	}
	return nil
}

func (s *Server) deleteLicenseById(w http.ResponseWriter, r *http.Request) error {
	if isBatchPath(r) {
		return methodNotAllowed("POST")(w, r)
	}
	id, err := jsonapi.PathID(r.PathValue("license_id"), "license_id")
	if err != nil {
		return err
	}
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return err
	}
	if _, _, err := s.store.DeleteLicenses(r.Context(), []int64{id}, false, s.change(r)); err != nil {
		return unbatch(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// unbatch turns the item errors of a one-item call into plain errors.
func unbatch(err error) error {
	if items, ok := err.(licensor.ItemErrors); ok {
		es := make(licensor.Errors, len(items))
		for i, it := range items {
			e := *it.Err
			e.Pointer = ""
			es[i] = &e
		}
		return es
	}
	return err
}

func (s *Server) batchDeleteLicenses(w http.ResponseWriter, r *http.Request) error {
	q := jsonapi.NewQuery(r.URL)
	allowMissing := q.Bool("allow_missing")
	if err := q.Done(); err != nil {
		return err
	}
	doc, err := jsonapi.ReadDocument(r, jsonapi.Limits{Batch: s.opts.MaxBatch})
	if err != nil {
		return err
	}
	items, _, err := jsonapi.Resources(doc, true)
	if err != nil {
		return err
	}
	if err := s.checkBatchSize(len(items)); err != nil {
		return err
	}
	s.metrics.Batch("batch_delete", len(items))
	ids := make([]int64, len(items))
	var bad licensor.ItemErrors
	for i, m := range items {
		var errs licensor.Errors
		o := jsonapi.NewObject(m, "", &errs)
		o.Type("License")
		o.Ignore("meta")
		if s, ok := o.Str("id", 0); ok {
			n, err := strconv.ParseInt(*s, 10, 64)
			if err != nil || n <= 0 {
				o.Fail(licensor.CodeInvalidID, "id", "id must be a positive integer written as a string")
			}
			ids[i] = n
		} else if _, present := m["id"]; !present {
			o.Fail(licensor.CodeMissingAttribute, "id", "id is required")
		}
		o.Done()
		bad = jsonapi.AddItemErrors(bad, i, errs)
	}
	if len(bad) > 0 {
		return jsonapi.At(jsonapi.BatchBase, bad)
	}
	lenient := allowMissing != nil && *allowMissing
	rend := func(res licensor.DeleteResult) (licensor.StoredResponse, error) {
		out := batchDeleteDocument{Meta: batchDeleteMeta{Deleted: idStrings(res.Deleted)}}
		if lenient {
			m := idStrings(res.Missing)
			out.Meta.Missing = &m
		}
		return jsonapi.Response(http.StatusOK, out)
	}
	deleted, missing, err := s.store.DeleteLicenses(r.Context(), ids, lenient, s.writeChange(r, licensor.Renders{Deleted: rend}))
	if err != nil {
		return jsonapi.At(jsonapi.BatchBase, err)
	}
	return respond(w, rend, licensor.DeleteResult{Deleted: deleted, Missing: missing})
}

func idStrings(ids []int64) []string {
	out := make([]string, len(ids))
	for i, n := range ids {
		out[i] = id(n)
	}
	return out
}

// isNullRelationship reports whether a to-one relationship's value is
// null or {"data": null}.
func isNullRelationship(v any) bool {
	if v == nil {
		return true
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	d, ok := m["data"]
	return ok && d == nil
}

// parseLicense reads a License resource object of a create request.
// Pointers in the errors are relative to the resource object.
func parseLicense(m map[string]any) (licensor.LicenseDraft, error) {
	var errs licensor.Errors
	var d licensor.LicenseDraft
	res := jsonapi.NewObject(m, "", &errs)
	res.PrimaryType("License")
	res.Forbid("id", "id is assigned by the server; leave it out")
	res.Ignore("links", "meta")
	if a, ok := res.Object("attributes"); ok {
		if s, ok := a.Str("status", 0); ok {
			st := licensor.Status(*s)
			if !st.Valid() {
				a.Fail(licensor.CodeInvalidAttribute, "status", "unknown status %q; one of %s", *s, joinStatuses())
			} else {
				d.Status = &st
			}
		}
		d.StartDate, _ = a.Int("start_date", 0)
		d.StopDate, _ = a.Int("stop_date", 0)
		if s, ok := a.Str("order_id", licensor.MaxOrderIDLen); ok {
			if *s == "" {
				a.Fail(licensor.CodeInvalidAttribute, "order_id", "order_id must not be empty (leave it out instead)")
			} else {
				d.OrderID = s
			}
		}
		if rr, ok := a.Object("renew_record"); ok {
			d.Recurring, _ = rr.Bool("recurring")
			d.ExpiryDate, _ = rr.Int("expiry_date", 0)
			rr.Forbid("renewal", "renewal is read-only: the server keeps it (POST /licenses/{license_id}/cancel-renewal cancels one)")
			rr.Done()
		}
		if pr, ok := a.Object("purchase_record"); ok {
			d.PriceAmount, _ = pr.Int("price_currency_amount", 0)
			if c, ok := pr.Str("price_currency_iso4217", 0); ok {
				if !licensor.ValidCurrency(*c) {
					pr.Fail(licensor.CodeInvalidAttribute, "price_currency_iso4217", "unknown ISO 4217 currency %q", *c)
				} else {
					d.PriceCurrency = c
				}
			}
			d.PurchaseTimestamp, _ = pr.Int("purchase_timestamp", 0)
			d.PaymentMethod, _ = pr.Str("payment_method", licensor.MaxPaymentMethodLen)
			pr.Done()
		}
		a.Forbid("created_at", "created_at is read-only")
		a.Done()
	}
	if rels, ok := res.Object("relationships"); ok {
		if user, ok := rels.ToOne("user", "User"); ok {
			if !licensor.ValidUserID(user) {
				rels.Fail(licensor.CodeInvalidRelationship, "user/data/id", "user id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
			}
			d.UserID = user
		}
		if product, ok := rels.ToOne("product", "Product"); ok {
			n, err := strconv.ParseInt(product, 10, 64)
			if err != nil || n <= 0 {
				rels.Fail(licensor.CodeInvalidRelationship, "product/data/id", "product id must be a positive integer written as a string")
			}
			d.ProductID = n
		}
		// renewed_from: null or {"data": null} is a first license.
		if rel, present := rels.Member("renewed_from"); present && !isNullRelationship(rel) {
			if pred, ok := rels.ToOne("renewed_from", "License"); ok {
				n, err := strconv.ParseInt(pred, 10, 64)
				if err != nil || n <= 0 {
					rels.Fail(licensor.CodeInvalidRelationship, "renewed_from/data/id", "renewed_from id must be a positive integer written as a string")
				}
				d.RenewedFrom = &n
			}
		} else {
			rels.Ignore("renewed_from")
		}
		rels.Forbid("renewed_by", "renewed_by is read-only: a successor names its predecessor with renewed_from")
		rels.Done()
	} else if _, present := m["relationships"]; !present || m["relationships"] == nil {
		res.Fail(licensor.CodeInvalidRelationship, "relationships", "relationships user and product are required")
	}
	res.Done()
	if len(errs) > 0 {
		return d, errs
	}
	return d, nil
}
