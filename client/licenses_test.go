package client_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
)

const userAndProduct = `"relationships":{"user":{"data":{"type":"User","id":"41"}},"product":{"data":{"type":"Product","id":"7"}}}`

func TestCreateLicense(t *testing.T) {
	c, f := serve(t, reply{status: 201, body: doc(licenseJSON), header: map[string][]string{"Location": {base + "/licenses/42"}}})
	l, err := c.CreateLicense(t.Context(), licensor.LicenseDraft{
		UserID: "41", ProductID: 7,
		Status: ptr(licensor.StatusSuspended), StartDate: ptr[int64](1700000000), StopDate: ptr[int64](1702592000),
		OrderID: ptr("abc"), Recurring: ptr(false), ExpiryDate: ptr[int64](1702592001),
		PriceAmount: ptr[int64](0), PriceCurrency: ptr("EUR"), PurchaseTimestamp: ptr[int64](1699999999),
		PaymentMethod: ptr("credit card"),
	})
	if err != nil {
		t.Fatal(err)
	}
	checkRequest(t, f.only(), "POST", base+"/licenses", nil, `{"data":{"type":"License",
	  "attributes":{"status":"SUSPENDED","start_date":1700000000,"stop_date":1702592000,"order_id":"abc",
	    "renew_record":{"recurring":false,"expiry_date":1702592001},
	    "purchase_record":{"price_currency_amount":0,"price_currency_iso4217":"EUR","purchase_timestamp":1699999999,"payment_method":"credit card"}},
	  `+userAndProduct+`}}`)
	if want := wantLicense(); !reflect.DeepEqual(*l, want) {
		t.Errorf("license\n got %+v\nwant %+v", *l, want)
	}
}

func TestCreateLicenseSendsOnlyWhatIsSet(t *testing.T) {
	tests := []struct {
		name  string
		draft licensor.LicenseDraft
		attrs string
	}{
		{"nothing", licensor.LicenseDraft{UserID: "41", ProductID: 7}, `{}`},
		{"recurring only", licensor.LicenseDraft{UserID: "41", ProductID: 7, Recurring: ptr(true)},
			`{"renew_record":{"recurring":true}}`},
		{"payment method only", licensor.LicenseDraft{UserID: "41", ProductID: 7, PaymentMethod: ptr("voucher")},
			`{"purchase_record":{"payment_method":"voucher"}}`},
		{"zero values are sent", licensor.LicenseDraft{UserID: "41", ProductID: 7, StartDate: ptr[int64](0), OrderID: ptr("")},
			`{"start_date":0,"order_id":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := serve(t, reply{status: 201, body: doc(licenseJSON)})
			if _, err := c.CreateLicense(t.Context(), tt.draft); err != nil {
				t.Fatal(err)
			}
			checkRequest(t, f.only(), "POST", base+"/licenses", nil,
				`{"data":{"type":"License","attributes":`+tt.attrs+`,`+userAndProduct+`}}`)
		})
	}
}

func TestLicense(t *testing.T) {
	tests := []struct {
		name string
		body string
		want licensor.License
	}{
		{"object", doc(licenseJSON), wantLicense()},
		{"nulls", doc(licenseNullsJSON), wantLicenseNulls()},
		{"one-element array", doc("[" + licenseJSON + "]"), wantLicense()},
		{"unknown members are ignored", doc(strings.Replace(licenseJSON, `"created_at"`, `"future":{"x":1},"created_at"`, 1)), wantLicense()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := serve(t, reply{status: 200, body: tt.body})
			l, err := c.License(t.Context(), 42)
			if err != nil {
				t.Fatal(err)
			}
			checkRequest(t, f.only(), "GET", base+"/licenses/42", nil, "")
			if !reflect.DeepEqual(*l, tt.want) {
				t.Errorf("license\n got %+v\nwant %+v", *l, tt.want)
			}
		})
	}
}

func TestLicenseBadResponse(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"wrong type", doc(strings.Replace(licenseJSON, `"type":"License"`, `"type":"Product"`, 1)), `resource type "Product"`},
		{"bad id", doc(strings.Replace(licenseJSON, `"id":"42"`, `"id":"x42"`, 1)), `license id "x42"`},
		{"bad product id", doc(strings.Replace(licenseJSON, `"id":"7"`, `"id":"-7"`, 1)), `product id "-7"`},
		{"no user", doc(strings.Replace(licenseJSON, `{"data":{"type":"User","id":"41"}}`, `{"data":null}`, 1)), "relationships user and product"},
		{"not JSON", "<html>", "decoding response"},
		{"empty", "", "empty response body"},
		{"two in array", doc("[" + licenseJSON + "," + licenseJSON + "]"), "2 resources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := serve(t, reply{status: 200, body: tt.body})
			_, err := c.License(t.Context(), 42)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "client: GetLicenseById: ") {
				t.Fatalf("err = %v, want one about %q", err, tt.want)
			}
		})
	}
}

func TestLicensesQuery(t *testing.T) {
	tests := []struct {
		name string
		q    client.LicenseQuery
		want map[string][]string
	}{
		{"empty", client.LicenseQuery{}, nil},
		{"everything", client.LicenseQuery{
			UserID: "41", ProductID: 7, OrderID: "a b&c", Statuses: []licensor.Status{licensor.StatusActive, licensor.StatusSuspended},
			Recurring: ptr(false),
			Ranges: []licensor.Range{
				{Field: "start_date", Op: "gte", Value: 1700000000},
				{Field: "stop_date", Op: "lt", Value: 1800000000},
				{Field: "created_at", Op: "gt", Value: -1},
			},
			Sort: "-created_at", PageSize: 10, After: "opaque+cursor/=", Count: true, IncludeProducts: true,
		}, map[string][]string{
			"filter[user_id]": {"41"}, "filter[product_id]": {"7"}, "filter[order_id]": {"a b&c"},
			"filter[status]": {"ACTIVE,SUSPENDED"}, "filter[recurring]": {"false"},
			"filter[start_date][gte]": {"1700000000"}, "filter[stop_date][lt]": {"1800000000"}, "filter[created_at][gt]": {"-1"},
			"sort": {"-created_at"}, "page[size]": {"10"}, "page[after]": {"opaque+cursor/="}, "count": {"true"}, "include": {"product"},
		}},
		{"recurring true", client.LicenseQuery{Recurring: ptr(true)}, map[string][]string{"filter[recurring]": {"true"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := serve(t, reply{status: 200, body: `{"data":[],"links":{"self":"/x"},"meta":{}}`})
			page, err := c.Licenses(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			checkRequest(t, f.only(), "GET", base+"/licenses", tt.want, "")
			if len(page.Licenses) != 0 || page.Products != nil || page.Next != "" || page.Total != nil {
				t.Errorf("page %+v, want an empty last page", page)
			}
		})
	}
}

func TestLicensesPage(t *testing.T) {
	c, _ := serve(t, reply{status: 200, body: `{"data":[` + licenseJSON + `,` + licenseNullsJSON + `],
	  "included":[` + productJSON + `,` + productNullsJSON + `],
	  "links":{"self":"/api/license/management/v4/licenses?include=product&count=true&page%5Bsize%5D=2",
	           "next":"/api/license/management/v4/licenses?count=true&include=product&page%5Bafter%5D=eyJpZCI6NDN9&page%5Bsize%5D=2"},
	  "meta":{"total":5}}`})
	page, err := c.Licenses(t.Context(), client.LicenseQuery{PageSize: 2, Count: true, IncludeProducts: true})
	if err != nil {
		t.Fatal(err)
	}
	want := &client.LicensePage{
		Licenses: []licensor.License{wantLicense(), wantLicenseNulls()},
		Products: []licensor.Product{wantProduct(), wantProductNulls()},
		Next:     "eyJpZCI6NDN9",
		Total:    ptr[int64](5),
	}
	if !reflect.DeepEqual(page, want) {
		t.Errorf("page\n got %+v\nwant %+v", page, want)
	}
}

func TestLicensesBadNextLink(t *testing.T) {
	c, _ := serve(t, reply{status: 200, body: `{"data":[],"links":{"self":"/x","next":"/x?page%5Bsize%5D=2"},"meta":{}}`})
	_, err := c.Licenses(t.Context(), client.LicenseQuery{})
	if err == nil || !strings.Contains(err.Error(), "page[after]") {
		t.Fatalf("err = %v", err)
	}
}

func TestUserLicenses(t *testing.T) {
	c, f := serve(t,
		reply{status: 200, body: `{"data":[` + licenseJSON + `],"links":{"self":"/x"},"meta":{"total":1}}`},
		reply{status: 200, body: `{"data":[],"links":{"self":"/x"},"meta":{}}`},
	)
	page, err := c.UserLicenses(t.Context(), "41", client.LicenseQuery{UserID: "41", Statuses: []licensor.Status{licensor.StatusActive}, Count: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Licenses) != 1 || page.Licenses[0].ID != 42 || page.Total == nil || *page.Total != 1 {
		t.Errorf("page %+v", page)
	}
	// A user id with characters that need escaping in a path.
	if _, err := c.UserLicenses(t.Context(), "a b/c", client.LicenseQuery{}); err != nil {
		t.Fatal(err)
	}
	got := f.requests()
	checkRequest(t, got[0], "GET", base+"/users/41/licenses", map[string][]string{"filter[status]": {"ACTIVE"}, "count": {"true"}}, "")
	checkRequest(t, got[1], "GET", base+"/users/a b/c/licenses", nil, "")
	if got[1].Raw != base+"/users/a%20b%2Fc/licenses" {
		t.Errorf("escaped path %q", got[1].Raw)
	}

	// A query for another user is a mistake, caught before any request.
	if _, err := c.UserLicenses(t.Context(), "41", client.LicenseQuery{UserID: "42"}); err == nil {
		t.Error("UserLicenses with another query UserID: no error")
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// pageOf is a license list page holding licenses with the given ids.
func pageOf(next string, ids ...string) string {
	var items []string
	for _, id := range ids {
		items = append(items, strings.NewReplacer(`"id":"42"`, `"id":"`+id+`"`, "/licenses/42", "/licenses/"+id).Replace(licenseJSON))
	}
	links := `{"self":"/x"}`
	if next != "" {
		links = `{"self":"/x","next":"` + base + `/licenses?filter%5Bproduct_id%5D=7&page%5Bafter%5D=` + next + `&page%5Bsize%5D=2"}`
	}
	return `{"data":[` + strings.Join(items, ",") + `],"links":` + links + `,"meta":{}}`
}

func TestAllLicenses(t *testing.T) {
	c, f := serve(t,
		reply{status: 200, body: pageOf("c2", "1", "2")},
		reply{status: 200, body: pageOf("c4", "3", "4")},
		reply{status: 200, body: pageOf("", "5")},
	)
	var ids []int64
	for l, err := range c.AllLicenses(t.Context(), client.LicenseQuery{ProductID: 7, PageSize: 2, Count: true, IncludeProducts: true}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.ID)
	}
	if want := []int64{1, 2, 3, 4, 5}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	got := f.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, after := range []string{"", "c2", "c4"} {
		want := map[string][]string{"filter[product_id]": {"7"}, "page[size]": {"2"}}
		if after != "" {
			want["page[after]"] = []string{after}
		}
		checkRequest(t, got[i], "GET", base+"/licenses", want, "")
	}
}

func TestAllLicensesStopsEarly(t *testing.T) {
	c, f := serve(t, reply{status: 200, body: pageOf("c2", "1", "2")})
	for l, err := range c.AllLicenses(t.Context(), client.LicenseQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		if l.ID == 1 {
			break
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestAllLicensesError(t *testing.T) {
	c, _ := serve(t,
		reply{status: 200, body: pageOf("c2", "1", "2")},
		reply{status: 400, body: `{"errors":[{"status":"400","code":"INVALID_CURSOR","title":"Invalid cursor","source":{"parameter":"page[after]"}}]}`},
	)
	var ids []int64
	var errs []error
	for l, err := range c.AllLicenses(t.Context(), client.LicenseQuery{}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, l.ID)
	}
	if !reflect.DeepEqual(ids, []int64{1, 2}) || len(errs) != 1 || licensor.ErrorCode(errs[0]) != licensor.CodeInvalidCursor {
		t.Errorf("ids %v, errs %v", ids, errs)
	}
}

func TestAllLicensesSameCursor(t *testing.T) {
	c, _ := serve(t,
		reply{status: 200, body: pageOf("c2", "1", "2")},
		reply{status: 200, body: pageOf("c2", "3", "4")},
	)
	n, errs := 0, 0
	for _, err := range c.AllLicenses(t.Context(), client.LicenseQuery{}) {
		if err != nil {
			errs++
			continue
		}
		n++
	}
	if n != 4 || errs != 1 {
		t.Errorf("%d licenses and %d errors, want 4 and 1", n, errs)
	}
}

func TestCreateLicenses(t *testing.T) {
	c, f := serve(t, reply{status: 201, body: `{"data":[` + licenseJSON + `,` + licenseNullsJSON + `]}`})
	ls, err := c.CreateLicenses(t.Context(), []licensor.LicenseDraft{
		{UserID: "41", ProductID: 7, OrderID: ptr("abc")},
		{UserID: "user:41", ProductID: 8, StopDate: ptr[int64](1800000000)},
	}, client.WithIdempotencyKey("batch-1"))
	if err != nil {
		t.Fatal(err)
	}
	got := f.only()
	checkRequest(t, got, "POST", base+"/licenses/batch_create", nil, `{"data":[
	  {"type":"License","attributes":{"order_id":"abc"},`+userAndProduct+`},
	  {"type":"License","attributes":{"stop_date":1800000000},"relationships":{"user":{"data":{"type":"User","id":"user:41"}},"product":{"data":{"type":"Product","id":"8"}}}}]}`)
	if got.Header.Get("Idempotency-Key") != "batch-1" {
		t.Errorf("Idempotency-Key %q", got.Header.Get("Idempotency-Key"))
	}
	if want := []licensor.License{wantLicense(), wantLicenseNulls()}; !reflect.DeepEqual(ls, want) {
		t.Errorf("licenses\n got %+v\nwant %+v", ls, want)
	}
}

func TestCreateLicensesEmpty(t *testing.T) {
	c, f := serve(t, reply{status: 201, body: `{"data":[]}`})
	ls, err := c.CreateLicenses(t.Context(), nil)
	if err != nil || len(ls) != 0 {
		t.Fatalf("CreateLicenses(nil) = %v, %v", ls, err)
	}
	checkRequest(t, f.only(), "POST", base+"/licenses/batch_create", nil, `{"data":[]}`)
}

func TestDeleteLicense(t *testing.T) {
	c, f := serve(t, reply{status: 204})
	if err := c.DeleteLicense(t.Context(), 42); err != nil {
		t.Fatal(err)
	}
	checkRequest(t, f.only(), "DELETE", base+"/licenses/42", nil, "")
}

func TestDeleteLicenses(t *testing.T) {
	tests := []struct {
		name         string
		allowMissing bool
		reply        string
		query        map[string][]string
		deleted      []int64
		missing      []int64
	}{
		{"strict", false, `{"meta":{"deleted":["1","2","9"]}}`, nil, []int64{1, 2, 9}, nil},
		{"allow missing", true, `{"meta":{"deleted":["1","2"],"missing":["9"]}}`, map[string][]string{"allow_missing": {"true"}}, []int64{1, 2}, []int64{9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, f := serve(t, reply{status: 200, body: tt.reply})
			deleted, missing, err := c.DeleteLicenses(t.Context(), []int64{1, 2, 9}, tt.allowMissing)
			if err != nil {
				t.Fatal(err)
			}
			checkRequest(t, f.only(), "POST", base+"/licenses/batch_delete", tt.query,
				`{"data":[{"type":"License","id":"1"},{"type":"License","id":"2"},{"type":"License","id":"9"}]}`)
			if !reflect.DeepEqual(deleted, tt.deleted) || !reflect.DeepEqual(missing, tt.missing) {
				t.Errorf("deleted %v missing %v, want %v %v", deleted, missing, tt.deleted, tt.missing)
			}
		})
	}
}

func TestDeleteLicensesNotFound(t *testing.T) {
	c, _ := serve(t, reply{status: 404, body: `{"errors":[
	  {"status":"404","code":"LICENSE_NOT_FOUND","title":"License not found","detail":"no license 9","source":{"pointer":"/data/2/id"}},
	  {"status":"404","code":"LICENSE_NOT_FOUND","title":"License not found","detail":"no license 10","source":{"pointer":"/data/3/id"}}]}`})
	_, _, err := c.DeleteLicenses(t.Context(), []int64{1, 2, 9, 10}, false)
	apiErr := asError(t, err)
	var items []int
	for _, o := range apiErr.Errors {
		i, ok := o.Index()
		if !ok {
			t.Errorf("no index in %+v", o)
		}
		items = append(items, i)
	}
	if !reflect.DeepEqual(items, []int{2, 3}) {
		t.Errorf("items %v", items)
	}
	if got := err.Error(); got != "client: 404 LICENSE_NOT_FOUND: no license 9 (at /data/2/id) (and 1 more) [request req-1]" {
		t.Errorf("Error() = %q", got)
	}
}
