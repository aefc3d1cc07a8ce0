package api

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/bearer"
	"github.com/licensor/licensor/internal/entitlement"
	"github.com/licensor/licensor/internal/jsonapi"
)

// endUserPath is the prefix of the End-user License API v4.
const endUserPath = "/api/license/v4"

// EndUserOptions configure the end-user API and the entitlement check.
type EndUserOptions struct {
	// Tokens are the keys of end users' bearer tokens (check them with
	// bearer.Check: New, given a bad configuration, refuses every token).
	Tokens bearer.Options
	Cache  entitlement.Options
}

// endUser is the server's end-user side: token verification and the
// entitlement cache.
type endUser struct {
	tokens *bearer.Verifier // nil: no token is accepted
	cache  *entitlement.Cache
}

// initEndUser sets up the end-user side and puts the notifying store (which
// keeps the entitlement cache true towards this instance's writes) between
// the handlers and store.
func (s *Server) initEndUser(store licensor.Store) {
	eu := &endUser{cache: entitlement.New(store, entitlementJSON{}, s.opts.EndUser.Cache)}
	tokens, err := bearer.New(s.opts.EndUser.Tokens, s.now)
	if err != nil {
		s.log.Error("end-user token keys are unusable; every bearer token will be refused", "err", err)
	}
	eu.tokens = tokens
	s.endUser = eu
	s.store = entitlement.Notify(store, eu.cache)
	s.metrics.EntitlementCache(eu.cache.Stats)
}

// WatchChanges drives the entitlement cache from w (the change feed) until
// ctx ends.
func (s *Server) WatchChanges(ctx context.Context, w entitlement.ChangeWatcher) error {
	return w.Watch(ctx, s.endUser.cache)
}

// SaveHotEntitlements saves the users the entitlement cache has answered
// for and still holds (entitlement.Cache.SaveHot), for the warm-up of the
// next instance to start: call it at a graceful stop, once the requests
// have drained. It returns how many it saved.
func (s *Server) SaveHotEntitlements(ctx context.Context) (int, error) {
	return s.endUser.cache.SaveHot(ctx)
}

// WarmEntitlements fills the entitlement cache ahead of the checks
// (entitlement.Cache.Warm) once the change feed's watcher, started beside
// it with WatchChanges, has reached the feed's head (before that, a
// warm-up would be forgotten by the watcher's start), all within timeout.
// The server is marked warming before it returns, and /readyz answers 503
// until the warm-up has ended, so that a load balancer sends checks to an
// instance that can answer them from memory; a check it receives
// meanwhile for a user the warm-up has not reached waits for it, up to a
// second (entitlement.Cache.Warm). It works in the background; wait waits
// for it.
func (s *Server) WarmEntitlements(ctx context.Context, timeout time.Duration) (wait func()) {
	s.warming.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.warming.Store(false)
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		start := time.Now()
		cache := s.endUser.cache
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for !cache.Following() {
			select {
			case <-ctx.Done():
				s.log.Warn("the entitlement cache was not warmed: the change feed was not read within --entitlement-warm-timeout; users are loaded by their first checks", "timeout", timeout)
				return
			case <-tick.C:
			}
		}
		st, err := cache.Warm(ctx)
		args := []any{"users", st.Users, "products", st.Products, "queries", st.Queries, "full", st.Full, "hot_set", st.HotSet, "seconds", time.Since(start).Seconds()}
		if err != nil {
			s.log.Warn("the entitlement cache's warm-up stopped; the users not loaded are loaded by their first checks", append(args, "err", err)...)
			return
		}
		s.log.Info("entitlement cache warmed", args...)
	}()
	return func() { <-done }
}

// endUserScope is the idempotency scope of a user's requests: a negative
// id (API keys have positive ones) derived from the user id. Two users
// sharing it (a 63-bit hash collision) and an Idempotency-Key would at
// worst see 422s, never each other's responses: a stored response is
// only replayed to a request with the same fingerprint, whose path names
// the user.
func endUserScope(user string) int64 {
	h := sha256.Sum256([]byte("licensor end user\x00" + user))
	return -int64(binary.BigEndian.Uint64(h[:8])>>1) - 1
}

type claimsKey struct{}

func claimsOf(r *http.Request) *bearer.Claims {
	c, _ := r.Context().Value(claimsKey{}).(*bearer.Claims)
	return c
}

// bearer admits a request with a valid end-user token; on a route with a
// {user_id}, the token's subject must be that user.
func (s *Server) bearer(next http.Handler) http.Handler {
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		raw, ok := bearer.Token(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="licensor"`)
			return licensor.Errorf(licensor.CodeTokenMissing, "send the header Authorization: Bearer <token>")
		}
		claims, err := s.endUser.tokens.Verify(raw)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="licensor", error="invalid_token"`)
			return err
		}
		info := infoOf(r)
		info.keyID, info.keyName = endUserScope(claims.Subject), "user:"+claims.Subject
		if user := r.PathValue("user_id"); user != "" && user != claims.Subject {
			return licensor.Errorf(licensor.CodeUserMismatch, "the token is for another user than the one in the path")
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
		return nil
	})
}

// canPurchase refuses users flagged LICENSE_PURCHASE_RESTRICTED.
func (s *Server) canPurchase(next http.Handler) http.Handler {
	return s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		for _, f := range claimsOf(r).UserFlags {
			if f == bearer.UserFlagPurchaseRestricted {
				return licensor.Errorf(licensor.CodePurchaseRestricted, "this user may not purchase (%s)", bearer.UserFlagPurchaseRestricted)
			}
		}
		next.ServeHTTP(w, r)
		return nil
	})
}

// Wire forms of the end-user API: a license reduced to status and dates,
// and a product as a storefront shows it.
type (
	endUserLicenseResource struct {
		ID            string                   `json:"id"`
		Type          string                   `json:"type"`
		Attributes    endUserLicenseAttributes `json:"attributes"`
		Relationships licenseRelations         `json:"relationships"`
	}
	endUserLicenseAttributes struct {
		Status    licensor.Status `json:"status"`
		StartDate int64           `json:"start_date"`
		StopDate  *int64          `json:"stop_date"`
	}
	endUserProductResource struct {
		ID            string                   `json:"id"`
		Type          string                   `json:"type"`
		Attributes    endUserProductAttributes `json:"attributes"`
		Relationships productRelations         `json:"relationships"`
	}
	endUserProductAttributes struct {
		Title         string  `json:"title"`
		Description   string  `json:"description"`
		Type          string  `json:"type"`
		IsPremium     bool    `json:"is_premium"`
		IsBuyable     bool    `json:"is_buyable"`
		IsVisible     bool    `json:"is_visible"`
		Recurring     bool    `json:"recurring"`
		PriceAmount   *int64  `json:"price_currency_amount"`
		PriceCurrency *string `json:"price_currency_iso4217"`
		LicensePeriod *string `json:"license_period"`
	}
	endUserLicenseDocument struct {
		Data     endUserLicenseResource   `json:"data"`
		Included []endUserProductResource `json:"included"`
	}
	endUserLicenseListDocument struct {
		Data     []endUserLicenseResource `json:"data"`
		Included []endUserProductResource `json:"included"`
		Links    listLinks                `json:"links"`
		Meta     listMeta                 `json:"meta"`
	}
	endUserProductListDocument struct {
		Data  []json.RawMessage `json:"data"` // endUserProductResource each, encoded to be counted
		Links listLinks         `json:"links"`
		Meta  listMeta          `json:"meta"`
	}
)

func endUserLicenseOut(l *licensor.License, now int64) endUserLicenseResource {
	return endUserLicenseResource{
		ID:   id(l.ID),
		Type: "License",
		Attributes: endUserLicenseAttributes{
			Status:    l.EffectiveStatus(now),
			StartDate: l.StartDate,
			StopDate:  l.StopDate,
		},
		Relationships: licenseRelations{
			User:    toOne{Data: identifier{Type: "User", ID: l.UserID}},
			Product: toOne{Data: identifier{Type: "Product", ID: id(l.ProductID)}},
		},
	}
}

func endUserProductOut(p *licensor.Product) endUserProductResource {
	full := productOut(p)
	a := full.Attributes
	return endUserProductResource{
		ID:   full.ID,
		Type: full.Type,
		Attributes: endUserProductAttributes{
			Title: a.Title, Description: a.Description, Type: a.Type,
			IsPremium: a.IsPremium, IsBuyable: a.IsBuyable, IsVisible: a.IsVisible, Recurring: a.Recurring,
			PriceAmount: a.PriceAmount, PriceCurrency: a.PriceCurrency, LicensePeriod: a.LicensePeriod,
		},
		Relationships: full.Relationships,
	}
}

// getUserLicenses serves GetUserLicenses: the user's live licenses in
// the reduced end-user form, their products in included.
func (s *Server) getUserLicenses(w http.ResponseWriter, r *http.Request) error {
	user := r.PathValue("user_id")
	q := jsonapi.NewQuery(r.URL)
	lq := licensor.LicenseQuery{Filter: licensor.LicenseFilter{UserID: &user}, Now: s.unix()}
	if v, ok := q.Get("filter[status]"); ok {
		for _, part := range strings.Split(v, ",") {
			st := licensor.Status(strings.TrimSpace(part))
			if !st.Valid() {
				q.Fail(licensor.CodeInvalidParameter, "filter[status]", "unknown status %q; one of %s", part, joinStatuses())
				continue
			}
			lq.Filter.Statuses = append(lq.Filter.Statuses, st)
		}
	}
	lq.Filter.ProductID = q.Int("filter[product_id]", 1)
	lq.Sort = q.Sort(licenseSortFields)
	scope := q.Scope(r.URL.Path)
	lq.Limit, lq.After, lq.Count = q.Page(scope)
	includeProduct(q) // accepted; products are always included
	if err := q.Done(); err != nil {
		return err
	}
	page, err := s.store.FindLicenses(r.Context(), lq)
	if err != nil {
		return err
	}
	doc := endUserLicenseListDocument{
		Data:     make([]endUserLicenseResource, len(page.Licenses)),
		Included: []endUserProductResource{},
		Links:    listLinks{Self: r.URL.RequestURI()},
		Meta:     listMeta{Total: page.Total},
	}
	seen := map[int64]bool{}
	for i := range page.Licenses {
		l := &page.Licenses[i]
		doc.Data[i] = endUserLicenseOut(l, lq.Now)
		if seen[l.ProductID] {
			continue
		}
		seen[l.ProductID] = true
		p, err := s.endUser.cache.Product(r.Context(), l.ProductID)
		if err != nil {
			return err
		}
		if p != nil {
			doc.Included = append(doc.Included, endUserProductOut(p))
		}
	}
	if page.Next != nil {
		doc.Links.Next = jsonapi.NextLink(r.URL, jsonapi.EncodeCursor(page.Next, scope))
	}
	return jsonapi.Write(w, http.StatusOK, doc)
}

// MaxStorefrontPageBytes bounds the products of a storefront page, which end
// users of every kind call: a page holds the products that fit (and at least
// one), then links.next, so that long channel lists cannot make a response of
// tens of megabytes.
const MaxStorefrontPageBytes = 1 << 20

// getEndUserProducts serves GetEndUserProducts: the visible products.
func (s *Server) getEndUserProducts(w http.ResponseWriter, r *http.Request) error {
	q := jsonapi.NewQuery(r.URL)
	if q.Has("filter[is_visible]") {
		q.Fail(licensor.CodeUnknownParameter, "filter[is_visible]", "end users see the visible products only")
	}
	pq := licensor.ProductQuery{Filter: productFilter(q), Sort: q.Sort(productSortFields)}
	visible := true
	pq.Filter.IsVisible = &visible
	scope := q.Scope(r.URL.Path)
	pq.Limit, pq.After, pq.Count = q.Page(scope)
	if err := q.Done(); err != nil {
		return err
	}
	page, err := s.store.FindProducts(r.Context(), pq)
	if err != nil {
		return err
	}
	doc := endUserProductListDocument{Data: make([]json.RawMessage, 0, len(page.Products)), Links: listLinks{Self: r.URL.RequestURI()}}
	size := 0
	for i := range page.Products {
		b, err := json.Marshal(endUserProductOut(&page.Products[i]))
		if err != nil {
			return err
		}
		if size += len(b); size > MaxStorefrontPageBytes && i > 0 {
			// Long channel lists end the page early: the next one
			// starts after the last product that fitted.
			page.Next = licensor.ProductCursor(&page.Products[i-1], pq.Sort.Field)
			break
		}
		doc.Data = append(doc.Data, b)
	}
	if page.Next != nil {
		doc.Links.Next = jsonapi.NextLink(r.URL, jsonapi.EncodeCursor(page.Next, scope))
	}
	doc.Meta.Total = page.Total
	return jsonapi.Write(w, http.StatusOK, doc)
}

// PaymentMethodBilling is the one payment method of end-user purchases:
// the operator charges the user through its own billing.
const PaymentMethodBilling = "billing"

// purchaseUserLicense serves PurchaseUserLicense: an ACTIVE license of a buyable
// product, with the product's defaults, paid by billing, under a
// server-made order_id (purchaseOrderID).
func (s *Server) purchaseUserLicense(w http.ResponseWriter, r *http.Request) error {
	user := r.PathValue("user_id")
	item, base, err := jsonapi.ReadResource(r)
	if err != nil {
		return err
	}
	productID, err := parsePurchase(item, user)
	if err != nil {
		return jsonapi.At(base, err)
	}
	p, err := s.store.FindProductByID(r.Context(), productID)
	if err == nil && !p.IsVisible {
		// A product the storefront does not show is not for sale: it is
		// answered as unknown, so that guessing ids finds nothing.
		err = licensor.ProductNotFound(productID)
	}
	if licensor.ErrorCode(err) == licensor.CodeProductNotFound {
		return jsonapi.At(base, &licensor.Error{Code: licensor.CodeProductNotFound, Pointer: "/relationships/product",
			Detail: "there is no product " + id(productID)})
	}
	if err != nil {
		return err
	}
	if !p.IsBuyable {
		return jsonapi.At(base, &licensor.Error{Code: licensor.CodeProductNotBuyable, Pointer: "/relationships/product",
			Detail: "product " + id(p.ID) + " cannot be bought"})
	}
	orderID := purchaseOrderID(user, p.ID, r.Header.Get("Idempotency-Key"))
	billing := PaymentMethodBilling
	draft := licensor.LicenseDraft{UserID: user, ProductID: p.ID, OrderID: &orderID, PaymentMethod: &billing}
	now := s.unix()
	included := endUserProductOut(p)
	rend := func(created []licensor.License) (licensor.StoredResponse, error) {
		l := &created[0]
		return jsonapi.Response(http.StatusCreated, endUserLicenseDocument{
			Data: endUserLicenseOut(l, now), Included: []endUserProductResource{included},
		})
	}
	// What an Idempotency-Key keeps: the same response, but for a product
	// too large to keep with every purchase of it (its channel lists).
	keep := rend
	if b, err := json.Marshal(included); err != nil || len(b) > maxKeptProductBytes {
		keep = func(created []licensor.License) (licensor.StoredResponse, error) {
			l := &created[0]
			return jsonapi.Response(http.StatusCreated, endUserLicenseDocument{
				Data: endUserLicenseOut(l, now), Included: []endUserProductResource{},
			}, headerIncludeProduct, id(p.ID))
		}
	}
	created, err := s.store.CreateLicenses(r.Context(), []licensor.LicenseDraft{draft}, s.writeChange(r, licensor.Renders{Licenses: keep}))
	if licensor.ErrorCode(err) == licensor.CodeOrderIDConflict {
		// A repeat of a purchase whose idempotency record has expired. The
		// order id is the server's, so the error points at nothing sent.
		return &licensor.Error{Code: licensor.CodeOrderIDConflict, Meta: conflictMeta(err),
			Detail: "this purchase was already made (same user, product and Idempotency-Key)"}
	}
	if err != nil {
		return jsonapi.At(base, err)
	}
	return respond(w, rend, created)
}

// maxKeptProductBytes bounds the product a purchase's kept response
// includes: past it (a product may have 40000 channels, 3.7 MB) the response
// is kept without it and headerIncludeProduct names it, and a replay
// includes the product as it is then (replayedPurchase). Before, every
// purchase of such a product kept a 3.7 MB copy for 24 h.
const maxKeptProductBytes = 16 << 10

// headerIncludeProduct is the kept header (never sent) of a purchase
// response kept without its product: the product's id.
const headerIncludeProduct = "Licensor-Include-Product"

// replayedPurchase restores a kept purchase response whose product was
// left out (headerIncludeProduct): the product, as it is now, goes into
// included again (none when it is gone). Other responses are unchanged.
func (s *Server) replayedPurchase(ctx context.Context, resp licensor.StoredResponse) (licensor.StoredResponse, error) {
	pid, ok := resp.Headers[headerIncludeProduct]
	if !ok {
		return resp, nil
	}
	productID, err := strconv.ParseInt(pid, 10, 64)
	if err != nil {
		return resp, fmt.Errorf("kept purchase: product id %q: %w", pid, err)
	}
	var doc endUserLicenseDocument
	if err := json.Unmarshal(resp.Body, &doc); err != nil {
		return resp, fmt.Errorf("kept purchase: %w", err)
	}
	p, err := s.endUser.cache.Product(ctx, productID)
	if err != nil {
		return resp, err
	}
	doc.Included = []endUserProductResource{}
	if p != nil {
		doc.Included = append(doc.Included, endUserProductOut(p))
	}
	var headers []string
	for k, v := range resp.Headers {
		if k != headerIncludeProduct {
			headers = append(headers, k, v)
		}
	}
	return jsonapi.Response(resp.Status, doc, headers...)
}

// conflictMeta returns the Meta (existing_id) of an order id conflict.
func conflictMeta(err error) map[string]any {
	var items licensor.ItemErrors
	if errors.As(err, &items) && len(items) > 0 {
		return items[0].Err.Meta
	}
	var e *licensor.Error
	if errors.As(err, &e) {
		return e.Meta
	}
	return nil
}

// parsePurchase reads the License resource of a purchase: the product
// relationship, purchase_record.payment_method "billing", and optionally
// the user relationship (the user of the path). Everything else is the
// server's to decide.
func parsePurchase(m map[string]any, user string) (int64, error) {
	var errs licensor.Errors
	var productID int64
	res := jsonapi.NewObject(m, "", &errs)
	res.PrimaryType("License")
	res.Forbid("id", "id is assigned by the server; leave it out")
	res.Ignore("links", "meta")
	const serverSide = "a purchase takes the product's defaults; only purchase_record.payment_method may be sent"
	method := false
	if a, ok := res.Object("attributes"); ok {
		for _, name := range []string{"status", "start_date", "stop_date", "order_id", "renew_record", "created_at"} {
			a.Forbid(name, serverSide)
		}
		if pr, ok := a.Object("purchase_record"); ok {
			for _, name := range []string{"price_currency_amount", "price_currency_iso4217", "purchase_timestamp"} {
				pr.Forbid(name, serverSide)
			}
			if pm, ok := pr.Str("payment_method", licensor.MaxPaymentMethodLen); ok {
				method = true
				if *pm != PaymentMethodBilling {
					pr.Fail(licensor.CodeInvalidAttribute, "payment_method", "the only payment method is %q", PaymentMethodBilling)
				}
			} else if v, present := pr.Member("payment_method"); present && v != nil {
				method = true // a type error, already reported
			}
			pr.Done()
		}
		a.Done()
	}
	if !method {
		errs = append(errs, licensor.AttrError(licensor.CodeMissingAttribute, "/attributes/purchase_record/payment_method",
			"a purchase needs attributes.purchase_record.payment_method %q", PaymentMethodBilling))
	}
	if rels, ok := res.Object("relationships"); ok {
		if _, present := rels.Member("user"); present {
			if u, ok := rels.ToOne("user", "User"); ok && u != user {
				rels.Fail(licensor.CodeUserMismatch, "user/data/id", "a user buys for themselves: the user must be %q or left out", user)
			}
		}
		if product, ok := rels.ToOne("product", "Product"); ok {
			n, err := jsonapi.PathID(product, "product id")
			if err != nil {
				rels.Fail(licensor.CodeInvalidRelationship, "product/data/id", "product id must be a positive integer written as a string")
			}
			productID = n
		}
		rels.Done()
	} else if _, present := m["relationships"]; !present || m["relationships"] == nil {
		res.Fail(licensor.CodeInvalidRelationship, "relationships", "relationships.product is required")
	}
	res.Done()
	if len(errs) > 0 {
		return 0, errs
	}
	return productID, nil
}

// purchaseOrderID is the order_id of a purchase: a UUID (RFC 9562,
// version 8) made from the SHA-256 of the user id, the product id and the
// Idempotency-Key. A retry of the same purchase thus carries the same
// order_id, so that even after its idempotency record has expired, a
// retry while the first license lives is refused (409 ORDER_ID_CONFLICT)
// rather than billed twice.
func purchaseOrderID(user string, productID int64, key string) string {
	h := sha256.Sum256([]byte("licensor purchase\x00" + user + "\x00" + id(productID) + "\x00" + key))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // variant 10
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
