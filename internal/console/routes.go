package console

import (
	"io/fs"
	"net/http"
)

// routes is every page of the console, on one page.
func (c *Console) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static")
	mux.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", http.FileServerFS(static)))

	mux.HandleFunc("GET "+Prefix+"/signin", c.signinForm)
	mux.HandleFunc("POST "+Prefix+"/signin", c.signin)
	mux.HandleFunc("POST "+Prefix+"/signout", c.authed(false, c.signout))

	mux.HandleFunc("GET "+Prefix+"/{$}", c.authed(false, c.overview))
	mux.HandleFunc("GET "+Prefix+"/subscriber", c.authed(false, c.subscriber))
	mux.HandleFunc("GET "+Prefix+"/licenses", c.authed(false, c.licenses))
	mux.HandleFunc("GET "+Prefix+"/licenses/{id}", c.authed(false, c.license))
	mux.HandleFunc("GET "+Prefix+"/licenses/{id}/delete", c.authed(true, c.confirmDeleteLicense))
	mux.HandleFunc("POST "+Prefix+"/licenses/{id}/delete", c.authed(true, c.deleteLicense))
	mux.HandleFunc("GET "+Prefix+"/keys", c.authed(true, c.keys))
	mux.HandleFunc("POST "+Prefix+"/keys", c.authed(true, c.createKey))
	mux.HandleFunc("GET "+Prefix+"/keys/{prefix}/revoke", c.authed(true, c.confirmRevokeKey))
	mux.HandleFunc("POST "+Prefix+"/keys/{prefix}/revoke", c.authed(true, c.revokeKey))
	mux.HandleFunc("POST "+Prefix+"/keys/{name}/rotate", c.authed(true, c.rotateKey))
	mux.HandleFunc("GET "+Prefix+"/products", c.authed(false, c.products))
	mux.HandleFunc("POST "+Prefix+"/products", c.authed(true, c.createProduct))
	mux.HandleFunc("GET "+Prefix+"/products/new", c.authed(true, c.newProduct))
	mux.HandleFunc("GET "+Prefix+"/products/{id}", c.authed(false, c.product))
	mux.HandleFunc("POST "+Prefix+"/products/{id}", c.authed(true, c.updateProduct))
	mux.HandleFunc("GET "+Prefix+"/products/{id}/delete", c.authed(true, c.product))
	mux.HandleFunc("POST "+Prefix+"/products/{id}/delete", c.authed(true, c.deleteProduct))
	mux.HandleFunc("GET "+Prefix+"/webhooks", c.authed(true, c.webhooks))
	mux.HandleFunc("POST "+Prefix+"/webhooks", c.authed(true, c.createWebhook))
	mux.HandleFunc("GET "+Prefix+"/webhooks/{id}", c.authed(true, c.webhook))
	mux.HandleFunc("GET "+Prefix+"/webhooks/{id}/delete", c.authed(true, c.webhook))
	mux.HandleFunc("POST "+Prefix+"/webhooks/{id}/delete", c.authed(true, c.deleteWebhook))
	mux.HandleFunc("POST "+Prefix+"/webhooks/{id}/pause", c.authed(true, c.pauseWebhook))
	mux.HandleFunc("POST "+Prefix+"/webhooks/{id}/resume", c.authed(true, c.pauseWebhook))
	mux.HandleFunc("POST "+Prefix+"/webhooks/{id}/deliveries/{delivery}/redeliver", c.authed(true, c.redeliver))
	mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) { redirect(w, r, "/") })
	mux.HandleFunc(Prefix+"/", c.authed(false, func(w http.ResponseWriter, r *http.Request, s *session) error {
		c.render(w, r, http.StatusNotFound, "error", s, page{Title: "Not found", Error: "There is no such page in the console."})
		return nil
	}))
	return mux
}
