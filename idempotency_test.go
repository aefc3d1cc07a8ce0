package licensor_test

import (
	"testing"

	"github.com/licensor/licensor"
)

// TestWrittenRendersItsKind: what a write made is rendered by the Render
// of its kind, and a request that set none for it gets an error, not
// another write's response.
func TestWrittenRendersItsKind(t *testing.T) {
	p := &licensor.Product{ID: 7}
	renders := licensor.Renders{
		Product: func(p *licensor.Product) (licensor.StoredResponse, error) {
			return licensor.StoredResponse{Status: 201, Headers: map[string]string{"Location": p.ETag()}}, nil
		},
		Licenses: func(ls []licensor.License) (licensor.StoredResponse, error) {
			return licensor.StoredResponse{Status: 200 + len(ls)}, nil
		},
	}
	if resp, err := licensor.CreatedProduct(p)(renders); err != nil || resp.Status != 201 || resp.Headers["Location"] != p.ETag() {
		t.Errorf("CreatedProduct: %+v, %v", resp, err)
	}
	if resp, err := licensor.CreatedLicenses(make([]licensor.License, 2))(renders); err != nil || resp.Status != 202 {
		t.Errorf("CreatedLicenses: %+v, %v", resp, err)
	}
	for name, w := range map[string]licensor.Written{
		"DeletedLicenses":   licensor.DeletedLicenses(licensor.DeleteResult{Deleted: []int64{1}}),
		"CreatedWebhook":    licensor.CreatedWebhook(&licensor.Webhook{ID: 1}),
		"SuspendedLicenses": licensor.SuspendedLicenses(nil),
		"CancelledRenewal":  licensor.CancelledRenewal(&licensor.RenewalCancellation{}),
	} {
		if resp, err := w(renders); err == nil {
			t.Errorf("%s without its Render: %+v, no error", name, resp)
		}
	}
}
