package jsonapi

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

// ReadResource reads a request that takes no query parameters and whose
// body is one JSON:API resource: the resource's members, and the base of
// the pointers of errors found in it.
func ReadResource(r *http.Request) (map[string]any, Base, error) {
	if err := NewQuery(r.URL).Done(); err != nil {
		return nil, nil, err
	}
	doc, err := ReadDocument(r, Limits{})
	if err != nil {
		return nil, nil, err
	}
	items, bases, err := Resources(doc, false)
	if err != nil {
		return nil, nil, err
	}
	return items[0], SingleBase(bases[0]), nil
}

// ReadDocument checks the media type, reads the capped body and parses it
// as a JSON object within limits. Numbers stay json.Number so that
// integers are exact.
func ReadDocument(r *http.Request, limits Limits) (map[string]any, error) {
	if err := CheckMediaType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	body, err := ReadBody(r)
	if err != nil {
		return nil, BodyReadError(err)
	}
	return ParseDocument(body, limits)
}

// BodyReadError explains a failure to read the request body.
func BodyReadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return licensor.Errorf(licensor.CodeBodyTooLarge, "the request body is larger than %d bytes", tooBig.Limit)
	}
	return licensor.Errorf(licensor.CodeMalformedJSON, "the request body could not be read")
}

// ParseDocument parses body as one JSON object, once CheckShape has found
// it within limits, every string of which keeps the rule of
// licensor.ValidText (see CheckText).
func ParseDocument(body []byte, limits Limits) (map[string]any, error) {
	if err := CheckShape(body, limits); err != nil {
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
	if e := CheckText(body); e != nil {
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

// CheckMediaType accepts a request body as application/json (with any
// parameters) or as the JSON:API media type with no parameter but profile
// (which a server may ignore), an empty ext, and charset=utf-8. JSON:API
// 1.1 answers any other parameter, and an extension the server does not
// support, with 415; this server supports no extension. charset=utf-8 is
// the exception because HTTP libraries add it on their own (a BSS client
// written against Amino's docs, which say nothing of it, must keep
// working) and it says nothing new: JSON is UTF-8 (RFC 8259).
func CheckMediaType(ct string) error {
	if ct == "" {
		return licensor.Errorf(licensor.CodeUnsupportedMediaType, "Content-Type must be application/vnd.api+json or application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && mt != MediaType) {
		return licensor.Errorf(licensor.CodeUnsupportedMediaType, "Content-Type %q is not supported; use application/vnd.api+json or application/json", ct)
	}
	if mt != MediaType {
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

// Object walks a JSON object, remembering which members were read so that
// the rest can be reported as unknown, and collecting errors with pointers.
type Object struct {
	m    map[string]any
	ptr  string // JSON pointer of this object, relative to the resource
	seen map[string]bool
	errs *licensor.Errors
}

// NewObject walks m, the value at the JSON pointer ptr (relative to the
// resource), adding the problems it finds to errs.
func NewObject(m map[string]any, ptr string, errs *licensor.Errors) *Object {
	return &Object{m: m, ptr: ptr, seen: map[string]bool{}, errs: errs}
}

// Fail reports a problem with the member (a pointer relative to o).
func (o *Object) Fail(code licensor.Code, member, format string, args ...any) {
	if len(*o.errs) >= MaxErrorObjects {
		*o.errs = append(*o.errs, errOmitted) // not formatted: it will not be shown
		return
	}
	*o.errs = append(*o.errs, licensor.AttrError(code, o.ptr+"/"+member, format, args...))
}

// Pointer is o's JSON pointer, relative to the resource.
func (o *Object) Pointer() string { return o.ptr }

// Member returns a member as sent, null included, without reading it.
func (o *Object) Member(name string) (v any, present bool) {
	v, present = o.m[name]
	return v, present
}

// Get returns a member; null counts as absent.
func (o *Object) Get(name string) (any, bool) {
	o.seen[name] = true
	v, ok := o.m[name]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

// Forbid reports a present member that clients may not send.
func (o *Object) Forbid(name, why string) {
	if _, ok := o.m[name]; ok {
		o.seen[name] = true
		o.Fail(licensor.CodeInvalidAttribute, name, "%s", why)
	}
}

// Ignore marks members that are accepted and ignored.
func (o *Object) Ignore(names ...string) {
	for _, n := range names {
		o.seen[n] = true
	}
}

// Done reports every member that was not read.
func (o *Object) Done() {
	var unknown []string
	for k := range o.m {
		if !o.seen[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		o.Fail(licensor.CodeUnknownAttribute, escapePointer(k), "unknown member %q", k)
	}
}

// Object reads a member that is an object.
func (o *Object) Object(name string) (*Object, bool) {
	v, ok := o.Get(name)
	if !ok {
		return nil, false
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		o.Fail(licensor.CodeInvalidAttribute, name, "%s must be an object", name)
		return nil, false
	}
	return NewObject(m, o.ptr+"/"+name, o.errs), true
}

// Str reads a string member of at most maxLen characters (0: any length).
func (o *Object) Str(name string, maxLen int) (*string, bool) {
	v, ok := o.Get(name)
	if !ok {
		return nil, false
	}
	s, isStr := v.(string)
	if !isStr {
		o.Fail(licensor.CodeInvalidAttribute, name, "%s must be a string", name)
		return nil, false
	}
	if maxLen > 0 && licensor.TextLen(s) > maxLen {
		o.Fail(licensor.CodeInvalidAttribute, name, "%s must be at most %d characters", name, maxLen)
		return nil, false
	}
	return &s, true
}

// Bool reads a member that is true or false.
func (o *Object) Bool(name string) (*bool, bool) {
	v, ok := o.Get(name)
	if !ok {
		return nil, false
	}
	b, isBool := v.(bool)
	if !isBool {
		o.Fail(licensor.CodeInvalidAttribute, name, "%s must be true or false", name)
		return nil, false
	}
	return &b, true
}

// Int reads an int64 member; min bounds it from below.
func (o *Object) Int(name string, min int64) (*int64, bool) {
	v, ok := o.Get(name)
	if !ok {
		return nil, false
	}
	num, isNum := v.(json.Number)
	if !isNum {
		o.Fail(licensor.CodeInvalidAttribute, name, "%s must be an integer", name)
		return nil, false
	}
	n, err := strconv.ParseInt(num.String(), 10, 64)
	if err != nil {
		o.Fail(licensor.CodeInvalidAttribute, name, "%s must be an integer that fits 64 bits, not %s", name, num)
		return nil, false
	}
	if n < min {
		o.Fail(licensor.CodeInvalidAttribute, name, "%s must be at least %d", name, min)
		return nil, false
	}
	return &n, true
}

// Type checks the type member of a resource identifier in a relationship
// (the primary data's own type: primaryType).
func (o *Object) Type(want string) {
	v, ok := o.Get("type")
	if !ok {
		o.Fail(licensor.CodeMissingAttribute, "type", "type %q is required", want)
		return
	}
	if s, _ := v.(string); s != want {
		o.Fail(licensor.CodeInvalidAttribute, "type", "type must be %q", want)
	}
}

// PrimaryType checks the type member of the request's primary data: a type
// the endpoint does not take is JSON:API's 409 Conflict, not a bad value.
func (o *Object) PrimaryType(want string) {
	v, ok := o.Get("type")
	if !ok {
		o.Fail(licensor.CodeMissingAttribute, "type", "type %q is required", want)
		return
	}
	s, isString := v.(string)
	switch {
	case !isString:
		// Not a resource type at all: a malformed document, not a conflict.
		o.Fail(licensor.CodeInvalidAttribute, "type", "type must be the string %q", want)
	case s != want:
		o.Fail(licensor.CodeResourceMismatch, "type", "type must be %q: this endpoint takes %s resources", want, want)
	}
}

// ToOne reads relationships.NAME = {"data": {"type": typ, "id": "..."}}.
func (o *Object) ToOne(name, typ string) (string, bool) {
	rel, ok := o.Object(name)
	if !ok {
		if _, present := o.m[name]; !present || o.m[name] == nil {
			o.Fail(licensor.CodeInvalidRelationship, name, "relationship %s is required", name)
		}
		return "", false
	}
	data, ok := rel.Object("data")
	rel.Done()
	if !ok {
		if _, present := rel.m["data"]; !present || rel.m["data"] == nil {
			rel.Fail(licensor.CodeInvalidRelationship, "data", "relationship %s needs data {\"type\": %q, \"id\": ...}", name, typ)
		}
		return "", false
	}
	before := len(*o.errs)
	data.Type(typ)
	idv, _ := data.Str("id", 0)
	data.Done()
	if idv == nil {
		if _, present := data.m["id"]; !present {
			data.Fail(licensor.CodeInvalidRelationship, "id", "relationship %s needs an id", name)
		}
		return "", false
	}
	return *idv, len(*o.errs) == before
}

// Resources returns the resource objects of a document's data member:
// one for a single-resource request (object or one-element array), any
// number for a batch. Each comes with its pointer base.
func Resources(doc map[string]any, batch bool) ([]map[string]any, []string, error) {
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
