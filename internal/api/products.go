package api

import (
	"net/http"
	"strings"

	"github.com/licensor/licensor"
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
	q := newQuery(r.URL)
	pq := licensor.ProductQuery{Filter: q.productFilter(), Sort: q.sort(productSortFields)}
	scope := q.scope(r.URL.Path)
	pq.Limit, pq.After, pq.Count = q.page(scope)
	if err := q.done(); err != nil {
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
		doc.Links.Next = nextLink(r.URL, encodeCursor(page.Next, scope))
	}
	doc.Meta.Total = page.Total
	return encode(w, http.StatusOK, doc)
}

func (s *Server) getProductById(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r.PathValue("product_id"), "product_id")
	if err != nil {
		return err
	}
	if err := newQuery(r.URL).done(); err != nil {
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
	return encode(w, status, productDocument{Data: productOut(p)})
}

func (s *Server) createProduct(w http.ResponseWriter, r *http.Request) error {
	item, base, err := readResource(r)
	if err != nil {
		return err
	}
	patch, err := parseProduct(item, 0)
	if err != nil {
		return at(base, err)
	}
	p := patch.Apply(licensor.NewProduct(""))
	if err := p.Validate(); err != nil {
		return at(base, err)
	}
	rend := func(result any) (licensor.StoredResponse, error) {
		p := result.(*licensor.Product)
		return jsonResponse(http.StatusCreated, productDocument{Data: productOut(p)},
			"Location", basePath+"/products/"+id(p.ID), "ETag", p.ETag())
	}
	if err := s.store.CreateProduct(r.Context(), &p, s.writeChange(r, rend)); err != nil {
		return at(base, err)
	}
	return respond(w, rend, &p)
}

func (s *Server) updateProduct(w http.ResponseWriter, r *http.Request) error {
	pid, err := pathID(r.PathValue("product_id"), "product_id")
	if err != nil {
		return err
	}
	item, base, err := readResource(r)
	if err != nil {
		return err
	}
	patch, err := parseProduct(item, pid)
	if err != nil {
		return at(base, err)
	}
	p, err := s.store.UpdateProduct(r.Context(), pid, patch, ifMatch(r), s.change(r))
	if err != nil {
		return at(base, err)
	}
	return writeProduct(w, http.StatusOK, p)
}

func (s *Server) deleteProductById(w http.ResponseWriter, r *http.Request) error {
	pid, err := pathID(r.PathValue("product_id"), "product_id")
	if err != nil {
		return err
	}
	q := newQuery(r.URL)
	cascade := q.boolean("cascade")
	if err := q.done(); err != nil {
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
