package api

import (
	"encoding/json"
	"testing"

	"github.com/licensor/licensor"
)

// TestEventDataIsTheAPIForm checks that the resources events carry
// (licensor.LicenseResource and ProductResource, rendered by the stores)
// are byte for byte what this package's encoder sends, so that the two
// forms can never drift apart.
func TestEventDataIsTheAPIForm(t *testing.T) {
	stop, expiry, order, amount, cur, method := int64(1_800_000_000), int64(1_800_000_100), "o-1", int64(999), "EUR", "card"
	licenses := []licensor.License{
		{ID: 1, UserID: "41", ProductID: 7, Status: licensor.StatusActive, StartDate: 1_700_000_000, PurchaseTimestamp: 1_700_000_000, CreatedAt: 1_700_000_000},
		{ID: 2, UserID: "u.x:y-z", ProductID: 8, Status: licensor.StatusActive, StartDate: 1_700_000_000, StopDate: &stop,
			OrderID: &order, Recurring: true, ExpiryDate: &expiry, PriceAmount: &amount, PriceCurrency: &cur,
			PurchaseTimestamp: 1_700_000_001, PaymentMethod: &method, CreatedAt: 1_700_000_002},
	}
	for _, now := range []int64{1_750_000_000, 1_900_000_000} { // before and after the stop date
		for i := range licenses {
			want, err := json.Marshal(licenseOut(&licenses[i], now))
			if err != nil {
				t.Fatal(err)
			}
			if got := licensor.LicenseResource(&licenses[i], now); string(got) != string(want) {
				t.Errorf("license %d at %d:\n got %s\nwant %s", licenses[i].ID, now, got, want)
			}
		}
	}
	products := []licensor.Product{licensor.NewProduct("Plain"), {
		ID: 7, Title: "Sport \"megapack\" <€>", Description: "d", Type: "SVOD", IsPremium: true, IsBuyable: false, IsVisible: true,
		Recurring: true, PriceAmount: &amount, PriceCurrency: &cur, LicensePeriod: "P1M",
		Channels:  licensor.Channels{licensor.ServiceLive: {"espn", "bbc"}, licensor.ServiceNPVR: {"espn"}},
		CreatedAt: 1, UpdatedAt: 2, Version: 3,
	}}
	for i := range products {
		want, err := json.Marshal(productOut(&products[i]))
		if err != nil {
			t.Fatal(err)
		}
		if got := licensor.ProductResource(&products[i]); string(got) != string(want) {
			t.Errorf("product %d:\n got %s\nwant %s", products[i].ID, got, want)
		}
	}
}
