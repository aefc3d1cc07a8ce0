package api

import (
	_ "embed"
	"net/http"
	"slices"
	"strings"

	"github.com/licensor/licensor"
)

// access is who may call a route.
type access int

const (
	anyone    access = iota // no credentials: health, readiness, the document
	readKey                 // an API key of scope read or write
	writeKey                // an API key of scope write
	userToken               // an end user's bearer token, its subject the path's {user_id}
)

// scope is the API key scope a route needs.
func (a access) scope() licensor.Scope {
	if a == writeKey {
		return licensor.ScopeWrite
	}
	return licensor.ScopeRead
}

// idempotency is whether a route honours an Idempotency-Key header: the
// first answer to a key is kept and replayed to repeats (idempotency.go).
type idempotency int

const (
	noKey       idempotency = iota // reads; deletes; updates guarded by If-Match
	keyOptional                    // honoured when sent
	keyRequired                    // refused without one (400 IDEMPOTENCY_KEY_REQUIRED)
)

// route is one operation of the API: the endpoint table of the contract,
// with who may call it and whether it honours an Idempotency-Key.
type route struct {
	method, path, operation string
	access                  access
	idempotency             idempotency
	handle                  handlerFunc
}

// routeTable is every route, sorted by path within each API. Handlers are
// named after their operation ids.
func (s *Server) routeTable() []route {
	m, u := basePath, endUserPath
	routes := []route{
		// License Management API v4: a BSS with an API key.
		// Bulk jobs change many licenses: write keys only, reads included.
		{"POST", m + "/bulk_jobs", "CreateBulkJob", writeKey, keyOptional, s.createBulkJob},
		{"GET", m + "/bulk_jobs/{bulk_job_id}", "GetBulkJobById", writeKey, noKey, s.getBulkJobById},
		{"POST", m + "/bulk_jobs/{bulk_job_id}/cancel", "CancelBulkJob", writeKey, keyOptional, s.cancelBulkJob},
		{"GET", m + "/docs", "GetDocs", anyone, noKey, s.getDocs},
		{"GET", m + "/docs/redoc.standalone.js", "GetDocsScript", anyone, noKey, s.getDocsScript},
		{"POST", m + "/entitlements/check", "CheckEntitlements", readKey, noKey, s.checkEntitlements},
		{"GET", m + "/events", "GetEvents", readKey, noKey, s.getEvents},
		{"GET", m + "/licenses", "GetLicenses", readKey, noKey, s.getLicenses},
		{"POST", m + "/licenses", "CreateLicense", writeKey, keyOptional, s.createLicense},
		{"POST", m + "/licenses/batch_create", "BatchCreateLicenses", writeKey, keyOptional, s.batchCreateLicenses},
		{"POST", m + "/licenses/batch_delete", "BatchDeleteLicenses", writeKey, keyOptional, s.batchDeleteLicenses},
		{"GET", m + "/licenses/{license_id}", "GetLicenseById", readKey, noKey, s.getLicenseById},
		{"DELETE", m + "/licenses/{license_id}", "DeleteLicenseById", writeKey, noKey, s.deleteLicenseById},
		{"POST", m + "/licenses/{license_id}/cancel-renewal", "CancelLicenseRenewal", writeKey, keyOptional, s.cancelLicenseRenewal},
		{"POST", m + "/licenses/{license_id}/reinstate", "ReinstateLicense", writeKey, keyOptional, s.reinstateLicense},
		{"POST", m + "/licenses/{license_id}/suspend", "SuspendLicense", writeKey, keyOptional, s.suspendLicense},
		{"GET", m + "/openapi.json", "GetOpenAPI", anyone, noKey, s.getOpenAPI},
		{"GET", m + "/products", "GetAllProducts", readKey, noKey, s.getAllProducts},
		{"POST", m + "/products", "CreateProduct", writeKey, keyOptional, s.createProduct},
		{"GET", m + "/products/{product_id}", "GetProductById", readKey, noKey, s.getProductById},
		{"PATCH", m + "/products/{product_id}", "UpdateProduct", writeKey, noKey, s.updateProduct},
		{"DELETE", m + "/products/{product_id}", "DeleteProductById", writeKey, noKey, s.deleteProductById},
		{"GET", m + "/users/{user_id}/entitlements", "GetEntitlementsByUser", readKey, noKey, s.getEntitlementsByUser},
		{"GET", m + "/users/{user_id}/licenses", "GetLicensesByUser", readKey, noKey, s.getLicensesByUser},
		{"POST", m + "/users/{user_id}/licenses/reinstate", "ReinstateLicensesByUser", writeKey, keyOptional, s.reinstateLicensesByUser},
		{"POST", m + "/users/{user_id}/licenses/suspend", "SuspendLicensesByUser", writeKey, keyOptional, s.suspendLicensesByUser},
		// Webhook subscriptions carry their signing secrets: write keys only,
		// reads included.
		{"GET", m + "/webhooks", "GetWebhooks", writeKey, noKey, s.getWebhooks},
		{"POST", m + "/webhooks", "CreateWebhook", writeKey, keyOptional, s.createWebhook},
		{"GET", m + "/webhooks/{webhook_id}", "GetWebhookById", writeKey, noKey, s.getWebhookById},
		{"PATCH", m + "/webhooks/{webhook_id}", "UpdateWebhook", writeKey, noKey, s.updateWebhook},
		{"DELETE", m + "/webhooks/{webhook_id}", "DeleteWebhookById", writeKey, noKey, s.deleteWebhookById},
		{"GET", m + "/webhooks/{webhook_id}/deliveries", "GetWebhookDeliveries", writeKey, noKey, s.getWebhookDeliveries},
		{"POST", m + "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", "RedeliverWebhookDelivery", writeKey, keyOptional, s.redeliverWebhookDelivery},

		// End-user License API v4: a viewer's app with the user's token.
		{"GET", u + "/products", "GetEndUserProducts", userToken, noKey, s.getEndUserProducts},
		{"GET", u + "/users/{user_id}/entitlements", "GetUserEntitlements", userToken, noKey, s.getUserEntitlements},
		{"GET", u + "/users/{user_id}/licenses", "GetUserLicenses", userToken, noKey, s.getUserLicenses},
		{"POST", u + "/users/{user_id}/licenses", "PurchaseUserLicense", userToken, keyRequired, s.purchaseUserLicense},

		// Operations: no key.
		{"GET", "/healthz", "GetHealth", anyone, noKey, s.getHealth},
		{"GET", "/metrics", "GetMetrics", anyone, noKey, s.getMetrics},
		{"GET", "/readyz", "GetReadiness", anyone, noKey, s.getReadiness},
	}
	if !s.opts.MetricsOnAPI { // served on a listener of its own
		routes = slices.DeleteFunc(routes, func(rt route) bool { return rt.operation == "GetMetrics" })
	}
	return routes
}

func (s *Server) getMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.Handler().ServeHTTP(w, r)
	return nil
}

// wrap is a route's handler wrapped in what its table entry asks for;
// a request meets the layers from the last added to the first.
func (s *Server) wrap(rt route) http.Handler {
	h := s.adapt(rt.handle)
	if rt.idempotency != noKey {
		h = s.idempotent(h)
	}
	if rt.access == anyone {
		return h
	}
	h = s.limitBody(h)
	if rt.idempotency == keyRequired {
		h = s.requireIdempotencyKey(h)
	}
	if rt.access == userToken {
		// End users have no API key: their rate limit is per user, spent
		// before the body is read; a user's writes need the right to buy.
		if rt.method != http.MethodGet {
			h = s.canPurchase(h)
		}
		return s.cors(s.noStore(s.bearer(s.limitUserRate(h))))
	}
	return s.noStore(s.authenticate(rt.access.scope(), s.limitRate(h)))
}

// routes builds the handler: middleware in the order a request meets it,
// then the mux.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range s.routeTable() {
		mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	// CORS preflights of the end-user API, when origins are configured
	// (cors.go). They are protocol, not operations: not in the document.
	if s.corsOrigins != nil {
		for path, ms := range methods {
			if strings.HasPrefix(path, endUserPath+"/") {
				mux.Handle("OPTIONS "+path, s.noStore(s.adapt(s.preflight(strings.Join(ms, ", ")))))
			}
		}
	}
	// Any other method on a known path: 405 with Allow, as JSON:API. The
	// batch paths share the {license_id} pattern's fallback (a methodless
	// pattern of their own would conflict with GET .../{license_id}).
	for path, ms := range methods {
		if strings.HasSuffix(path, "/batch_create") || strings.HasSuffix(path, "/batch_delete") {
			continue
		}
		if slices.Contains(ms, "GET") {
			ms = append(ms, "HEAD")
		}
		mux.Handle(path, s.noStore(s.adapt(methodNotAllowed(strings.Join(ms, ", ")))))
	}
	mux.Handle("/", s.adapt(notFound))
	return s.recoverPanics(s.requestID(s.accessLog(mux)))
}

//go:embed openapi.json
var openAPIDocument []byte

func (s *Server) getOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDocument)
	return nil
}
