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

func ExampleNewEndUser() {
	ctx := context.Background()
	// The viewer's app holds the user's token (a JWT whose subject is the
	// user), from the operator's login.
	u := client.NewEndUser("https://licensor.example.com", "41", "eyJhbGciOiJIUzI1NiJ9...")

	// The storefront: every visible product.
	for p, err := range u.AllProducts(ctx, client.ProductQuery{Sort: "title"}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p.ID, p.Title, p.IsBuyable)
	}

	// Buy one. The idempotency key names this purchase: a retry after a
	// timeout with the same key does not buy twice.
	lic, product, err := u.Purchase(ctx, 7, "purchase-7-2026-12-02")
	var apiErr *client.Error
	switch {
	case err == nil:
		fmt.Println("bought", product.Title, "until", *lic.StopDate)
	case licensor.ErrorCode(err) == licensor.CodeProductNotBuyable:
		fmt.Println("not for sale")
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized:
		fmt.Println("log in again:", apiErr.Code()) // TOKEN_EXPIRED, TOKEN_INVALID
	default:
		log.Fatal(err)
	}

	// What the player may show, revalidated cheaply with the ETag.
	ent, etag, err := u.Entitlements(ctx, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("live channels:", ent.Channels[licensor.ServiceLive])
	if _, _, err := u.Entitlements(ctx, 0, client.WithIfNoneMatch(etag)); errors.Is(err, client.ErrNotModified) {
		fmt.Println("unchanged")
	}
}

func ExampleClient_FollowEvents() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", "lk_abcdefgh_...")

	// Mirror license changes, resuming from the cursor saved last time
	// ("" the first time).
	saved := loadCursor()
	q := client.EventQuery{Types: []licensor.EventType{licensor.EventLicenseCreated, licensor.EventLicenseDeleted}, After: saved}
	for page, err := range c.FollowEvents(ctx, q, 5*time.Second) {
		if err != nil {
			log.Fatal(err)
		}
		for _, ev := range page.Events {
			fmt.Println(ev.Seq, ev.Type, ev.LicenseID, ev.UserID)
		}
		saveCursor(page.Next) // with what the events changed, in one transaction
	}
}

func loadCursor() string       { return "" }
func saveCursor(cursor string) {}

func ExampleClient_CheckEntitlements() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", "lk_abcdefgh_...") // a read key is enough

	answers, err := c.CheckEntitlements(ctx, []client.EntitlementCheck{
		{UserID: "41", ChannelID: "c1", Service: licensor.ServiceLive},
		{UserID: "42", ChannelID: "c1", Service: licensor.ServiceCatchup},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range answers {
		fmt.Println(a.UserID, a.ChannelID, a.Service, a.Entitled)
	}
}
