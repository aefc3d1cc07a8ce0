// Package codegen runs a BSS scenario through a client that oapi-codegen
// generated from the document a running licensor serves (.ci/api-ecosystem
// generates licclient, starts the server and sets LICENSOR_URL and
// LICENSOR_KEY). Every request and every answer goes through the generated
// types: what a generated client cannot express or decode fails here.
package codegen

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"licensor.invalid/codegen/licclient"
)

func client(t *testing.T) *licclient.ClientWithResponses {
	t.Helper()
	base, key := os.Getenv("LICENSOR_URL"), os.Getenv("LICENSOR_KEY")
	if base == "" || key == "" {
		t.Fatal("LICENSOR_URL and LICENSOR_KEY must name a running licensor and a write key (.ci/api-ecosystem sets them)")
	}
	c, err := licclient.NewClientWithResponses(base, licclient.WithRequestEditorFn(
		func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Apikey "+key)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// draft is a license for user to product, with an order id.
func draft(user, product, order string) licclient.LicenseDraft {
	d := licclient.LicenseDraft{
		Type:       licclient.LicenseResourceType("License"),
		Attributes: &licclient.LicenseDraftAttributes{OrderId: ptr(order)},
	}
	d.Relationships.User.Data = licclient.UserIdentifier{Type: licclient.UserResourceType("User"), Id: user}
	d.Relationships.Product.Data = licclient.ProductIdentifier{Type: licclient.ProductResourceType("Product"), Id: product}
	return d
}

func TestGeneratedClientScenario(t *testing.T) {
	ctx := context.Background()
	c := client(t)
	run := fmt.Sprint(time.Now().UnixNano()) // order ids stay unique across runs on one database

	// CreateProduct, with a price and a period.
	var pbody licclient.ProductCreateRequest
	if err := pbody.Data.FromProductDraft(licclient.ProductDraft{
		Type: licclient.ProductResourceType("Product"),
		Attributes: licclient.ProductDraftAttributes{
			Title:                "Sports " + run,
			PriceCurrencyAmount:  ptr(int64(1223)),
			PriceCurrencyIso4217: ptr("EUR"),
			LicensePeriod:        ptr("P1M"),
		},
	}); err != nil {
		t.Fatal(err)
	}
	pr, err := c.CreateProductWithApplicationVndAPIPlusJSONBodyWithResponse(ctx, nil, pbody)
	if err != nil {
		t.Fatal(err)
	}
	if pr.StatusCode() != http.StatusCreated || pr.ApplicationvndApiJSON201 == nil {
		t.Fatalf("CreateProduct: %d %s", pr.StatusCode(), pr.Body)
	}
	product := pr.ApplicationvndApiJSON201.Data
	if product.Attributes.LicensePeriod == nil || *product.Attributes.LicensePeriod != "P1M" {
		t.Errorf("CreateProduct: license_period %v", product.Attributes.LicensePeriod)
	}
	etag := pr.HTTPResponse.Header.Get("ETag")

	// CreateLicense, then the same order id again: 409 with meta.existing_id.
	var lbody licclient.LicenseCreateRequest
	if err := lbody.Data.FromLicenseDraft(draft("41", product.Id, "order-"+run)); err != nil {
		t.Fatal(err)
	}
	lr, err := c.CreateLicenseWithResponse(ctx, nil, lbody)
	if err != nil {
		t.Fatal(err)
	}
	if lr.StatusCode() != http.StatusCreated || lr.ApplicationvndApiJSON201 == nil {
		t.Fatalf("CreateLicense: %d %s", lr.StatusCode(), lr.Body)
	}
	license := lr.ApplicationvndApiJSON201.Data
	if license.Attributes.StopDate == nil || *license.Attributes.StopDate <= license.Attributes.StartDate {
		t.Errorf("CreateLicense: stop_date %v after start_date %d from the product's P1M", license.Attributes.StopDate, license.Attributes.StartDate)
	}
	if got := license.Attributes.PurchaseRecord.PriceCurrencyAmount; got == nil || *got != 1223 {
		t.Errorf("CreateLicense: price %v, want the product's 1223", got)
	}
	again, err := c.CreateLicenseWithResponse(ctx, nil, lbody)
	if err != nil {
		t.Fatal(err)
	}
	if again.StatusCode() != http.StatusConflict || again.ApplicationvndApiJSON409 == nil || len(again.ApplicationvndApiJSON409.Errors) != 1 {
		t.Fatalf("second CreateLicense with the order id: %d %s", again.StatusCode(), again.Body)
	}
	conflict := again.ApplicationvndApiJSON409.Errors[0]
	if conflict.Code != licclient.ErrorCode("ORDER_ID_CONFLICT") || conflict.Meta == nil || conflict.Meta.ExistingId == nil || *conflict.Meta.ExistingId != license.Id {
		t.Errorf("409: code %s, meta %+v; want ORDER_ID_CONFLICT with existing_id %s", conflict.Code, conflict.Meta, license.Id)
	}

	// BatchCreateLicenses: five more for one user, in request order.
	user := "batch-" + run
	batch := licclient.LicenseBatchCreateRequest{}
	for i := range 5 {
		batch.Data = append(batch.Data, draft(user, product.Id, fmt.Sprintf("batch-%s-%d", run, i)))
	}
	br, err := c.BatchCreateLicensesWithResponse(ctx, &licclient.BatchCreateLicensesParams{IdempotencyKey: ptr("batch-" + run)}, batch)
	if err != nil {
		t.Fatal(err)
	}
	if br.StatusCode() != http.StatusCreated || br.ApplicationvndApiJSON201 == nil || len(br.ApplicationvndApiJSON201.Data) != 5 {
		t.Fatalf("BatchCreateLicenses: %d %s", br.StatusCode(), br.Body)
	}
	var created []licclient.LicenseId
	for i, l := range br.ApplicationvndApiJSON201.Data {
		if want := fmt.Sprintf("batch-%s-%d", run, i); l.Attributes.OrderId == nil || *l.Attributes.OrderId != want {
			t.Errorf("batch item %d: order_id %v, want %s", i, l.Attributes.OrderId, want)
		}
		created = append(created, l.Id)
	}

	// GetLicenses two at a time, following links.next to the end.
	var listed []licclient.LicenseId
	params := &licclient.GetLicensesParams{FilterUserId: &user, PageSize: ptr(2)}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("links.next never ends")
		}
		gr, err := c.GetLicensesWithResponse(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if gr.StatusCode() != http.StatusOK || gr.ApplicationvndApiJSON200 == nil {
			t.Fatalf("GetLicenses: %d %s", gr.StatusCode(), gr.Body)
		}
		page := gr.ApplicationvndApiJSON200
		for _, l := range page.Data {
			listed = append(listed, l.Id)
		}
		if page.Links.Next == nil {
			break
		}
		next, err := url.Parse(*page.Links.Next)
		if err != nil {
			t.Fatal(err)
		}
		params.PageAfter = ptr(next.Query().Get("page[after]"))
		if *params.PageAfter == "" {
			t.Fatalf("links.next %q has no page[after]", *page.Links.Next)
		}
	}
	if fmt.Sprint(listed) != fmt.Sprint(created) {
		t.Errorf("paged list: %v, want %v", listed, created)
	}

	// UpdateProduct with If-Match: a stale tag gets 412, the current one 200.
	patch := func(tag string) *licclient.UpdateProductResponse {
		var body licclient.ProductUpdateRequest
		if err := body.Data.FromProductPatch(licclient.ProductPatch{
			Type:       licclient.ProductResourceType("Product"),
			Id:         &product.Id,
			Attributes: &licclient.ProductPatchAttributes{Title: ptr("Sports and more " + run)},
		}); err != nil {
			t.Fatal(err)
		}
		r, err := c.UpdateProductWithResponse(ctx, product.Id, &licclient.UpdateProductParams{IfMatch: &tag}, body)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if etag == "" {
		t.Fatal("CreateProduct: no ETag")
	}
	if r := patch(`"stale"`); r.StatusCode() != http.StatusPreconditionFailed || r.ApplicationvndApiJSON412 == nil {
		t.Errorf("UpdateProduct with a stale If-Match: %d %s", r.StatusCode(), r.Body)
	}
	up := patch(etag)
	if up.StatusCode() != http.StatusOK || up.ApplicationvndApiJSON200 == nil || up.ApplicationvndApiJSON200.Data.Attributes.Title != "Sports and more "+run {
		t.Fatalf("UpdateProduct: %d %s", up.StatusCode(), up.Body)
	}

	// Deletes: one license, the batch, then the product (no live licenses left).
	if r, err := c.DeleteLicenseByIdWithResponse(ctx, license.Id); err != nil || r.StatusCode() != http.StatusNoContent {
		t.Fatalf("DeleteLicenseById: %v %v", err, r)
	}
	if r, err := c.GetLicenseByIdWithResponse(ctx, license.Id, nil); err != nil || r.StatusCode() != http.StatusNotFound || r.ApplicationvndApiJSON404 == nil {
		t.Errorf("GetLicenseById after the delete: %v %v", err, r)
	}
	del := licclient.LicenseBatchDeleteRequest{}
	for _, id := range created {
		del.Data = append(del.Data, licclient.LicenseIdentifier{Type: licclient.LicenseResourceType("License"), Id: id})
	}
	dr, err := c.BatchDeleteLicensesWithResponse(ctx, nil, del)
	if err != nil {
		t.Fatal(err)
	}
	if dr.StatusCode() != http.StatusOK || dr.ApplicationvndApiJSON200 == nil || len(dr.ApplicationvndApiJSON200.Meta.Deleted) != 5 {
		t.Fatalf("BatchDeleteLicenses: %d %s", dr.StatusCode(), dr.Body)
	}
	tag := up.HTTPResponse.Header.Get("ETag")
	if r, err := c.DeleteProductByIdWithResponse(ctx, product.Id, &licclient.DeleteProductByIdParams{IfMatch: &tag}); err != nil || r.StatusCode() != http.StatusNoContent {
		t.Fatalf("DeleteProductById: %v %v", err, r)
	}
}
