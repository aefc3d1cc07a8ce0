package licensor

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Service is a way of watching a channel that a product can grant.
type Service string

// The services of the Amino v4 product relationships.
const (
	ServiceLive      Service = "live"
	ServiceCatchup   Service = "catchup"
	ServiceNPVR      Service = "npvr"
	ServiceStartover Service = "startover"
)

var services = [...]Service{ServiceLive, ServiceCatchup, ServiceNPVR, ServiceStartover}

// Services returns every service in the order of the contract (a new
// slice: the caller may change it).
func Services() []Service { return slices.Clone(services[:]) }

// Limits on product attributes.
const (
	MaxTitleLen           = 255
	MaxDescriptionLen     = 4096
	MaxChannelsPerService = 10000
)

// DefaultProductType is the type of a product created without one.
const DefaultProductType = "CHANNEL_GROUP"

// KnownProductTypes returns the product types seen in Amino deployments.
// Any upper-case identifier is accepted; these are documented.
func KnownProductTypes() []string {
	return []string{
		"CHANNEL_GROUP", "SVOD", "TVOD", "CATEGORY", "SEASON", "SERIES", "SEASON_GROUP",
		"SERIES_GROUP", "CATCHUP", "CHANNELNCATCHUP", "SEQUEL",
	}
}

// Channels maps each service to the channel ids a product grants for it.
// A service that is absent grants nothing.
type Channels map[Service][]string

// Product is a set of services a user can be granted access to, and the
// defaults of the licenses issued for it.
type Product struct {
	ID          int64
	Title       string
	Description string
	Type        string
	IsPremium   bool
	IsBuyable   bool
	IsVisible   bool
	Recurring   bool

	PriceAmount   *int64  // minor units
	PriceCurrency *string // ISO 4217
	// LicensePeriod is an ISO-8601 duration ("P1M"); "" means licenses do
	// not end by default.
	LicensePeriod string
	// RenewalMode decides who makes the successors of its recurring
	// licenses; "" means the deployment's (see RenewalMode).
	RenewalMode RenewalMode

	Channels Channels

	CreatedAt int64
	UpdatedAt int64
	// Version counts updates; it makes the ETag.
	Version int64
}

// Mode is the product's renewal mode in a deployment whose mode is def.
func (p *Product) Mode(def RenewalMode) RenewalMode {
	if p.RenewalMode != "" {
		return p.RenewalMode
	}
	return def
}

// ETag is the strong entity tag of the product's current version.
func (p *Product) ETag() string { return fmt.Sprintf(`"%d.%d"`, p.ID, p.Version) }

// NewProduct returns a product with the defaults of the contract.
func NewProduct(title string) Product {
	return Product{Title: title, Type: DefaultProductType, IsBuyable: true, IsVisible: true, Channels: Channels{}}
}

// ProductPatch is a partial update of a product: non-nil fields replace the
// current values; a non-nil Channels entry replaces that service's list.
type ProductPatch struct {
	Title         *string
	Description   *string
	Type          *string
	IsPremium     *bool
	IsBuyable     *bool
	IsVisible     *bool
	Recurring     *bool
	PriceAmount   **int64      // set to a nil *int64 to clear
	PriceCurrency **string     // set to a nil *string to clear
	LicensePeriod *string      // "" clears
	RenewalMode   *RenewalMode // "" clears
	Channels      Channels     // services present replace their list
}

// Update returns cur changed by the patch at now, as UpdateProduct stores
// it: cur must match ifMatch (CheckIfMatch), the result must be valid
// (Validate), and it gets the next version and UpdatedAt now.
func (u *ProductPatch) Update(cur *Product, ifMatch string, now int64) (Product, error) {
	if err := cur.CheckIfMatch(ifMatch); err != nil {
		return Product{}, err
	}
	p := u.Apply(*cur)
	if err := p.Validate(); err != nil {
		return Product{}, err
	}
	p.Version, p.UpdatedAt = cur.Version+1, now
	return p, nil
}

// Apply returns p with the patch applied (ID, times and version untouched).
func (u *ProductPatch) Apply(p Product) Product {
	if u.Title != nil {
		p.Title = *u.Title
	}
	if u.Description != nil {
		p.Description = *u.Description
	}
	if u.Type != nil {
		p.Type = *u.Type
	}
	if u.IsPremium != nil {
		p.IsPremium = *u.IsPremium
	}
	if u.IsBuyable != nil {
		p.IsBuyable = *u.IsBuyable
	}
	if u.IsVisible != nil {
		p.IsVisible = *u.IsVisible
	}
	if u.Recurring != nil {
		p.Recurring = *u.Recurring
	}
	if u.PriceAmount != nil {
		p.PriceAmount = *u.PriceAmount
	}
	if u.PriceCurrency != nil {
		p.PriceCurrency = *u.PriceCurrency
	}
	if u.LicensePeriod != nil {
		p.LicensePeriod = *u.LicensePeriod
	}
	if u.RenewalMode != nil {
		p.RenewalMode = *u.RenewalMode
	}
	if len(u.Channels) > 0 {
		merged := Channels{}
		for s, ids := range p.Channels {
			merged[s] = ids
		}
		for s, ids := range u.Channels {
			merged[s] = ids
		}
		p.Channels = merged
	}
	return p
}

var productTypePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// ValidProductType reports whether t is an upper-case identifier.
func ValidProductType(t string) bool { return productTypePattern.MatchString(t) }

// ValidChannelID reports whether id is a well-formed channel id: the same
// rule as user ids.
func ValidChannelID(id string) bool { return ValidUserID(id) }

// Validate checks the rules of a whole product (after defaults or a patch).
// Pointers are relative to the resource object.
func (p *Product) Validate() error {
	var errs Errors
	if n := TextLen(p.Title); n < 1 || n > MaxTitleLen {
		errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/title", "title must be 1 to %d characters", MaxTitleLen))
	}
	if TextLen(p.Description) > MaxDescriptionLen {
		errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/description", "description must be at most %d characters", MaxDescriptionLen))
	}
	if !ValidProductType(p.Type) {
		errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/type", "type must be an upper-case identifier such as CHANNEL_GROUP"))
	}
	if p.PriceAmount != nil && *p.PriceAmount < 0 {
		errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/price_currency_amount", "price must not be negative"))
	}
	if p.PriceCurrency != nil && !ValidCurrency(*p.PriceCurrency) {
		errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/price_currency_iso4217", "unknown ISO 4217 currency %q", *p.PriceCurrency))
	}
	if (p.PriceAmount == nil) != (p.PriceCurrency == nil) {
		if p.PriceAmount == nil {
			errs = append(errs, AttrError(CodeMissingAttribute, "/attributes/price_currency_amount", "a currency needs a price amount"))
		} else {
			errs = append(errs, AttrError(CodeMissingAttribute, "/attributes/price_currency_iso4217", "a price needs a currency"))
		}
	}
	if p.LicensePeriod != "" {
		if _, err := ParsePeriod(p.LicensePeriod); err != nil {
			errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/license_period", "%v", err))
		}
	}
	if p.RenewalMode != "" && !p.RenewalMode.Valid() {
		errs = append(errs, AttrError(CodeInvalidAttribute, "/attributes/renewal_mode", "renewal_mode must be %s, %s or null", RenewalAutomatic, RenewalNotify))
	}
	for _, s := range services {
		ids := p.Channels[s]
		if len(ids) > MaxChannelsPerService {
			errs = append(errs, AttrError(CodeInvalidRelationship, "/relationships/"+string(s), "at most %d channels per service", MaxChannelsPerService))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// CheckIfMatch compares an If-Match value (one ETag, a comma-separated
// list, or "*") with the product's current ETag: nil when it matches or is
// empty, CodePreconditionFailed otherwise.
func (p *Product) CheckIfMatch(ifMatch string) error {
	if ifMatch == "" {
		return nil
	}
	etag := p.ETag()
	for _, t := range strings.Split(ifMatch, ",") {
		if t = strings.TrimSpace(t); t == "*" || t == etag {
			return nil
		}
	}
	return Errorf(CodePreconditionFailed, "If-Match does not match the current ETag of product %d", p.ID)
}

// FormatChannels is the text form in which stores keep a product's
// channels (JSON: {"live":["espn"],...}).
func FormatChannels(c Channels) (string, error) {
	if c == nil {
		return "{}", nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode channels: %w", err)
	}
	return string(b), nil
}

// ParseChannels reads FormatChannels' text; the result is never nil.
func ParseChannels(s string) (Channels, error) {
	var c Channels
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, fmt.Errorf("decode channels: %w", err)
	}
	if c == nil {
		c = Channels{}
	}
	return c, nil
}

// ProductCursor is the keyset position of p in a walk of products sorted by
// field (id, title or created_at; empty is id).
func ProductCursor(p *Product, field string) *Cursor {
	switch field {
	case "title":
		return &Cursor{Str: p.Title, ID: p.ID}
	case "created_at":
		return &Cursor{Int: p.CreatedAt, ID: p.ID}
	}
	return &Cursor{Int: p.ID, ID: p.ID}
}
