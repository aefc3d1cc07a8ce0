package api

import (
	"strconv"

	"github.com/licensor/licensor"
)

// The resource objects are the root package's (events carry the same form).
type (
	identifier       = licensor.ResourceIdentifier
	toOne            = licensor.ToOne
	toMany           = licensor.ToMany
	selfLink         = licensor.SelfLink
	licenseResource  = licensor.LicenseObject
	licenseRelations = licensor.LicenseRelationships
	productResource  = licensor.ProductObject
	productRelations = licensor.ProductRelationships
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
