package client_test

import (
	"reflect"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
)

var etagHeader = map[string][]string{"Etag": {`"7.1"`}}

func TestCreateProduct(t *testing.T) {
	tests := []struct {
		name    string
		product licensor.Product
		body    string
	}{
		{"defaults", licensor.NewProduct("Sports"),
			`{"data":{"type":"Product","attributes":{"title":"Sports","type":"CHANNEL_GROUP",
			  "is_premium":false,"is_buyable":true,"is_visible":true,"recurring":false}}}`},
		{"everything", func() licensor.Product {
			p := licensor.NewProduct("Sports")
			p.Description = "All the sports"
			p.Type = "SVOD"
			p.IsPremium, p.IsBuyable, p.IsVisible, p.Recurring = true, false, false, true
			p.PriceAmount, p.PriceCurrency, p.LicensePeriod = ptr[int64](999), ptr("EUR"), "P1M"
			p.Channels = licensor.Channels{licensor.ServiceLive: {"c1", "c2"}, licensor.ServiceNPVR: nil}
			return p
		}(),
			`{"data":{"type":"Product",
			  "attributes":{"title":"Sports","description":"All the sports","type":"SVOD",
			    "is_premium":true,"is_buyable":false,"is_visible":false,"recurring":true,
			    "price_currency_amount":999,"price_currency_iso4217":"EUR","license_period":"P1M"},
			  "relationships":{"live":{"data":[{"type":"Channel","id":"c1"},{"type":"Channel","id":"c2"}]},"npvr":{"data":[]}}}}`},
		{"zero product", licensor.Product{Title: "Bare"},
			`{"data":{"type":"Product","attributes":{"title":"Bare",
			  "is_premium":false,"is_buyable":false,"is_visible":false,"recurring":false}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := serve(t, reply{status: 201, body: doc(productJSON), header: map[string][]string{
				"Etag": {`"7.1"`}, "Location": {base + "/products/7"}}})
			p, etag, err := c.CreateProduct(t.Context(), tt.product)
			if err != nil {
				t.Fatal(err)
			}
			checkRequest(t, f.only(), "POST", base+"/products", nil, tt.body)
			if etag != `"7.1"` {
				t.Errorf("etag %q", etag)
			}
			if want := wantProduct(); !reflect.DeepEqual(*p, want) {
				t.Errorf("product\n got %+v\nwant %+v", *p, want)
			}
		})
	}
}

func TestProduct(t *testing.T) {
	tests := []struct {
		name string
		body string
		want licensor.Product
	}{
		{"values", doc(productJSON), wantProduct()},
		{"nulls", doc(productNullsJSON), wantProductNulls()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := serve(t, reply{status: 200, body: tt.body, header: etagHeader})
			p, etag, err := c.Product(t.Context(), 7)
			if err != nil {
				t.Fatal(err)
			}
			checkRequest(t, f.only(), "GET", base+"/products/7", nil, "")
			if etag != `"7.1"` {
				t.Errorf("etag %q", etag)
			}
			if !reflect.DeepEqual(*p, tt.want) {
				t.Errorf("product\n got %+v\nwant %+v", *p, tt.want)
			}
		})
	}
}

func TestUpdateProduct(t *testing.T) {
	tests := []struct {
		name    string
		patch   licensor.ProductPatch
		ifMatch string
		body    string
	}{
		{"empty", licensor.ProductPatch{}, "",
			`{"data":{"type":"Product","id":"7","attributes":{}}}`},
		{"set everything", licensor.ProductPatch{
			Title: ptr("Sports+"), Description: ptr(""), Type: ptr("TVOD"),
			IsPremium: ptr(true), IsBuyable: ptr(false), IsVisible: ptr(false), Recurring: ptr(true),
			PriceAmount: ptr(ptr[int64](1999)), PriceCurrency: ptr(ptr("USD")), LicensePeriod: ptr("P1Y"),
			Channels: licensor.Channels{licensor.ServiceCatchup: {"c1"}, licensor.ServiceStartover: {}},
		}, `"7.1"`,
			`{"data":{"type":"Product","id":"7",
			  "attributes":{"title":"Sports+","description":"","type":"TVOD",
			    "is_premium":true,"is_buyable":false,"is_visible":false,"recurring":true,
			    "price_currency_amount":1999,"price_currency_iso4217":"USD","license_period":"P1Y"},
			  "relationships":{"catchup":{"data":[{"type":"Channel","id":"c1"}]},"startover":{"data":[]}}}}`},
		{"clear", licensor.ProductPatch{
			PriceAmount: ptr[*int64](nil), PriceCurrency: ptr[*string](nil), LicensePeriod: ptr(""),
		}, "",
			`{"data":{"type":"Product","id":"7",
			  "attributes":{"price_currency_amount":null,"price_currency_iso4217":null,"license_period":null}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := serve(t, reply{status: 200, body: doc(productJSON), header: map[string][]string{"Etag": {`"7.2"`}}})
			p, etag, err := c.UpdateProduct(t.Context(), 7, tt.patch, tt.ifMatch)
			if err != nil {
				t.Fatal(err)
			}
			got := f.only()
			checkRequest(t, got, "PATCH", base+"/products/7", nil, tt.body)
			if h, ok := got.Header["If-Match"]; tt.ifMatch == "" && ok || tt.ifMatch != "" && (len(h) != 1 || h[0] != tt.ifMatch) {
				t.Errorf("If-Match %q, want %q", h, tt.ifMatch)
			}
			if etag != `"7.2"` || p.ID != 7 {
				t.Errorf("product %d etag %q", p.ID, etag)
			}
		})
	}
}

func TestUpdateProductPreconditionFailed(t *testing.T) {
	c, _ := serve(t, reply{status: 412, body: `{"errors":[{"status":"412","code":"PRECONDITION_FAILED","title":"Precondition failed","detail":"the product changed"}]}`})
	_, etag, err := c.UpdateProduct(t.Context(), 7, licensor.ProductPatch{Title: ptr("x")}, `"7.0"`)
	if licensor.ErrorCode(err) != licensor.CodePreconditionFailed || etag != "" {
		t.Fatalf("err = %v, etag %q", err, etag)
	}
}

func TestDeleteProduct(t *testing.T) {
	tests := []struct {
		name    string
		cascade bool
		ifMatch string
		query   map[string][]string
	}{
		{"plain", false, "", nil},
		{"cascade if-match", true, `"7.3"`, map[string][]string{"cascade": {"true"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := serve(t, reply{status: 204})
			if err := c.DeleteProduct(t.Context(), 7, tt.cascade, tt.ifMatch); err != nil {
				t.Fatal(err)
			}
			got := f.only()
			checkRequest(t, got, "DELETE", base+"/products/7", tt.query, "")
			if h := got.Header.Get("If-Match"); h != tt.ifMatch {
				t.Errorf("If-Match %q, want %q", h, tt.ifMatch)
			}
		})
	}
}

func TestDeleteProductInUse(t *testing.T) {
	c, _ := serve(t, reply{status: 409, body: `{"errors":[{"status":"409","code":"PRODUCT_IN_USE","title":"Product in use","detail":"3 live licenses"}]}`})
	err := c.DeleteProduct(t.Context(), 7, false, "")
	if licensor.ErrorCode(err) != licensor.CodeProductInUse {
		t.Fatalf("err = %v", err)
	}
}

func TestProducts(t *testing.T) {
	c, f := serve(t, reply{status: 200, body: `{"data":[` + productJSON + `,` + productNullsJSON + `],
	  "links":{"self":"/x","next":"` + base + `/products?page%5Bafter%5D=abc%3D&sort=title"},"meta":{"total":12}}`})
	page, err := c.Products(t.Context(), client.ProductQuery{
		Type: "SVOD", IsPremium: ptr(true), IsBuyable: ptr(false), IsVisible: ptr(true), Title: "spo rt",
		Sort: "title", PageSize: 2, After: "xyz", Count: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkRequest(t, f.only(), "GET", base+"/products", map[string][]string{
		"filter[type]": {"SVOD"}, "filter[is_premium]": {"true"}, "filter[is_buyable]": {"false"}, "filter[is_visible]": {"true"},
		"filter[title]": {"spo rt"}, "sort": {"title"}, "page[size]": {"2"}, "page[after]": {"xyz"}, "count": {"true"},
	}, "")
	want := &client.ProductPage{Products: []licensor.Product{wantProduct(), wantProductNulls()}, Next: "abc=", Total: ptr[int64](12)}
	if !reflect.DeepEqual(page, want) {
		t.Errorf("page\n got %+v\nwant %+v", page, want)
	}
}

func TestAllProducts(t *testing.T) {
	c, f := serve(t,
		reply{status: 200, body: `{"data":[` + productJSON + `],"links":{"self":"/x","next":"/x?page%5Bafter%5D=p1"},"meta":{"total":2}}`},
		reply{status: 200, body: `{"data":[` + productNullsJSON + `],"links":{"self":"/x"},"meta":{"total":2}}`},
	)
	var ids []int64
	for p, err := range c.AllProducts(t.Context(), client.ProductQuery{Count: true}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	if !reflect.DeepEqual(ids, []int64{7, 8}) {
		t.Errorf("ids %v", ids)
	}
	got := f.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	checkRequest(t, got[0], "GET", base+"/products", nil, "")
	checkRequest(t, got[1], "GET", base+"/products", map[string][]string{"page[after]": {"p1"}}, "")
}
