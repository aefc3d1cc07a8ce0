package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/bearer"
	"github.com/licensor/licensor/internal/testdb"
)

// The tests in this file run the client against a real server: the API
// over a real store of every engine (SQLite always, PostgreSQL when
// LICENSOR_POSTGRES_URL is set).

// tokenSecret is the HS256 secret of the test servers' end-user tokens.
var tokenSecret = []byte("client-test-secret-0123456789abcdef")

// serverNow is the test servers' clock.
var serverNow = time.Unix(1_750_000_000, 0)

// live is a running server with a write and a read key.
type live struct {
	t        *testing.T
	url      string
	store    licensor.Store
	writer   *client.Client
	reader   *client.Client
	writeKey string
}

func newLive(t *testing.T, e testdb.Engine) *live {
	t.Helper()
	store := e.Open(t)
	srv := api.New(store, api.Options{
		Now:         func() time.Time { return serverNow },
		KeyCacheTTL: time.Nanosecond,
		EndUser:     api.EndUserOptions{Tokens: bearer.Options{HS256Secret: tokenSecret}},
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	l := &live{t: t, url: hs.URL, store: store}
	l.writeKey = l.key("writer", licensor.ScopeWrite)
	l.writer = client.New(hs.URL, l.writeKey)
	l.reader = client.New(hs.URL, l.key("reader", licensor.ScopeRead))
	return l
}

func (l *live) key(name string, scope licensor.Scope) string {
	l.t.Helper()
	secret, prefix, hash := licensor.NewAPIKeySecret()
	k := licensor.APIKey{Name: name, Prefix: prefix, Hash: hash, Scope: scope, CreatedAt: serverNow.Unix()}
	if err := l.store.CreateAPIKey(context.Background(), &k); err != nil {
		l.t.Fatal(err)
	}
	return secret
}

// token mints an end-user token for user, valid for an hour.
func token(t *testing.T, user string, extra jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": user, "iat": serverNow.Unix(), "exp": serverNow.Unix() + 3600}
	for k, v := range extra {
		c[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(tokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// product creates a product through the client.
func (l *live) product(title string, edit func(*licensor.Product)) *licensor.Product {
	l.t.Helper()
	p := licensor.NewProduct(title)
	p.LicensePeriod = "P1M"
	if edit != nil {
		edit(&p)
	}
	out, _, err := l.writer.CreateProduct(context.Background(), p)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

// apiError is err as a *client.Error, or a failed test.
func apiError(t *testing.T, err error, status int, code licensor.Code) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want a *client.Error %d %s", err, status, code)
	}
	if e.StatusCode != status || e.Code() != code || licensor.ErrorCode(err) != code {
		t.Fatalf("err = %v, want %d %s", err, status, code)
	}
	if e.RequestID == "" {
		t.Errorf("%v: no request id", err)
	}
	return e
}

func TestWebhooksAgainstServer(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		l := newLive(t, e)
		ctx := context.Background()
		c := l.writer

		hook, err := c.CreateWebhook(ctx, licensor.Webhook{URL: "https://drm.example.com/hook", Description: "DRM"})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := licensor.WebhookSecretKey(hook.Secret); !ok || hook.ID <= 0 || hook.URL != "https://drm.example.com/hook" ||
			hook.Description != "DRM" || len(hook.EventTypes) != 0 || hook.CreatedAt != serverNow.Unix() {
			t.Fatalf("created %+v", hook)
		}
		mine := "whsec_" + strings.Repeat("QUJD", 8) // 24 bytes
		other, err := c.CreateWebhook(ctx, licensor.Webhook{URL: "https://crm.example.com/h", Secret: mine,
			EventTypes: []licensor.EventType{licensor.EventLicenseCreated}})
		if err != nil || other.Secret != mine || !slices.Equal(other.EventTypes, []licensor.EventType{licensor.EventLicenseCreated}) {
			t.Fatalf("created with a secret: %+v, %v", other, err)
		}

		// The secret is shown once.
		got, err := c.Webhook(ctx, hook.ID)
		want := *hook
		want.Secret = ""
		if err != nil || !equalJSON(got, &want) {
			t.Fatalf("Webhook = %+v, %v; want %+v", got, err, want)
		}
		list, err := c.Webhooks(ctx)
		if err != nil || len(list) != 2 || list[0].ID != hook.ID || list[1].ID != other.ID || list[0].Secret != "" || list[1].Secret != "" {
			t.Fatalf("Webhooks = %+v, %v", list, err)
		}

		desc, types := "DRM sync", []licensor.EventType{licensor.EventProductCreated, licensor.EventLicenseCreated}
		upd, err := c.UpdateWebhook(ctx, hook.ID, licensor.WebhookPatch{Description: &desc, EventTypes: &types})
		if err != nil || upd.Description != desc || !slices.Equal(upd.EventTypes, types) || upd.URL != hook.URL || upd.Secret != "" {
			t.Fatalf("UpdateWebhook = %+v, %v", upd, err)
		}
		every := []licensor.EventType{}
		if upd, err = c.UpdateWebhook(ctx, hook.ID, licensor.WebhookPatch{EventTypes: &every}); err != nil || len(upd.EventTypes) != 0 {
			t.Fatalf("UpdateWebhook to every type = %+v, %v", upd, err)
		}
		// Pause and resume.
		paused, err := c.PauseWebhook(ctx, other.ID, true)
		if err != nil || !paused.Paused() || *paused.PausedAt != serverNow.Unix() {
			t.Fatalf("PauseWebhook = %+v, %v", paused, err)
		}
		if got, err := c.Webhook(ctx, other.ID); err != nil || !got.Paused() {
			t.Fatalf("Webhook of a paused one = %+v, %v", got, err)
		}
		if resumed, err := c.PauseWebhook(ctx, other.ID, false); err != nil || resumed.Paused() {
			t.Fatalf("PauseWebhook(false) = %+v, %v", resumed, err)
		}
		third, err := c.CreateWebhook(ctx, licensor.Webhook{URL: "https://crm.example.com/paused", PausedAt: new(int64(1))})
		if err != nil || !third.Paused() || *third.PausedAt != serverNow.Unix() {
			t.Fatalf("created paused: %+v, %v", third, err)
		}
		if err := c.DeleteWebhook(ctx, third.ID); err != nil {
			t.Fatal(err)
		}
		bad := "ftp://drm.example.com/"
		_, err = c.UpdateWebhook(ctx, hook.ID, licensor.WebhookPatch{URL: &bad})
		if e := apiError(t, err, 400, licensor.CodeInvalidAttribute); e.Errors[0].Pointer != "/data/attributes/url" {
			t.Errorf("bad url: pointer %q", e.Errors[0].Pointer)
		}

		// Deliveries: a product and a license make two events for the
		// first webhook, one for the second.
		p := l.product("Sports", nil)
		if _, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: p.ID}); err != nil {
			t.Fatal(err)
		}
		if n, err := l.store.DispatchEvents(ctx, serverNow.Unix(), 100); err != nil || n != 3 {
			t.Fatalf("DispatchEvents = %d, %v", n, err)
		}
		page, err := c.Deliveries(ctx, hook.ID, client.DeliveryQuery{PageSize: 1})
		if err != nil || len(page.Deliveries) != 1 || page.Next == "" {
			t.Fatalf("Deliveries page 1 = %+v, %v", page, err)
		}
		var all []licensor.Delivery
		for d, err := range c.AllDeliveries(ctx, hook.ID, client.DeliveryQuery{PageSize: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, d)
		}
		if len(all) != 2 || all[0].EventType != licensor.EventLicenseCreated || all[1].EventType != licensor.EventProductCreated ||
			all[0].State != licensor.DeliveryPending || all[0].NextAttemptAt == 0 || all[0].WebhookID != hook.ID ||
			all[0].EventSeq <= all[1].EventSeq || all[0] != page.Deliveries[0] {
			t.Fatalf("AllDeliveries = %+v", all)
		}
		byEvent, err := c.Deliveries(ctx, hook.ID, client.DeliveryQuery{EventID: all[1].EventSeq, State: licensor.DeliveryPending})
		if err != nil || len(byEvent.Deliveries) != 1 || byEvent.Deliveries[0].ID != all[1].ID || byEvent.Next != "" {
			t.Fatalf("Deliveries of event %d = %+v, %v", all[1].EventSeq, byEvent, err)
		}
		_, err = c.Deliveries(ctx, hook.ID, client.DeliveryQuery{State: "lost"})
		if e := apiError(t, err, 400, licensor.CodeInvalidParameter); e.Errors[0].Parameter != "filter[state]" {
			t.Errorf("bad state: parameter %q", e.Errors[0].Parameter)
		}

		// Redelivering a pending delivery changes nothing; a failed one is
		// queued again.
		same, err := c.Redeliver(ctx, hook.ID, all[1].ID)
		if err != nil || same.ID != all[1].ID || same.State != licensor.DeliveryPending {
			t.Fatalf("Redeliver of a pending delivery = %+v, %v", same, err)
		}
		jobs, err := l.store.ClaimDeliveries(ctx, licensor.DeliveryClaim{Now: serverNow.Unix(), LeaseUntil: serverNow.Unix() + 30, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.ID == all[1].ID {
				if err := l.store.CompleteDelivery(ctx, licensor.DeliveryOutcome{ID: j.ID, Attempt: j.Attempts, At: serverNow.Unix(),
					Status: 410, Error: "gone"}); err != nil {
					t.Fatal(err)
				}
			}
		}
		failed, err := c.Deliveries(ctx, hook.ID, client.DeliveryQuery{State: licensor.DeliveryFailed})
		if err != nil || len(failed.Deliveries) != 1 || failed.Deliveries[0].ID != all[1].ID || failed.Deliveries[0].LastError != "gone" ||
			*failed.Deliveries[0].LastStatus != 410 || failed.Deliveries[0].NextAttemptAt != 0 || failed.Deliveries[0].Attempts != 1 {
			t.Fatalf("failed deliveries = %+v, %v", failed, err)
		}
		again, err := c.Redeliver(ctx, hook.ID, all[1].ID)
		if err != nil || again.ID == all[1].ID || again.EventSeq != all[1].EventSeq || again.State != licensor.DeliveryPending {
			t.Fatalf("Redeliver = %+v, %v", again, err)
		}
		_, err = c.Redeliver(ctx, hook.ID, 999)
		apiError(t, err, 404, licensor.CodeDeliveryNotFound)

		// Reads of subscriptions need a write key.
		_, err = l.reader.Webhooks(ctx)
		apiError(t, err, 403, licensor.CodeInsufficientScope)

		if err := c.DeleteWebhook(ctx, hook.ID); err != nil {
			t.Fatal(err)
		}
		_, err = c.Webhook(ctx, hook.ID)
		apiError(t, err, 404, licensor.CodeWebhookNotFound)
		apiError(t, c.DeleteWebhook(ctx, hook.ID), 404, licensor.CodeWebhookNotFound)
		_, err = c.Deliveries(ctx, hook.ID, client.DeliveryQuery{})
		apiError(t, err, 404, licensor.CodeWebhookNotFound)
	})
}

func TestEventsAgainstServer(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		l := newLive(t, e)
		ctx := context.Background()
		c := l.reader
		p := l.product("Sports", nil)
		var ids []int64
		for _, user := range []string{"41", "42", "41"} {
			lic, err := l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: user, ProductID: p.ID})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, lic.ID)
		}
		if err := l.writer.DeleteLicense(ctx, ids[0]); err != nil {
			t.Fatal(err)
		}

		var got []licensor.Event
		for ev, err := range c.AllEvents(ctx, client.EventQuery{PageSize: 2}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev)
		}
		wantTypes := []licensor.EventType{licensor.EventProductCreated, licensor.EventLicenseCreated, licensor.EventLicenseCreated,
			licensor.EventLicenseCreated, licensor.EventLicenseDeleted}
		if len(got) != len(wantTypes) {
			t.Fatalf("AllEvents: %d events, want %d", len(got), len(wantTypes))
		}
		for i, ev := range got {
			if ev.Seq != int64(i+1) || ev.Type != wantTypes[i] || ev.ProductID != p.ID || ev.Actor != "writer" || ev.Time != serverNow.Unix() ||
				ev.RequestID == "" {
				t.Errorf("event %d = %+v", i, ev)
			}
		}
		if got[0].LicenseID != 0 || got[0].UserID != "" || got[4].LicenseID != ids[0] || got[4].UserID != "41" {
			t.Errorf("ids: %+v / %+v", got[0], got[4])
		}
		var data licensor.LicenseObject
		if err := json.Unmarshal(got[4].Data, &data); err != nil || data.ID != "1" || data.Relationships.User.Data.ID != "41" {
			t.Errorf("deleted license's data = %s, %v", got[4].Data, err)
		}
		var pdata licensor.ProductObject
		if err := json.Unmarshal(got[0].Data, &pdata); err != nil || pdata.Attributes.Title != "Sports" {
			t.Errorf("product's data = %s, %v", got[0].Data, err)
		}

		// Filters, and resuming from a page's cursor.
		page, err := c.Events(ctx, client.EventQuery{UserID: "41", Types: []licensor.EventType{licensor.EventLicenseCreated}})
		if err != nil || len(page.Events) != 2 || page.Events[0].LicenseID != ids[0] || page.Events[1].LicenseID != ids[2] || page.Next == "" {
			t.Fatalf("filtered Events = %+v, %v", page, err)
		}
		rest, err := c.Events(ctx, client.EventQuery{UserID: "41", Types: []licensor.EventType{licensor.EventLicenseCreated}, After: page.Next})
		if err != nil || len(rest.Events) != 0 || rest.Next == "" {
			t.Fatalf("resumed Events = %+v, %v", rest, err)
		}
		byLicense, err := c.Events(ctx, client.EventQuery{LicenseID: ids[0], ProductID: p.ID})
		if err != nil || len(byLicense.Events) != 2 {
			t.Fatalf("events of license %d = %+v, %v", ids[0], byLicense, err)
		}
		_, err = c.Events(ctx, client.EventQuery{UserID: "42", After: page.Next})
		if e := apiError(t, err, 400, licensor.CodeInvalidCursor); e.Errors[0].Parameter != "page[after]" {
			t.Errorf("cursor of other filters: parameter %q", e.Errors[0].Parameter)
		}
		_, err = c.Events(ctx, client.EventQuery{Types: []licensor.EventType{"license.upgraded"}})
		apiError(t, err, 400, licensor.CodeInvalidParameter)

		// Following the feed: the pages there are, then a new event after
		// a poll.
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		n, created := 0, false
		for page, err := range c.FollowEvents(fctx, client.EventQuery{PageSize: 3}, 10*time.Millisecond) {
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range page.Events {
				n++
				if ev.Seq != int64(n) {
					t.Fatalf("followed event %d has seq %d", n, ev.Seq)
				}
			}
			if n == 5 && !created {
				created = true
				if _, err := l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: "43", ProductID: p.ID}); err != nil {
					t.Fatal(err)
				}
			}
			if n == 6 {
				break
			}
		}
		cancel()
		if n != 6 {
			t.Errorf("followed %d events, want 6", n)
		}
		// A canceled follow ends with the context's error.
		var last error
		for _, err := range c.FollowEvents(fctx, client.EventQuery{}, time.Millisecond) {
			last = err
		}
		if !errors.Is(last, context.Canceled) {
			t.Errorf("follow after cancel ended with %v", last)
		}
	})
}

func TestEntitlementsAgainstServer(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		l := newLive(t, e)
		ctx := context.Background()
		p := l.product("Sports", func(p *licensor.Product) {
			p.Channels = licensor.Channels{licensor.ServiceLive: {"c1", "c2"}, licensor.ServiceCatchup: {"c1"}}
		})
		start := serverNow.Unix() - 10
		lic, err := l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: p.ID, StartDate: &start})
		if err != nil {
			t.Fatal(err)
		}

		ent, etag, err := l.reader.UserEntitlements(ctx, "41", 0)
		if err != nil || etag == "" {
			t.Fatalf("UserEntitlements = %+v, %q, %v", ent, etag, err)
		}
		want := client.Entitlements{UserID: "41", Products: []int64{p.ID}, ValidUntil: lic.StopDate, Channels: licensor.Channels{
			licensor.ServiceLive: {"c1", "c2"}, licensor.ServiceCatchup: {"c1"}, licensor.ServiceNPVR: {}, licensor.ServiceStartover: {},
		}}
		if !equalJSON(ent, &want) {
			t.Fatalf("UserEntitlements = %+v, want %+v", ent, want)
		}
		if !ent.Allows(licensor.ServiceCatchup, "c1") || ent.Allows(licensor.ServiceCatchup, "c2") || !ent.Holds(p.ID) || ent.Holds(p.ID+1) {
			t.Errorf("Allows/Holds disagree with %+v", ent)
		}
		again, etag2, err := l.reader.UserEntitlements(ctx, "41", 0, client.WithIfNoneMatch(etag))
		if !errors.Is(err, client.ErrNotModified) || again != nil || etag2 != etag {
			t.Fatalf("revalidation = %+v, %q, %v", again, etag2, err)
		}
		before, _, err := l.reader.UserEntitlements(ctx, "41", start-1)
		if err != nil || len(before.Products) != 0 || len(before.Channels[licensor.ServiceLive]) != 0 || before.ValidUntil == nil || *before.ValidUntil != start {
			t.Fatalf("entitlements before the start = %+v, %v", before, err)
		}
		_, _, err = l.reader.UserEntitlements(ctx, "not a user", 0)
		apiError(t, err, 400, licensor.CodeInvalidID)

		answers, err := l.reader.CheckEntitlements(ctx, []client.EntitlementCheck{
			{UserID: "41", ChannelID: "c2", Service: licensor.ServiceLive},
			{UserID: "41", ChannelID: "c2", Service: licensor.ServiceCatchup},
			{UserID: "99", ChannelID: "c1", Service: licensor.ServiceLive, At: start},
		})
		if err != nil || len(answers) != 3 {
			t.Fatalf("CheckEntitlements = %+v, %v", answers, err)
		}
		if !answers[0].Entitled || answers[1].Entitled || answers[2].Entitled || answers[0].At != serverNow.Unix() || answers[2].At != start ||
			answers[0].UserID != "41" || answers[0].ChannelID != "c2" || answers[0].Service != licensor.ServiceLive ||
			answers[0].ValidUntil == nil || *answers[0].ValidUntil != *lic.StopDate || answers[2].ValidUntil != nil {
			t.Fatalf("CheckEntitlements = %+v", answers)
		}
		_, err = l.reader.CheckEntitlements(ctx, []client.EntitlementCheck{
			{UserID: "41", ChannelID: "c2", Service: licensor.ServiceLive},
			{UserID: "41", ChannelID: "c2", Service: "radio"},
		})
		ce := apiError(t, err, 400, licensor.CodeInvalidAttribute)
		if i, ok := ce.Errors[0].Index(); !ok || i != 1 || ce.Errors[0].Pointer != "/data/1/attributes/service" {
			t.Errorf("bad question: %+v", ce.Errors[0])
		}

		// 409 ORDER_ID_CONFLICT names the license holding the order id.
		order := "7b0b1f9e-6f43-4b7e-9d41-2f1f0a3c5d11"
		first, err := l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: "42", ProductID: p.ID, OrderID: &order})
		if err != nil {
			t.Fatal(err)
		}
		_, err = l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: "42", ProductID: p.ID, OrderID: &order})
		ce = apiError(t, err, 409, licensor.CodeOrderIDConflict)
		if id, ok := ce.ExistingID(); !ok || id != first.ID {
			t.Errorf("ExistingID = %d, %v; want %d", id, ok, first.ID)
		}
	})
}

func TestEndUserAgainstServer(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		l := newLive(t, e)
		ctx := context.Background()
		sports := l.product("Sports", func(p *licensor.Product) {
			p.Channels = licensor.Channels{licensor.ServiceLive: {"c1"}}
			p.PriceAmount, p.PriceCurrency = ptr[int64](999), ptr("EUR")
		})
		news := l.product("News", func(p *licensor.Product) { p.IsBuyable = false })
		l.product("Hidden", func(p *licensor.Product) { p.IsVisible = false })

		u := client.NewEndUser(l.url, "41", token(t, "41", nil))
		if u.UserID() != "41" {
			t.Errorf("UserID = %q", u.UserID())
		}
		page, err := u.Products(ctx, client.ProductQuery{Count: true, Sort: "title"})
		if err != nil || len(page.Products) != 2 || page.Products[0].ID != news.ID || page.Products[1].ID != sports.ID ||
			page.Total == nil || *page.Total != 2 || page.Next != "" {
			t.Fatalf("Products = %+v, %v", page, err)
		}
		wantSports := *sports
		wantSports.CreatedAt, wantSports.UpdatedAt = 0, 0 // not in the end-user form
		if !equalJSON(&page.Products[1], &wantSports) {
			t.Errorf("end-user product = %+v, want %+v", page.Products[1], wantSports)
		}
		var titles []string
		for p, err := range u.AllProducts(ctx, client.ProductQuery{PageSize: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			titles = append(titles, p.Title)
		}
		if !slices.Equal(titles, []string{"Sports", "News"}) {
			t.Errorf("AllProducts: %v", titles)
		}
		visible := true
		if _, err := u.Products(ctx, client.ProductQuery{IsVisible: &visible}); err == nil {
			t.Error("Products with IsVisible: no error")
		}

		// A purchase, and its retry.
		lic, p, err := u.Purchase(ctx, sports.ID, "purchase-1")
		if err != nil {
			t.Fatal(err)
		}
		if lic.UserID != "41" || lic.ProductID != sports.ID || lic.Status != licensor.StatusActive || lic.StartDate != serverNow.Unix() ||
			lic.StopDate == nil || p.ID != sports.ID || p.Title != "Sports" {
			t.Fatalf("Purchase = %+v, %+v", lic, p)
		}
		retry, _, err := u.Purchase(ctx, sports.ID, "purchase-1")
		if err != nil || retry.ID != lic.ID {
			t.Fatalf("retried Purchase = %+v, %v; want license %d", retry, err, lic.ID)
		}
		full, err := l.reader.License(ctx, lic.ID)
		if err != nil || full.PaymentMethod == nil || *full.PaymentMethod != "billing" || full.OrderID == nil || *full.PriceAmount != 999 {
			t.Fatalf("the purchased license, as the management API shows it: %+v, %v", full, err)
		}
		_, _, err = u.Purchase(ctx, news.ID, "purchase-2")
		if ce := apiError(t, err, 403, licensor.CodeProductNotBuyable); ce.Errors[0].Pointer != "/data/relationships/product" {
			t.Errorf("not buyable: pointer %q", ce.Errors[0].Pointer)
		}
		_, _, err = u.Purchase(ctx, 999, "purchase-3")
		apiError(t, err, 404, licensor.CodeProductNotFound)
		_, _, err = u.Purchase(ctx, sports.ID, "")
		if licensor.ErrorCode(err) != licensor.CodeIdempotencyKeyRequired {
			t.Errorf("Purchase without a key: %v", err)
		}

		lics, err := u.Licenses(ctx, client.UserLicenseQuery{Statuses: []licensor.Status{licensor.StatusActive}, Count: true})
		if err != nil || len(lics.Licenses) != 1 || lics.Licenses[0].ID != lic.ID || len(lics.Products) != 1 || lics.Products[0].ID != sports.ID ||
			*lics.Total != 1 {
			t.Fatalf("Licenses = %+v, %v", lics, err)
		}
		if !equalJSON(&lics.Licenses[0], lic) {
			t.Errorf("listed license %+v, purchased %+v", lics.Licenses[0], *lic)
		}
		// A second license, to page through.
		if _, err := l.writer.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: news.ID}); err != nil {
			t.Fatal(err)
		}
		var seen []int64
		for l, err := range u.AllLicenses(ctx, client.UserLicenseQuery{PageSize: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, l.ProductID)
		}
		if !slices.Equal(seen, []int64{sports.ID, news.ID}) {
			t.Errorf("AllLicenses: products %v", seen)
		}

		ent, etag, err := u.Entitlements(ctx, 0)
		if err != nil || !slices.Equal(ent.Products, []int64{sports.ID, news.ID}) || !slices.Equal(ent.Channels[licensor.ServiceLive], []string{"c1"}) {
			t.Fatalf("Entitlements = %+v, %v", ent, err)
		}
		if _, _, err := u.Entitlements(ctx, 0, client.WithIfNoneMatch(etag)); !errors.Is(err, client.ErrNotModified) {
			t.Errorf("revalidated Entitlements: %v", err)
		}

		// Tokens.
		mallory := client.NewEndUser(l.url, "41", token(t, "42", nil))
		_, err = mallory.Licenses(ctx, client.UserLicenseQuery{})
		apiError(t, err, 403, licensor.CodeUserMismatch)
		_, _, err = u.WithToken("not.a.token").Entitlements(ctx, 0)
		apiError(t, err, 401, licensor.CodeTokenInvalid)
		expired := u.WithToken(token(t, "41", jwt.MapClaims{"exp": serverNow.Unix() - 1}))
		_, err = expired.Products(ctx, client.ProductQuery{})
		apiError(t, err, 401, licensor.CodeTokenExpired)
		restricted := u.WithToken(token(t, "41", jwt.MapClaims{"user_flags": []string{bearer.UserFlagPurchaseRestricted}}))
		_, _, err = restricted.Purchase(ctx, sports.ID, "purchase-4")
		apiError(t, err, 403, licensor.CodePurchaseRestricted)
		// The original client still holds its token.
		if _, err := u.Licenses(ctx, client.UserLicenseQuery{}); err != nil {
			t.Errorf("after WithToken: %v", err)
		}
		// An API key is no end-user token.
		_, err = client.NewEndUser(l.url, "41", l.writeKey).Products(ctx, client.ProductQuery{})
		apiError(t, err, 401, licensor.CodeTokenInvalid)
	})
}

// equalJSON compares two values by their JSON.
func equalJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// TestEveryOperationHasAMethod fails when the OpenAPI document has an
// operation (other than the unauthenticated ones: health, readiness,
// metrics, the document and its docs page) that no client method calls,
// or when a method calls another route than its operation's.
func TestEveryOperationHasAMethod(t *testing.T) {
	raw, err := readOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	type route struct{ method, path string }
	want := map[string]route{}
	for path, ops := range doc.Paths {
		for method, rawOp := range ops {
			var op struct {
				OperationID string             `json:"operationId"`
				Security    *[]json.RawMessage `json:"security"`
			}
			if json.Unmarshal(rawOp, &op) != nil || op.OperationID == "" {
				continue // parameters, summary...
			}
			if op.Security != nil && len(*op.Security) == 0 {
				continue // no credentials: not an API call
			}
			want[op.OperationID] = route{strings.ToUpper(method), path}
		}
	}
	if len(want) != 34 {
		t.Errorf("the document has %d authenticated operations; the table below was written for 34 (30 management, 4 end-user)", len(want))
	}

	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
		w.Header().Set("Content-Type", client.MediaType)
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(`{"errors":[{"status":"418","code":"INTERNAL","title":"recorded"}]}`))
	}))
	defer srv.Close()
	c := client.New(srv.URL, "key")
	u := client.NewEndUser(srv.URL, "41", "token")
	for op, r := range want {
		call, ok := clientOperations[op]
		if !ok {
			t.Errorf("operation %s (%s %s) has no client method in clientOperations", op, r.method, r.path)
			continue
		}
		got = nil
		call.do(context.Background(), c, u)
		if len(got) != 1 {
			t.Errorf("%s (%s) made %d requests, want 1", call.method, op, len(got))
			continue
		}
		if got[0].Method != r.method || !matchTemplate(r.path, got[0].Path) {
			t.Errorf("%s (%s) called %s %s, want %s %s", call.method, op, got[0].Method, got[0].Path, r.method, r.path)
		}
		auth := got[0].Header.Get("Authorization")
		if end := strings.HasPrefix(r.path, client.EndUserPath+"/"); end && auth != "Bearer token" || !end && auth != "Apikey key" {
			t.Errorf("%s (%s) sent Authorization %q", call.method, op, auth)
		}
	}
	for op := range clientOperations {
		if _, ok := want[op]; !ok {
			t.Errorf("clientOperations lists %s, which the document does not have", op)
		}
	}
}

// clientOperations maps every operation of the API to the client method
// that calls it.
var clientOperations = map[string]struct {
	method string
	do     func(ctx context.Context, c *client.Client, u *client.EndUser)
}{
	"GetLicenses": {"Client.Licenses", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.Licenses(ctx, client.LicenseQuery{}) }},
	"CreateLicense": {"Client.CreateLicense", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.CreateLicense(ctx, licensor.LicenseDraft{})
	}},
	"BatchCreateLicenses": {"Client.CreateLicenses", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.CreateLicenses(ctx, nil) }},
	"BatchDeleteLicenses": {"Client.DeleteLicenses", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.DeleteLicenses(ctx, []int64{1}, false)
	}},
	"GetLicenseById":    {"Client.License", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.License(ctx, 1) }},
	"DeleteLicenseById": {"Client.DeleteLicense", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.DeleteLicense(ctx, 1) }},
	"SuspendLicense": {"Client.SuspendLicense", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.SuspendLicense(ctx, 1, client.Suspension{})
	}},
	"CancelLicenseRenewal": {"Client.CancelRenewal", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.CancelRenewal(ctx, 1, "")
	}},
	"ReinstateLicense": {"Client.ReinstateLicense", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.ReinstateLicense(ctx, 1, client.Suspension{})
	}},
	"SuspendLicensesByUser": {"Client.SuspendUserLicenses", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.SuspendUserLicenses(ctx, "41", client.Suspension{})
	}},
	"ReinstateLicensesByUser": {"Client.ReinstateUserLicenses", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.ReinstateUserLicenses(ctx, "41", client.Suspension{})
	}},
	"GetLicensesByUser": {"Client.UserLicenses", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.UserLicenses(ctx, "41", client.LicenseQuery{})
	}},
	"GetAllProducts": {"Client.Products", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.Products(ctx, client.ProductQuery{}) }},
	"CreateProduct": {"Client.CreateProduct", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.CreateProduct(ctx, licensor.Product{})
	}},
	"GetProductById": {"Client.Product", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.Product(ctx, 1) }},
	"UpdateProduct": {"Client.UpdateProduct", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.UpdateProduct(ctx, 1, licensor.ProductPatch{}, "")
	}},
	"DeleteProductById": {"Client.DeleteProduct", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.DeleteProduct(ctx, 1, false, "") }},
	"CreateBulkJob": {"Client.CreateBulkJob", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.CreateBulkJob(ctx, client.BulkJobRequest{})
	}},
	"GetBulkJobById": {"Client.BulkJob", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.BulkJob(ctx, 1) }},
	"CancelBulkJob":  {"Client.CancelBulkJob", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.CancelBulkJob(ctx, 1) }},
	"GetEvents":      {"Client.Events", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.Events(ctx, client.EventQuery{}) }},
	"GetWebhooks":    {"Client.Webhooks", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.Webhooks(ctx) }},
	"CreateWebhook": {"Client.CreateWebhook", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.CreateWebhook(ctx, licensor.Webhook{})
	}},
	"GetWebhookById": {"Client.Webhook", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.Webhook(ctx, 1) }},
	"UpdateWebhook": {"Client.UpdateWebhook", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.UpdateWebhook(ctx, 1, licensor.WebhookPatch{})
	}},
	"DeleteWebhookById": {"Client.DeleteWebhook", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.DeleteWebhook(ctx, 1) }},
	"GetWebhookDeliveries": {"Client.Deliveries", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.Deliveries(ctx, 1, client.DeliveryQuery{})
	}},
	"RedeliverWebhookDelivery": {"Client.Redeliver", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.Redeliver(ctx, 1, 2) }},
	"GetEntitlementsByUser":    {"Client.UserEntitlements", func(ctx context.Context, c *client.Client, _ *client.EndUser) { c.UserEntitlements(ctx, "41", 0) }},
	"CheckEntitlements": {"Client.CheckEntitlements", func(ctx context.Context, c *client.Client, _ *client.EndUser) {
		c.CheckEntitlements(ctx, []client.EntitlementCheck{{UserID: "41", ChannelID: "c1", Service: licensor.ServiceLive}})
	}},
	"GetEndUserProducts": {"EndUser.Products", func(ctx context.Context, _ *client.Client, u *client.EndUser) { u.Products(ctx, client.ProductQuery{}) }},
	"GetUserLicenses": {"EndUser.Licenses", func(ctx context.Context, _ *client.Client, u *client.EndUser) {
		u.Licenses(ctx, client.UserLicenseQuery{})
	}},
	"GetUserEntitlements": {"EndUser.Entitlements", func(ctx context.Context, _ *client.Client, u *client.EndUser) { u.Entitlements(ctx, 0) }},
	"PurchaseUserLicense": {"EndUser.Purchase", func(ctx context.Context, _ *client.Client, u *client.EndUser) { u.Purchase(ctx, 1, "key") }},
}

// matchTemplate reports whether path fits an OpenAPI path template, each
// {param} one non-empty segment.
func matchTemplate(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}") {
			if ps[i] == "" {
				return false
			}
		} else if ts[i] != ps[i] {
			return false
		}
	}
	return true
}

// readOpenAPI reads the API's OpenAPI document from the source tree.
func readOpenAPI() ([]byte, error) {
	return os.ReadFile(filepath.Join("..", "internal", "api", "openapi.json"))
}
