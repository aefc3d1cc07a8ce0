package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/licensor/licensor"
)

const mediaType = "application/vnd.api+json"

// The resource objects are the root package's (events carry the same form).
type (
	identifier        = licensor.ResourceIdentifier
	toOne             = licensor.ToOne
	toMany            = licensor.ToMany
	selfLink          = licensor.SelfLink
	licenseResource   = licensor.LicenseObject
	licenseAttributes = licensor.LicenseAttributes
	licenseRelations  = licensor.LicenseRelationships
	productResource   = licensor.ProductObject
	productRelations  = licensor.ProductRelationships
)

type (
	listLinks struct {
		Self string `json:"self"`
		Next string `json:"next,omitempty"`
	}
	listMeta struct {
		Total *int64 `json:"total,omitempty"`
	}
)

func id(n int64) string { return strconv.FormatInt(n, 10) }

// licenseOut is the wire form of l as seen at unix time now.
func licenseOut(l *licensor.License, now int64) licenseResource {
	return licensor.NewLicenseObject(l, now)
}

func productOut(p *licensor.Product) productResource { return licensor.NewProductObject(p) }

// encode writes v as a JSON:API document with the given status.
func encode(w http.ResponseWriter, status int, v any) error {
	return writeJSON(w, status, mediaType, v)
}

// writeJSON writes v as JSON of the given media type.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b) // a client that went away is not the handler's failure
	return nil
}
