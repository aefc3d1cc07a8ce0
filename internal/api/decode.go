package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
)

// readResource reads a request that takes no query parameters and whose
// body is one JSON:API resource: the resource's members, and the base of
// the pointers of errors found in it.
func readResource(r *http.Request) (map[string]any, resourceBase, error) {
	if err := newQuery(r.URL).done(); err != nil {
		return nil, nil, err
	}
	doc, err := readDocument(r, shapeLimits{})
	if err != nil {
		return nil, nil, err
	}
	items, bases, err := resources(doc, false)
	if err != nil {
		return nil, nil, err
	}
	return items[0], singleBase(bases[0]), nil
}

// readDocument checks the media type, reads the capped body and parses it
// as a JSON object within limits. Numbers stay json.Number so that
// integers are exact.
func readDocument(r *http.Request, limits shapeLimits) (map[string]any, error) {
	if err := checkMediaType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, bodyReadError(err)
	}
	return parseDocument(body, limits)
}

// bodyReadError explains a failure to read the request body.
func bodyReadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return licensor.Errorf(licensor.CodeBodyTooLarge, "the request body is larger than %d bytes", tooBig.Limit)
	}
	return licensor.Errorf(licensor.CodeMalformedJSON, "the request body could not be read")
}

// parseDocument parses body as one JSON object, once checkShape has found
// it within limits, every string of which keeps the rule of
// licensor.ValidText (see checkBodyText).
func parseDocument(body []byte, limits shapeLimits) (map[string]any, error) {
	if err := checkShape(body, limits); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if err == io.EOF {
			return nil, licensor.Errorf(licensor.CodeMalformedJSON, "the request body is empty; a JSON:API document is required")
		}
		return nil, licensor.Errorf(licensor.CodeMalformedJSON, "the request body is not valid JSON: %s", jsonErrorText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, licensor.Errorf(licensor.CodeMalformedJSON, "the request body has data after the JSON document")
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, &licensor.Error{Code: licensor.CodeMalformedJSON, Pointer: "", Detail: "the request body must be a JSON object with a data member"}
	}
	if e := checkBodyText(body); e != nil {
		return nil, e
	}
	return doc, nil
}

func jsonErrorText(err error) string {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s (at byte %d)", syn.Error(), syn.Offset)
	}
	return "unexpected end of input"
}

// checkMediaType accepts a request body as application/json (with any
// parameters) or as the JSON:API media type with no parameter but profile
// (which a server may ignore), an empty ext, and charset=utf-8. JSON:API
// 1.1 answers any other parameter, and an extension the server does not
// support, with 415; this server supports no extension. charset=utf-8 is
// the exception because HTTP libraries add it on their own (a BSS client
// written against Amino's docs, which say nothing of it, must keep
// working) and it says nothing new: JSON is UTF-8 (RFC 8259).
func checkMediaType(ct string) error {
	if ct == "" {
		return licensor.Errorf(licensor.CodeUnsupportedMediaType, "Content-Type must be application/vnd.api+json or application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && mt != mediaType) {
		return licensor.Errorf(licensor.CodeUnsupportedMediaType, "Content-Type %q is not supported; use application/vnd.api+json or application/json", ct)
	}
	if mt != mediaType {
		return nil
	}
	names := slices.Sorted(maps.Keys(params))
	for _, name := range names {
		switch v := strings.TrimSpace(params[name]); {
		case name == "profile", name == "ext" && v == "", name == "charset" && strings.EqualFold(v, "utf-8"):
		case name == "ext":
			return licensor.Errorf(licensor.CodeUnsupportedMediaType, "Content-Type %q asks for the JSON:API extension %q; this server supports none", ct, v)
		default:
			return licensor.Errorf(licensor.CodeUnsupportedMediaType, "Content-Type %q has the parameter %q; JSON:API allows only ext and profile on application/vnd.api+json", ct, name)
		}
	}
	return nil
}

// object walks a JSON object, remembering which members were read so that
// the rest can be reported as unknown, and collecting errors with pointers.
type object struct {
	m    map[string]any
	ptr  string // JSON pointer of this object, relative to the resource
	seen map[string]bool
	errs *licensor.Errors
}

func newObject(m map[string]any, ptr string, errs *licensor.Errors) *object {
	return &object{m: m, ptr: ptr, seen: map[string]bool{}, errs: errs}
}

func (o *object) fail(code licensor.Code, member, format string, args ...any) {
	if len(*o.errs) >= MaxErrorObjects {
		*o.errs = append(*o.errs, errOmitted) // not formatted: it will not be shown
		return
	}
	*o.errs = append(*o.errs, licensor.AttrError(code, o.ptr+"/"+member, format, args...))
}

// get returns a member; null counts as absent.
func (o *object) get(name string) (any, bool) {
	o.seen[name] = true
	v, ok := o.m[name]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

// forbid reports a present member that clients may not send.
func (o *object) forbid(name, why string) {
	if _, ok := o.m[name]; ok {
		o.seen[name] = true
		o.fail(licensor.CodeInvalidAttribute, name, "%s", why)
	}
}

// ignore marks members that are accepted and ignored.
func (o *object) ignore(names ...string) {
	for _, n := range names {
		o.seen[n] = true
	}
}

// done reports every member that was not read.
func (o *object) done() {
	var unknown []string
	for k := range o.m {
		if !o.seen[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		o.fail(licensor.CodeUnknownAttribute, escapePointer(k), "unknown member %q", k)
	}
}

func (o *object) object(name string) (*object, bool) {
	v, ok := o.get(name)
	if !ok {
		return nil, false
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		o.fail(licensor.CodeInvalidAttribute, name, "%s must be an object", name)
		return nil, false
	}
	return newObject(m, o.ptr+"/"+name, o.errs), true
}

func (o *object) str(name string, maxLen int) (*string, bool) {
	v, ok := o.get(name)
	if !ok {
		return nil, false
	}
	s, isStr := v.(string)
	if !isStr {
		o.fail(licensor.CodeInvalidAttribute, name, "%s must be a string", name)
		return nil, false
	}
	if maxLen > 0 && licensor.TextLen(s) > maxLen {
		o.fail(licensor.CodeInvalidAttribute, name, "%s must be at most %d characters", name, maxLen)
		return nil, false
	}
	return &s, true
}

func (o *object) boolean(name string) (*bool, bool) {
	v, ok := o.get(name)
	if !ok {
		return nil, false
	}
	b, isBool := v.(bool)
	if !isBool {
		o.fail(licensor.CodeInvalidAttribute, name, "%s must be true or false", name)
		return nil, false
	}
	return &b, true
}

// integer reads an int64 member; min bounds it from below.
func (o *object) integer(name string, min int64) (*int64, bool) {
	v, ok := o.get(name)
	if !ok {
		return nil, false
	}
	num, isNum := v.(json.Number)
	if !isNum {
		o.fail(licensor.CodeInvalidAttribute, name, "%s must be an integer", name)
		return nil, false
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil {
		o.fail(licensor.CodeInvalidAttribute, name, "%s must be an integer that fits 64 bits, not %s", name, num)
		return nil, false
	}
	if n < min {
		o.fail(licensor.CodeInvalidAttribute, name, "%s must be at least %d", name, min)
		return nil, false
	}
	return &n, true
}

// typ checks the type member of a resource identifier in a relationship
// (the primary data's own type: primaryType).
func (o *object) typ(want string) {
	v, ok := o.get("type")
	if !ok {
		o.fail(licensor.CodeMissingAttribute, "type", "type %q is required", want)
		return
	}
	if s, _ := v.(string); s != want {
		o.fail(licensor.CodeInvalidAttribute, "type", "type must be %q", want)
	}
}

// primaryType checks the type member of the request's primary data: a type
// the endpoint does not take is JSON:API's 409 Conflict, not a bad value.
func (o *object) primaryType(want string) {
	v, ok := o.get("type")
	if !ok {
		o.fail(licensor.CodeMissingAttribute, "type", "type %q is required", want)
		return
	}
	s, isString := v.(string)
	switch {
	case !isString:
		// Not a resource type at all: a malformed document, not a conflict.
		o.fail(licensor.CodeInvalidAttribute, "type", "type must be the string %q", want)
	case s != want:
		o.fail(licensor.CodeResourceMismatch, "type", "type must be %q: this endpoint takes %s resources", want, want)
	}
}

// toOne reads relationships.NAME = {"data": {"type": typ, "id": "..."}}.
func (o *object) toOne(name, typ string) (string, bool) {
	rel, ok := o.object(name)
	if !ok {
		if _, present := o.m[name]; !present || o.m[name] == nil {
			o.fail(licensor.CodeInvalidRelationship, name, "relationship %s is required", name)
		}
		return "", false
	}
	data, ok := rel.object("data")
	rel.done()
	if !ok {
		if _, present := rel.m["data"]; !present || rel.m["data"] == nil {
			rel.fail(licensor.CodeInvalidRelationship, "data", "relationship %s needs data {\"type\": %q, \"id\": ...}", name, typ)
		}
		return "", false
	}
	before := len(*o.errs)
	data.typ(typ)
	idv, _ := data.str("id", 0)
	data.done()
	if idv == nil {
		if _, present := data.m["id"]; !present {
			data.fail(licensor.CodeInvalidRelationship, "id", "relationship %s needs an id", name)
		}
		return "", false
	}
	return *idv, len(*o.errs) == before
}

// resources returns the resource objects of a document's data member:
// one for a single-resource request (object or one-element array), any
// number for a batch. Each comes with its pointer base.
func resources(doc map[string]any, batch bool) ([]map[string]any, []string, error) {
	for k := range doc {
		if k != "data" && k != "meta" && k != "jsonapi" {
			return nil, nil, &licensor.Error{Code: licensor.CodeUnknownAttribute, Pointer: "/" + escapePointer(k), Detail: fmt.Sprintf("unknown top-level member %q", k)}
		}
	}
	data, ok := doc["data"]
	if !ok || data == nil {
		return nil, nil, &licensor.Error{Code: licensor.CodeMissingAttribute, Pointer: "/data", Detail: "the document needs a data member"}
	}
	switch v := data.(type) {
	case map[string]any:
		if batch {
			return nil, nil, &licensor.Error{Code: licensor.CodeInvalidRequest, Pointer: "/data", Detail: "data must be an array of resource objects"}
		}
		return []map[string]any{v}, []string{"/data"}, nil
	case []any:
		if !batch && len(v) != 1 {
			return nil, nil, &licensor.Error{Code: licensor.CodeInvalidRequest, Pointer: "/data", Detail: "data must be one resource object (or an array of exactly one)"}
		}
		out := make([]map[string]any, len(v))
		bases := make([]string, len(v))
		for i, item := range v {
			m, ok := item.(map[string]any)
			if !ok {
				return nil, nil, &licensor.Error{Code: licensor.CodeInvalidRequest, Pointer: "/data/" + strconv.Itoa(i), Detail: "each item of data must be a resource object"}
			}
			out[i], bases[i] = m, "/data/"+strconv.Itoa(i)
		}
		return out, bases, nil
	default:
		return nil, nil, &licensor.Error{Code: licensor.CodeInvalidRequest, Pointer: "/data", Detail: "data must be a resource object or an array of them"}
	}
}

// parseLicense reads a License resource object of a create request.
// Pointers in the errors are relative to the resource object.
func parseLicense(m map[string]any) (licensor.LicenseDraft, error) {
	var errs licensor.Errors
	var d licensor.LicenseDraft
	res := newObject(m, "", &errs)
	res.primaryType("License")
	res.forbid("id", "id is assigned by the server; leave it out")
	res.ignore("links", "meta")
	if a, ok := res.object("attributes"); ok {
		if s, ok := a.str("status", 0); ok {
			st := licensor.Status(*s)
			if !st.Valid() {
				a.fail(licensor.CodeInvalidAttribute, "status", "unknown status %q; one of %s", *s, joinStatuses())
			} else {
				d.Status = &st
			}
		}
		d.StartDate, _ = a.integer("start_date", 0)
		d.StopDate, _ = a.integer("stop_date", 0)
		if s, ok := a.str("order_id", licensor.MaxOrderIDLen); ok {
			if *s == "" {
				a.fail(licensor.CodeInvalidAttribute, "order_id", "order_id must not be empty (leave it out instead)")
			} else {
				d.OrderID = s
			}
		}
		if rr, ok := a.object("renew_record"); ok {
			d.Recurring, _ = rr.boolean("recurring")
			d.ExpiryDate, _ = rr.integer("expiry_date", 0)
			rr.done()
		}
		if pr, ok := a.object("purchase_record"); ok {
			d.PriceAmount, _ = pr.integer("price_currency_amount", 0)
			if c, ok := pr.str("price_currency_iso4217", 0); ok {
				if !licensor.ValidCurrency(*c) {
					pr.fail(licensor.CodeInvalidAttribute, "price_currency_iso4217", "unknown ISO 4217 currency %q", *c)
				} else {
					d.PriceCurrency = c
				}
			}
			d.PurchaseTimestamp, _ = pr.integer("purchase_timestamp", 0)
			d.PaymentMethod, _ = pr.str("payment_method", licensor.MaxPaymentMethodLen)
			pr.done()
		}
		a.forbid("created_at", "created_at is read-only")
		a.done()
	}
	if rels, ok := res.object("relationships"); ok {
		if user, ok := rels.toOne("user", "User"); ok {
			if !licensor.ValidUserID(user) {
				rels.fail(licensor.CodeInvalidRelationship, "user/data/id", "user id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
			}
			d.UserID = user
		}
		if product, ok := rels.toOne("product", "Product"); ok {
			n, err := strconv.ParseInt(product, 10, 64)
			if err != nil || n <= 0 {
				rels.fail(licensor.CodeInvalidRelationship, "product/data/id", "product id must be a positive integer written as a string")
			}
			d.ProductID = n
		}
		rels.done()
	} else if _, present := m["relationships"]; !present || m["relationships"] == nil {
		res.fail(licensor.CodeInvalidRelationship, "relationships", "relationships user and product are required")
	}
	res.done()
	if len(errs) > 0 {
		return d, errs
	}
	return d, nil
}

// parseProduct reads a Product resource object into a patch. On create
// (wantID == 0) id must be absent and title present; on update an id, if
// present, must equal wantID.
func parseProduct(m map[string]any, wantID int64) (licensor.ProductPatch, error) {
	var errs licensor.Errors
	var p licensor.ProductPatch
	res := newObject(m, "", &errs)
	res.primaryType("Product")
	res.ignore("links", "meta")
	if wantID == 0 {
		res.forbid("id", "id is assigned by the server; leave it out")
	} else if s, ok := res.str("id", 0); ok && *s != id(wantID) {
		res.fail(licensor.CodeResourceMismatch, "id", "id %q does not match the product in the path (%d)", *s, wantID)
	}
	if a, ok := res.object("attributes"); ok {
		p.Title, _ = a.str("title", licensor.MaxTitleLen)
		if p.Title != nil && *p.Title == "" {
			a.fail(licensor.CodeInvalidAttribute, "title", "title must not be empty")
		}
		p.Description, _ = a.str("description", licensor.MaxDescriptionLen)
		if t, ok := a.str("type", 0); ok {
			if !licensor.ValidProductType(*t) {
				a.fail(licensor.CodeInvalidAttribute, "type", "type must be an upper-case identifier such as CHANNEL_GROUP")
			} else {
				p.Type = t
			}
		}
		p.IsPremium, _ = a.boolean("is_premium")
		p.IsBuyable, _ = a.boolean("is_buyable")
		p.IsVisible, _ = a.boolean("is_visible")
		p.Recurring, _ = a.boolean("recurring")
		if _, present := a.m["price_currency_amount"]; present {
			amount, _ := a.integer("price_currency_amount", 0)
			p.PriceAmount = &amount
		}
		if v, present := a.m["price_currency_iso4217"]; present {
			c, ok := a.str("price_currency_iso4217", 0)
			switch {
			case v != nil && !ok:
			case c != nil && !licensor.ValidCurrency(*c):
				a.fail(licensor.CodeInvalidAttribute, "price_currency_iso4217", "unknown ISO 4217 currency %q", *c)
			default:
				p.PriceCurrency = &c
			}
		}
		if v, present := a.m["license_period"]; present {
			lp, ok := a.str("license_period", 0)
			switch {
			case v != nil && !ok:
			case lp == nil:
				empty := ""
				p.LicensePeriod = &empty
			default:
				if _, err := licensor.ParsePeriod(*lp); err != nil {
					a.fail(licensor.CodeInvalidAttribute, "license_period", "%v", err)
				} else {
					p.LicensePeriod = lp
				}
			}
		}
		a.forbid("created_at", "created_at is read-only")
		a.forbid("updated_at", "updated_at is read-only")
		a.done()
	}
	if wantID == 0 && p.Title == nil && !hasPointer(errs, "/attributes/title") {
		res.fail(licensor.CodeMissingAttribute, "attributes/title", "title is required")
	}
	if rels, ok := res.object("relationships"); ok {
		for _, s := range licensor.Services() {
			ids, ok := rels.toMany(string(s), "Channel")
			if ok {
				if p.Channels == nil {
					p.Channels = licensor.Channels{}
				}
				p.Channels[s] = ids
			}
		}
		rels.done()
	}
	res.done()
	if len(errs) > 0 {
		return p, errs
	}
	return p, nil
}

// toMany reads relationships.NAME = {"data": [{"type": typ, "id": "..."}, ...]}.
func (o *object) toMany(name, typ string) ([]string, bool) {
	rel, ok := o.object(name)
	if !ok {
		return nil, false
	}
	defer rel.done()
	v, present := rel.get("data")
	list, isList := v.([]any)
	if !present || !isList {
		rel.fail(licensor.CodeInvalidRelationship, "data", "relationship %s needs data: an array of {\"type\": %q, \"id\": ...}", name, typ)
		return nil, false
	}
	if len(list) > licensor.MaxChannelsPerService {
		rel.fail(licensor.CodeInvalidRelationship, "data", "at most %d channels per service", licensor.MaxChannelsPerService)
		return nil, false
	}
	before := len(*o.errs)
	ids := make([]string, 0, len(list))
	seen := map[string]bool{}
	for i, item := range list {
		m, isObj := item.(map[string]any)
		if !isObj {
			rel.fail(licensor.CodeInvalidRelationship, "data/"+strconv.Itoa(i), "each item must be {\"type\": %q, \"id\": ...}", typ)
			continue
		}
		ident := newObject(m, rel.ptr+"/data/"+strconv.Itoa(i), o.errs)
		ident.typ(typ)
		cid, ok := ident.str("id", 0)
		ident.done()
		switch {
		case !ok:
			if _, present := m["id"]; !present {
				ident.fail(licensor.CodeInvalidRelationship, "id", "a channel needs an id")
			}
		case !licensor.ValidChannelID(*cid):
			ident.fail(licensor.CodeInvalidRelationship, "id", "channel id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
		case seen[*cid]:
			ident.fail(licensor.CodeInvalidRelationship, "id", "channel %q is listed twice", *cid)
		default:
			seen[*cid] = true
			ids = append(ids, *cid)
		}
	}
	return ids, len(*o.errs) == before
}

func hasPointer(errs licensor.Errors, ptr string) bool {
	for _, e := range errs {
		if strings.HasPrefix(e.Pointer, ptr) {
			return true
		}
	}
	return false
}

func joinStatuses() string {
	parts := make([]string, len(licensor.Statuses()))
	for i, s := range licensor.Statuses() {
		parts[i] = string(s)
	}
	return strings.Join(parts, " ")
}

// escapePointer escapes a member name for use in a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return pointerEscaper.Replace(s)
}

// pointerEscaper is built once: building a Replacer costs kilobytes, and
// a document may have a member name per error.
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")
