package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

type (
	productDocument struct {
		Data productResource `json:"data"`
	}
	productListDocument struct {
		Data  []productResource `json:"data"`
		Links listLinks         `json:"links"`
		Meta  listMeta          `json:"meta"`
	}
)

func (s *Server) getAllProducts(w http.ResponseWriter, r *http.Request) error {
	q := jsonapi.NewQuery(r.URL)
	pq := licensor.ProductQuery{Filter: productFilter(q), Sort: q.Sort(productSortFields)}
	scope := q.Scope(r.URL.Path)
	pq.Limit, pq.After, pq.Count = q.Page(scope)
	if err := q.Done(); err != nil {
		return err
	}
	page, err := s.store.FindProducts(r.Context(), pq)
	if err != nil {
		return err
	}
	doc := productListDocument{Data: make([]productResource, len(page.Products)), Links: listLinks{Self: r.URL.RequestURI()}}
	for i := range page.Products {
		doc.Data[i] = productOut(&page.Products[i])
	}
	if page.Next != nil {
		doc.Links.Next = jsonapi.NextLink(r.URL, jsonapi.EncodeCursor(page.Next, scope))
	}
	doc.Meta.Total = page.Total
	return jsonapi.Write(w, http.StatusOK, doc)
}

func (s *Server) getProductById(w http.ResponseWriter, r *http.Request) error {
	id, err := jsonapi.PathID(r.PathValue("product_id"), "product_id")
	if err != nil {
		return err
	}
	if err := jsonapi.NewQuery(r.URL).Done(); err != nil {
		return err
	}
	p, err := s.store.FindProductByID(r.Context(), id)
	if err != nil {
		return err
	}
	return writeProduct(w, http.StatusOK, p)
}

func writeProduct(w http.ResponseWriter, status int, p *licensor.Product) error {
	w.Header().Set("ETag", p.ETag())
	return jsonapi.Write(w, status, productDocument{Data: productOut(p)})
}

func (s *Server) createProduct(w http.ResponseWriter, r *http.Request) error {
	item, base, err := jsonapi.ReadResource(r)
	if err != nil {
		return err
	}
	patch, err := parseProduct(item, 0)
	if err != nil {
		return jsonapi.At(base, err)
	}
	p := patch.Apply(licensor.NewProduct(""))
	if err := p.Validate(); err != nil {
		return jsonapi.At(base, err)
	}
	rend := func(p *licensor.Product) (licensor.StoredResponse, error) {
		return jsonapi.Response(http.StatusCreated, productDocument{Data: productOut(p)},
			"Location", basePath+"/products/"+id(p.ID), "ETag", p.ETag())
	}
	if err := s.store.CreateProduct(r.Context(), &p, s.writeChange(r, licensor.Renders{Product: rend})); err != nil {
		return jsonapi.At(base, err)
	}
	return respond(w, rend, &p)
}

func (s *Server) updateProduct(w http.ResponseWriter, r *http.Request) error {
	pid, err := jsonapi.PathID(r.PathValue("product_id"), "product_id")
	if err != nil {
		return err
	}
	item, base, err := jsonapi.ReadResource(r)
	if err != nil {
		return err
	}
	patch, err := parseProduct(item, pid)
	if err != nil {
		return jsonapi.At(base, err)
	}
	p, err := s.store.UpdateProduct(r.Context(), pid, patch, ifMatch(r), s.change(r))
	if err != nil {
		return jsonapi.At(base, err)
	}
	return writeProduct(w, http.StatusOK, p)
}

func (s *Server) deleteProductById(w http.ResponseWriter, r *http.Request) error {
	pid, err := jsonapi.PathID(r.PathValue("product_id"), "product_id")
	if err != nil {
		return err
	}
	q := jsonapi.NewQuery(r.URL)
	cascade := q.Bool("cascade")
	if err := q.Done(); err != nil {
		return err
	}
	opts := licensor.DeleteProductOptions{Cascade: cascade != nil && *cascade, IfMatch: ifMatch(r)}
	if err := s.store.DeleteProduct(r.Context(), pid, opts, s.change(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ifMatch returns the If-Match header (the store compares it with the
// current ETag: licensor.Product.CheckIfMatch).
func ifMatch(r *http.Request) string { return strings.TrimSpace(r.Header.Get("If-Match")) }

// parseProduct reads a Product resource object into a patch. On create
// (wantID == 0) id must be absent and title present; on update an id, if
// present, must equal wantID.
func parseProduct(m map[string]any, wantID int64) (licensor.ProductPatch, error) {
	var errs licensor.Errors
	var p licensor.ProductPatch
	res := jsonapi.NewObject(m, "", &errs)
	res.PrimaryType("Product")
	res.Ignore("links", "meta")
	if wantID == 0 {
		res.Forbid("id", "id is assigned by the server; leave it out")
	} else if s, ok := res.Str("id", 0); ok && *s != id(wantID) {
		res.Fail(licensor.CodeResourceMismatch, "id", "id %q does not match the product in the path (%d)", *s, wantID)
	}
	if a, ok := res.Object("attributes"); ok {
		p.Title, _ = a.Str("title", licensor.MaxTitleLen)
		if p.Title != nil && *p.Title == "" {
			a.Fail(licensor.CodeInvalidAttribute, "title", "title must not be empty")
		}
		p.Description, _ = a.Str("description", licensor.MaxDescriptionLen)
		if t, ok := a.Str("type", 0); ok {
			if !licensor.ValidProductType(*t) {
				a.Fail(licensor.CodeInvalidAttribute, "type", "type must be an upper-case identifier such as CHANNEL_GROUP")
			} else {
				p.Type = t
			}
		}
		p.IsPremium, _ = a.Bool("is_premium")
		p.IsBuyable, _ = a.Bool("is_buyable")
		p.IsVisible, _ = a.Bool("is_visible")
		p.Recurring, _ = a.Bool("recurring")
		if _, present := a.Member("price_currency_amount"); present {
			amount, _ := a.Int("price_currency_amount", 0)
			p.PriceAmount = &amount
		}
		if v, present := a.Member("price_currency_iso4217"); present {
			c, ok := a.Str("price_currency_iso4217", 0)
			switch {
			case v != nil && !ok:
			case c != nil && !licensor.ValidCurrency(*c):
				a.Fail(licensor.CodeInvalidAttribute, "price_currency_iso4217", "unknown ISO 4217 currency %q", *c)
			default:
				p.PriceCurrency = &c
			}
		}
		if v, present := a.Member("license_period"); present {
			lp, ok := a.Str("license_period", 0)
			switch {
			case v != nil && !ok:
			case lp == nil:
				empty := ""
				p.LicensePeriod = &empty
			default:
				if _, err := licensor.ParsePeriod(*lp); err != nil {
					a.Fail(licensor.CodeInvalidAttribute, "license_period", "%v", err)
				} else {
					p.LicensePeriod = lp
				}
			}
		}
		if v, present := a.Member("renewal_mode"); present {
			m, ok := a.Str("renewal_mode", 0)
			switch {
			case v != nil && !ok:
			case m == nil:
				none := licensor.RenewalMode("")
				p.RenewalMode = &none
			case !licensor.RenewalMode(*m).Valid():
				a.Fail(licensor.CodeInvalidAttribute, "renewal_mode", "renewal_mode must be %q, %q or null (the deployment's)", licensor.RenewalAutomatic, licensor.RenewalNotify)
			default:
				mode := licensor.RenewalMode(*m)
				p.RenewalMode = &mode
			}
		}
		a.Forbid("created_at", "created_at is read-only")
		a.Forbid("updated_at", "updated_at is read-only")
		a.Done()
	}
	if wantID == 0 && p.Title == nil && !hasPointer(errs, "/attributes/title") {
		res.Fail(licensor.CodeMissingAttribute, "attributes/title", "title is required")
	}
	if rels, ok := res.Object("relationships"); ok {
		for _, s := range licensor.Services() {
			ids, ok := channelIDs(rels, &errs, string(s))
			if ok {
				if p.Channels == nil {
					p.Channels = licensor.Channels{}
				}
				p.Channels[s] = ids
			}
		}
		rels.Done()
	}
	res.Done()
	if len(errs) > 0 {
		return p, errs
	}
	return p, nil
}

// channelIDs reads relationships.NAME = {"data": [{"type": "Channel", "id":
// "..."}, ...]} of rels, whose problems go to errs.
func channelIDs(rels *jsonapi.Object, errs *licensor.Errors, name string) ([]string, bool) {
	const typ = "Channel"
	rel, ok := rels.Object(name)
	if !ok {
		return nil, false
	}
	defer rel.Done()
	v, present := rel.Get("data")
	list, isList := v.([]any)
	if !present || !isList {
		rel.Fail(licensor.CodeInvalidRelationship, "data", "relationship %s needs data: an array of {\"type\": %q, \"id\": ...}", name, typ)
		return nil, false
	}
	if len(list) > licensor.MaxChannelsPerService {
		rel.Fail(licensor.CodeInvalidRelationship, "data", "at most %d channels per service", licensor.MaxChannelsPerService)
		return nil, false
	}
	before := len(*errs)
	ids := make([]string, 0, len(list))
	seen := map[string]bool{}
	for i, item := range list {
		m, isObj := item.(map[string]any)
		if !isObj {
			rel.Fail(licensor.CodeInvalidRelationship, "data/"+strconv.Itoa(i), "each item must be {\"type\": %q, \"id\": ...}", typ)
			continue
		}
		ident := jsonapi.NewObject(m, rel.Pointer()+"/data/"+strconv.Itoa(i), errs)
		ident.Type(typ)
		cid, ok := ident.Str("id", 0)
		ident.Done()
		switch {
		case !ok:
			if _, present := m["id"]; !present {
				ident.Fail(licensor.CodeInvalidRelationship, "id", "a channel needs an id")
			}
		case !licensor.ValidChannelID(*cid):
			ident.Fail(licensor.CodeInvalidRelationship, "id", "channel id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
		case seen[*cid]:
			ident.Fail(licensor.CodeInvalidRelationship, "id", "channel %q is listed twice", *cid)
		default:
			seen[*cid] = true
			ids = append(ids, *cid)
		}
	}
	return ids, len(*errs) == before
}

func hasPointer(errs licensor.Errors, ptr string) bool {
	for _, e := range errs {
		if strings.HasPrefix(e.Pointer, ptr) {
			return true
		}
	}
	return false
}
