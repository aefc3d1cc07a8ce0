package api

import (
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

// The fields and operators of list parameters, read once.
var (
	licenseSortFields  = licensor.LicenseSortFields()
	productSortFields  = licensor.ProductSortFields()
	licenseRangeFields = licensor.LicenseRangeFields()
	rangeOps           = licensor.RangeOps()
)

// licenseFilter reads the filters of a license list. byUser is set on
// GetLicensesByUser, where the user comes from the path.
func licenseFilter(q *jsonapi.Query, byUser bool) licensor.LicenseFilter {
	var f licensor.LicenseFilter
	if !byUser {
		if s := q.Text("filter[user_id]", 64); s != nil {
			if !licensor.ValidUserID(*s) {
				q.Fail(licensor.CodeInvalidParameter, "filter[user_id]", "a user id is 1 to 64 characters of A-Z a-z 0-9 . _ : -")
			}
			f.UserID = s
		}
	}
	f.ProductID = q.Int("filter[product_id]", 1)
	f.OrderID = q.Text("filter[order_id]", licensor.MaxOrderIDLen)
	if s, ok := q.Get("filter[status]"); ok {
		for _, part := range strings.Split(s, ",") {
			st := licensor.Status(strings.TrimSpace(part))
			if !st.Valid() {
				q.Fail(licensor.CodeInvalidParameter, "filter[status]", "unknown status %q; one of %s", part, joinStatuses())
				continue
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	f.Recurring = q.Bool("filter[recurring]")
	for _, field := range licenseRangeFields {
		for _, op := range rangeOps {
			name := "filter[" + field + "][" + op + "]"
			if v := q.Int(name, -1<<62); v != nil {
				f.Ranges = append(f.Ranges, licensor.Range{Field: field, Op: op, Value: *v})
			}
		}
	}
	return f
}

func productFilter(q *jsonapi.Query) licensor.ProductFilter {
	var f licensor.ProductFilter
	if t := q.Text("filter[type]", 64); t != nil {
		if !licensor.ValidProductType(*t) {
			q.Fail(licensor.CodeInvalidParameter, "filter[type]", "a product type is an upper-case identifier such as CHANNEL_GROUP")
		}
		f.Type = t
	}
	f.IsPremium = q.Bool("filter[is_premium]")
	f.IsBuyable = q.Bool("filter[is_buyable]")
	f.IsVisible = q.Bool("filter[is_visible]")
	f.Title = q.Text("filter[title]", licensor.MaxTitleLen)
	return f
}

// includeProduct reads include=product (the only inclusion licenses offer).
func includeProduct(q *jsonapi.Query) bool {
	s, ok := q.Get("include")
	if !ok {
		return false
	}
	if s != "product" {
		q.Fail(licensor.CodeInvalidParameter, "include", "only include=product is supported")
		return false
	}
	return true
}

func joinStatuses() string {
	parts := make([]string, len(licensor.Statuses()))
	for i, s := range licensor.Statuses() {
		parts[i] = string(s)
	}
	return strings.Join(parts, " ")
}
