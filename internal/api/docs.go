package api

import (
	"compress/gzip"
	"embed"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The API reference page: Redoc's standalone bundle, vendored (docs/VENDOR.md),
// rendering this server's own document. Nothing is fetched from elsewhere,
// and the page's Content-Security-Policy lets nothing be: scripts, the
// document and styles come from this origin only; Redoc's search index runs
// in a worker it builds from a blob: URL.
//
//go:embed docs/index.html docs/redoc.standalone.js.gz
var docsFiles embed.FS

// docsCSP is the page's Content-Security-Policy. Redoc writes its styles into
// <style> elements at run time (styled-components), hence 'unsafe-inline' for
// styles only; no inline script runs.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// docsHeaders are the headers of the page and its script: cacheable for
// five minutes like the document (they change only with the server's
// version), never sniffed, never framed, never leaking the page's URL.
func docsHeaders(h http.Header, contentType string) {
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func (s *Server) getDocs(w http.ResponseWriter, r *http.Request) error {
	page, err := docsFiles.ReadFile("docs/index.html")
	if err != nil {
		return err
	}
	docsHeaders(w.Header(), "text/html; charset=utf-8")
	_, _ = w.Write(page)
	return nil
}

// getDocsScript serves the gzip-compressed bundle as it is stored, with
// Content-Encoding: gzip, to a client that accepts gzip, and decompressed
// to one that does not.
func (s *Server) getDocsScript(w http.ResponseWriter, r *http.Request) error {
	f, err := docsFiles.Open("docs/redoc.standalone.js.gz")
	if err != nil {
		return err
	}
	defer f.Close()
	docsHeaders(w.Header(), "text/javascript; charset=utf-8")
	w.Header().Set("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Values("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = io.Copy(w, f)
		return nil
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	_, _ = io.Copy(w, zr)
	return nil
}

// acceptsGzip reports whether Accept-Encoding lists gzip (or *) with a
// quality above zero.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "gzip" && name != "*" {
				continue
			}
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			if q > 0 {
				return true
			}
		}
	}
	return false
}
