package console

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
)

type productsData struct {
	Products []licensor.Product
	Title    string
	Next     string
	First    string
}

// products lists the products by title, with a title filter and keyset
// paging.
func (c *Console) products(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := productsData{Title: strings.TrimSpace(q.Get("filter[title]"))}
	pq := licensor.ProductQuery{Sort: licensor.SortOrder{Field: "title"}, Limit: 100}
	if d.Title != "" {
		pq.Filter.Title = &d.Title
	}
	scope := searchScope(q)
	if a := q.Get("after"); a != "" {
		cur, err := decodePageCursor(a, scope)
		if err != nil {
			return err
		}
		pq.After = cur
		first := cloneValues(q)
		first.Del("after")
		d.First = Prefix + "/products?" + first.Encode()
	}
	p, err := c.store.FindProducts(r.Context(), pq)
	if err != nil {
		return err
	}
	d.Products = p.Products
	if p.Next != nil {
		next := cloneValues(q)
		next.Set("after", encodePageCursor(p.Next, scope))
		d.Next = Prefix + "/products?" + next.Encode()
	}
	c.render(w, r, http.StatusOK, "products", s, page{Title: "Products", Nav: "products", Data: d})
	return nil
}

// productForm is the create and edit form's values, as typed.
type productForm struct {
	Title, Description, Type               string
	IsPremium, IsBuyable, IsVisible, Recur bool
	Price, Currency, Period                string
	Channels                               map[licensor.Service]string
	ETag                                   string
}

func formOf(p *licensor.Product) productForm {
	f := productForm{Title: p.Title, Description: p.Description, Type: p.Type, IsPremium: p.IsPremium, IsBuyable: p.IsBuyable,
		IsVisible: p.IsVisible, Recur: p.Recurring, Period: p.LicensePeriod, Channels: map[licensor.Service]string{}, ETag: p.ETag()}
	if p.PriceAmount != nil {
		f.Price = strconv.FormatInt(*p.PriceAmount, 10)
	}
	if p.PriceCurrency != nil {
		f.Currency = *p.PriceCurrency
	}
	for _, svc := range licensor.Services() {
		f.Channels[svc] = strings.Join(p.Channels[svc], ", ")
	}
	return f
}

func readProductForm(r *http.Request) productForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	f := productForm{Title: v("title"), Description: v("description"), Type: v("type"),
		IsPremium: r.PostFormValue("is_premium") == "1", IsBuyable: r.PostFormValue("is_buyable") == "1",
		IsVisible: r.PostFormValue("is_visible") == "1", Recur: r.PostFormValue("recurring") == "1",
		Price: v("price"), Currency: strings.ToUpper(v("currency")), Period: v("license_period"),
		Channels: map[licensor.Service]string{}, ETag: r.PostFormValue("etag")}
	for _, svc := range licensor.Services() {
		f.Channels[svc] = v("channels_" + string(svc))
	}
	return f
}

// patch is the whole form as a ProductPatch (every field present).
func (f *productForm) patch() (licensor.ProductPatch, error) {
	p := licensor.ProductPatch{Title: &f.Title, Description: &f.Description, Type: &f.Type, IsPremium: &f.IsPremium,
		IsBuyable: &f.IsBuyable, IsVisible: &f.IsVisible, Recurring: &f.Recur, LicensePeriod: &f.Period, Channels: licensor.Channels{}}
	var amount *int64
	if f.Price != "" {
		n, err := strconv.ParseInt(f.Price, 10, 64)
		if err != nil {
			return p, licensor.Errorf(licensor.CodeInvalidAttribute, "the price is a whole number of minor units (1223 for 12.23)")
		}
		amount = &n
	}
	var currency *string
	if f.Currency != "" {
		currency = &f.Currency
	}
	p.PriceAmount, p.PriceCurrency = &amount, &currency
	for _, svc := range licensor.Services() { // in order: the first bad field is the one named
		text := f.Channels[svc]
		ids := []string{}
		for _, id := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
			if !licensor.ValidChannelID(id) {
				return p, licensor.Errorf(licensor.CodeInvalidRelationship, "channels of %s: %q is not a channel id (1 to 64 characters of A-Z a-z 0-9 . _ : -)", svc, id)
			}
			ids = append(ids, id)
		}
		p.Channels[svc] = ids
	}
	return p, nil
}

type productData struct {
	Product  *licensor.Product // nil on the new-product form
	Form     productForm
	Services []licensor.Service
	Types    []string
	Live     int64 // live licenses of the product
	Problem  string
	Conflict bool // the edit met a newer version: Product is that version
	Confirm  bool
	Events   []licensor.Event
}

func (c *Console) productPage(w http.ResponseWriter, r *http.Request, s *session, status int, d *productData) error {
	d.Services, d.Types = licensor.Services(), licensor.KnownProductTypes()
	title := "New product"
	if d.Product != nil {
		title = fmt.Sprintf("Product %d", d.Product.ID)
		lp, err := c.store.FindLicenses(r.Context(), licensor.LicenseQuery{Filter: licensor.LicenseFilter{ProductID: &d.Product.ID}, Limit: 1, Count: true, Now: c.now()})
		if err != nil {
			return err
		}
		d.Live = *lp.Total
		ep, err := c.store.Events(r.Context(), licensor.EventQuery{Filter: licensor.EventFilter{ProductID: &d.Product.ID, Types: []licensor.EventType{licensor.EventProductCreated, licensor.EventProductUpdated}}, Limit: 50})
		if err == nil {
			d.Events = ep.Events
		}
	}
	c.render(w, r, status, "product", s, page{Title: title, Nav: "products", Data: d})
	return nil
}

func (c *Console) newProduct(w http.ResponseWriter, r *http.Request, s *session) error {
	p := licensor.NewProduct("")
	return c.productPage(w, r, s, http.StatusOK, &productData{Form: formOf(&p)})
}

func (c *Console) product(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	p, err := c.store.FindProductByID(r.Context(), id)
	if err != nil {
		return err
	}
	d := &productData{Product: p, Form: formOf(p), Confirm: strings.HasSuffix(r.URL.Path, "/delete")}
	return c.productPage(w, r, s, http.StatusOK, d)
}

// createProduct creates a product as POST /products does.
func (c *Console) createProduct(w http.ResponseWriter, r *http.Request, s *session) error {
	f := readProductForm(r)
	d := &productData{Form: f}
	patch, err := f.patch()
	if err == nil {
		p := patch.Apply(licensor.NewProduct(""))
		if err = p.Validate(); err == nil {
			if err = c.store.CreateProduct(r.Context(), &p, c.change(s)); err == nil {
				redirect(w, r, fmt.Sprintf("/products/%d?done=created", p.ID))
				return nil
			}
		}
	}
	_, msg, ok := explainError(err)
	if !ok {
		return err
	}
	d.Problem = msg
	return c.productPage(w, r, s, http.StatusBadRequest, d)
}

// updateProduct saves the edit form as PATCH /products/{id} with If-Match:
// when the product changed since the form was opened, nothing is written
// and the page shows the newer version beside the edit, which is kept.
func (c *Console) updateProduct(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	f := readProductForm(r)
	patch, err := f.patch()
	if err == nil {
		if _, err = c.store.UpdateProduct(r.Context(), id, patch, f.ETag, c.change(s)); err == nil {
			redirect(w, r, fmt.Sprintf("/products/%d?done=saved", id))
			return nil
		}
	}
	status, msg, ok := explainError(err)
	if !ok || status == http.StatusNotFound {
		return err
	}
	cur, ferr := c.store.FindProductByID(r.Context(), id)
	if ferr != nil {
		return ferr
	}
	d := &productData{Product: cur, Form: f, Problem: msg}
	if licensor.ErrorCode(err) == licensor.CodePreconditionFailed {
		d.Conflict = true
		d.Problem = "Someone changed this product since you opened it; nothing was saved. Its current version is shown below; your edit is kept in the form: save again to replace that version."
		d.Form.ETag = cur.ETag()
	}
	return c.productPage(w, r, s, status, d)
}

// deleteProduct deletes a product as DELETE /products/{id}[?cascade=true]
// with If-Match.
func (c *Console) deleteProduct(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	opts := licensor.DeleteProductOptions{Cascade: r.PostFormValue("cascade") == "1", IfMatch: r.PostFormValue("etag")}
	if err := c.store.DeleteProduct(r.Context(), id, opts, c.change(s)); err != nil {
		return err
	}
	c.log.Info("console: product deleted", "product", id, "cascade", opts.Cascade, "key", s.key.Name)
	redirect(w, r, "/products?done=deleted")
	return nil
}
