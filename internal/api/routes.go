package api

import (
	_ "embed"
	"net/http"
	"slices"
	"strings"
)

// route is one operation of the API.
type route struct {
	method, path, operation string
	handle                  handlerFunc
}

// managementRoutes is the License Management API v4: the endpoint table of
// the contract, sorted by path. Every route is behind an API key.
func (s *Server) managementRoutes() []route {
	return []route{
		{"GET", basePath + "/licenses", "GetLicenses", s.getLicenses},
		{"POST", basePath + "/licenses", "CreateLicense", s.createLicense},
		{"POST", basePath + "/licenses/batch_create", "BatchCreateLicenses", s.batchCreateLicenses},
		{"POST", basePath + "/licenses/batch_delete", "BatchDeleteLicenses", s.batchDeleteLicenses},
		{"GET", basePath + "/licenses/{license_id}", "GetLicenseById", s.getLicense},
		{"DELETE", basePath + "/licenses/{license_id}", "DeleteLicenseById", s.deleteLicense},
		{"GET", basePath + "/products", "GetAllProducts", s.getProducts},
		{"POST", basePath + "/products", "CreateProduct", s.createProduct},
		{"GET", basePath + "/products/{product_id}", "GetProductById", s.getProduct},
		{"PATCH", basePath + "/products/{product_id}", "UpdateProduct", s.updateProduct},
		{"DELETE", basePath + "/products/{product_id}", "DeleteProductById", s.deleteProduct},
		{"GET", basePath + "/users/{user_id}/licenses", "GetLicensesByUser", s.getUserLicenses},
		{"GET", basePath + "/events", "GetEvents", s.getEvents},
		{"GET", basePath + "/webhooks", "GetWebhooks", s.getWebhooks},
		{"POST", basePath + "/webhooks", "CreateWebhook", s.createWebhook},
		{"GET", basePath + "/webhooks/{webhook_id}", "GetWebhookById", s.getWebhook},
		{"PATCH", basePath + "/webhooks/{webhook_id}", "UpdateWebhook", s.updateWebhook},
		{"DELETE", basePath + "/webhooks/{webhook_id}", "DeleteWebhookById", s.deleteWebhook},
		{"GET", basePath + "/webhooks/{webhook_id}/deliveries", "GetWebhookDeliveries", s.getDeliveries},
		{"POST", basePath + "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", "RedeliverWebhookDelivery", s.redeliver},
		{"GET", basePath + "/users/{user_id}/entitlements", "GetEntitlementsByUser", s.getEntitlements},
		{"POST", basePath + "/entitlements/check", "CheckEntitlements", s.checkEntitlements},
	}
}

// endUserRoutes is the End-user License API v4, sorted by path. Every
// route is behind a user's bearer token, whose subject must be the
// {user_id} of the path (enduser.go).
func (s *Server) endUserRoutes() []route {
	return []route{
		{"GET", endUserPath + "/products", "GetEndUserProducts", s.getEndUserProducts},
		{"GET", endUserPath + "/users/{user_id}/entitlements", "GetUserEntitlements", s.getUserEntitlements},
		{"GET", endUserPath + "/users/{user_id}/licenses", "GetUserLicenses", s.getEndUserLicenses},
		{"POST", endUserPath + "/users/{user_id}/licenses", "PurchaseUserLicense", s.purchase},
	}
}

// publicRoutes need no API key.
func (s *Server) publicRoutes() []route {
	routes := []route{
		{"GET", "/healthz", "GetHealth", s.healthz},
		{"GET", "/readyz", "GetReadiness", s.readyz},
		{"GET", basePath + "/openapi.json", "GetOpenAPI", s.openAPI},
	}
	if s.opts.MetricsOnAPI {
		routes = append(routes, route{"GET", "/metrics", "GetMetrics", s.serveMetrics})
	}
	return routes
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.handler().ServeHTTP(w, r)
	return nil
}

// routes builds the handler: middleware in the order a request meets it,
// then the mux.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range s.managementRoutes() {
		h := s.adapt(rt.handle)
		auth := s.authenticate
		switch {
		case rt.operation == "CheckEntitlements":
			auth = s.authenticateQuery // a POST that only reads: a read key may
		case rt.method == "GET" && strings.HasPrefix(rt.path, basePath+"/webhooks"):
			auth = s.authenticateWrite // subscriptions: write keys only, reads included
		case rt.method == "POST":
			h = s.idempotent(h)
		}
		mux.Handle(rt.method+" "+rt.path, s.noStore(auth(s.limitRate(s.limitBody(h)))))
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	for _, rt := range s.endUserRoutes() {
		mux.Handle(rt.method+" "+rt.path, s.endUserHandler(rt))
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	for _, rt := range s.publicRoutes() {
		mux.Handle(rt.method+" "+rt.path, s.adapt(rt.handle))
		methods[rt.path] = append(methods[rt.path], rt.method)
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

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIDocument)
	return nil
}
