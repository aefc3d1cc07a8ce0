package api

import (
	"net/http"
	"strconv"

	"github.com/licensor/licensor"
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
	q := newQuery(r.URL)
	lq := licensor.LicenseQuery{Filter: q.licenseFilter(user != nil), Now: s.unix()}
	if user != nil {
		lq.Filter.UserID = user
	}
	lq.Sort = q.sort(licenseSortFields)
	scope := q.scope(r.URL.Path)
	lq.Limit, lq.After, lq.Count = q.page(scope)
	include := q.includeProduct()
	if err := q.done(); err != nil {
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
		doc.Links.Next = nextLink(r.URL, encodeCursor(page.Next, scope))
	}
	doc.Meta.Total = page.Total
	if include {
		if doc.Included, err = s.includedProducts(r, page.Licenses); err != nil {
			return err
		}
	}
	return encode(w, http.StatusOK, doc)
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
	id, err := pathID(r.PathValue("license_id"), "license_id")
	if err != nil {
		return err
	}
	q := newQuery(r.URL)
	include := q.includeProduct()
	if err := q.done(); err != nil {
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
	return encode(w, http.StatusOK, doc)
}

func (s *Server) createLicense(w http.ResponseWriter, r *http.Request) error {
	item, base, err := readResource(r)
	if err != nil {
		return err
	}
	draft, err := parseLicense(item)
	if err != nil {
		return at(base, err)
	}
	now := s.unix()
	rend := func(result any) (licensor.StoredResponse, error) {
		l := &result.([]licensor.License)[0]
		return jsonResponse(http.StatusCreated, licenseDocument{Data: licenseOut(l, now)}, "Location", basePath+"/licenses/"+id(l.ID))
	}
	created, err := s.store.CreateLicenses(r.Context(), []licensor.LicenseDraft{draft}, s.writeChange(r, rend))
	if err != nil {
		return at(base, err)
	}
	return respond(w, rend, created)
}

// respond renders result and sends it.
func respond(w http.ResponseWriter, rend render, result any) error {
	resp, err := rend(result)
	if err != nil {
		return err
	}
	return writeStored(w, resp)
}

func (s *Server) batchCreateLicenses(w http.ResponseWriter, r *http.Request) error {
	if err := newQuery(r.URL).done(); err != nil {
		return err
	}
	doc, err := readDocument(r, shapeLimits{batch: s.opts.MaxBatch})
	if err != nil {
		return err
	}
	items, _, err := resources(doc, true)
	if err != nil {
		return err
	}
	if err := s.checkBatchSize(len(items)); err != nil {
		return err
	}
	s.metrics.batchSize.WithLabelValues("batch_create").Observe(float64(len(items)))
	drafts := make([]licensor.LicenseDraft, len(items))
	var bad licensor.ItemErrors
	for i, m := range items {
		d, err := parseLicense(m)
		if err != nil {
			bad = addItemErrors(bad, i, err.(licensor.Errors))
		}
		drafts[i] = d
	}
	if len(bad) > 0 {
		return at(batchBase, bad)
	}
	now := s.unix()
	rend := func(result any) (licensor.StoredResponse, error) {
		created := result.([]licensor.License)
		out := licenseBatchDocument{Data: make([]licenseResource, len(created))}
		for i := range created {
			out.Data[i] = licenseOut(&created[i], now)
		}
		return jsonResponse(http.StatusCreated, out)
	}
	created, err := s.store.CreateLicenses(r.Context(), drafts, s.writeChange(r, rend))
	if err != nil {
		return at(batchBase, err)
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
	id, err := pathID(r.PathValue("license_id"), "license_id")
	if err != nil {
		return err
	}
	if err := newQuery(r.URL).done(); err != nil {
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
	q := newQuery(r.URL)
	allowMissing := q.boolean("allow_missing")
	if err := q.done(); err != nil {
		return err
	}
	doc, err := readDocument(r, shapeLimits{batch: s.opts.MaxBatch})
	if err != nil {
		return err
	}
	items, _, err := resources(doc, true)
	if err != nil {
		return err
	}
	if err := s.checkBatchSize(len(items)); err != nil {
		return err
	}
	s.metrics.batchSize.WithLabelValues("batch_delete").Observe(float64(len(items)))
	ids := make([]int64, len(items))
	var bad licensor.ItemErrors
	for i, m := range items {
		var errs licensor.Errors
		o := newObject(m, "", &errs)
		o.typ("License")
		o.ignore("meta")
		if s, ok := o.str("id", 0); ok {
			n, err := strconv.ParseInt(*s, 10, 64)
			if err != nil || n <= 0 {
				o.fail(licensor.CodeInvalidID, "id", "id must be a positive integer written as a string")
			}
			ids[i] = n
		} else if _, present := m["id"]; !present {
			o.fail(licensor.CodeMissingAttribute, "id", "id is required")
		}
		o.done()
		bad = addItemErrors(bad, i, errs)
	}
	if len(bad) > 0 {
		return at(batchBase, bad)
	}
	lenient := allowMissing != nil && *allowMissing
	rend := func(result any) (licensor.StoredResponse, error) {
		res := result.(licensor.DeleteResult)
		out := batchDeleteDocument{Meta: batchDeleteMeta{Deleted: idStrings(res.Deleted)}}
		if lenient {
			m := idStrings(res.Missing)
			out.Meta.Missing = &m
		}
		return jsonResponse(http.StatusOK, out)
	}
	deleted, missing, err := s.store.DeleteLicenses(r.Context(), ids, lenient, s.writeChange(r, rend))
	if err != nil {
		return at(batchBase, err)
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
