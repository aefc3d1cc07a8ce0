package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
)

func Example() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", "lk_abcdefgh_...",
		client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))

	p := licensor.NewProduct("Sports")
	p.LicensePeriod = "P1M"
	p.Channels = licensor.Channels{licensor.ServiceLive: {"c1", "c2"}}
	product, etag, err := c.CreateProduct(ctx, p, client.WithIdempotencyKey("create-sports"))
	if err != nil {
		log.Fatal(err)
	}

	orderID := "1adc0dbe-3c65-4248-896c-78c049e276c8"
	lic, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: product.ID, OrderID: &orderID})
	var apiErr *client.Error
	switch {
	case err == nil:
		fmt.Println("license", lic.ID, "until", *lic.StopDate)
	case licensor.ErrorCode(err) == licensor.CodeOrderIDConflict && errors.As(err, &apiErr):
		id, _ := apiErr.ExistingID()
		fmt.Println("already licensed by", id)
	default:
		log.Fatal(err)
	}

	// Hide the product, unless someone changed it meanwhile.
	hidden := false
	if _, _, err := c.UpdateProduct(ctx, product.ID, licensor.ProductPatch{IsVisible: &hidden}, etag); err != nil {
		log.Fatal(err)
	}
}

func ExampleClient_AllLicenses() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", "lk_abcdefgh_...")

	// Every active license of product 7 that ends within a week.
	q := client.LicenseQuery{
		ProductID: 7,
		Statuses:  []licensor.Status{licensor.StatusActive},
		Ranges:    []licensor.Range{{Field: "stop_date", Op: "lt", Value: time.Now().Add(7 * 24 * time.Hour).Unix()}},
		Sort:      "stop_date",
		PageSize:  500,
	}
	for lic, err := range c.AllLicenses(ctx, q) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(lic.ID, lic.UserID, *lic.StopDate)
	}
}
