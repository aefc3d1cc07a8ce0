package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/licensor/licensor"
)

const mediaType = "application/vnd.api+json"

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

// encode writes v as a JSON:API document with the given status.
func encode(w http.ResponseWriter, status int, v any) error {
	return writeJSON(w, status, mediaType, v)
}

// writeJSON writes v as JSON of the given media type.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) error {
	e := encoders.Get().(*encoder)
	defer e.release()
	var b []byte
	if a, ok := v.(jsonAppender); ok {
		var err error
		if b, err = a.appendJSON(e.buf.AvailableBuffer()); err != nil {
			return err
		}
		e.buf.Write(b) // keeps a grown buffer for the next response
		b = e.buf.Bytes()
	} else {
		if err := e.enc.Encode(v); err != nil {
			return err
		}
		b = e.buf.Bytes()
		b = b[:len(b)-1] // Encode's newline; the rest is json.Marshal's bytes
	}
	h := w.Header()
	if contentType == mediaType {
		h["Content-Type"] = contentTypeJSONAPI
	} else {
		h.Set("Content-Type", contentType)
	}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b) // a client that went away is not the handler's failure
	return nil
}

// contentTypeJSONAPI is the Content-Type of JSON:API responses, shared by
// all of them (a header value is never changed in place).
var contentTypeJSONAPI = []string{mediaType}

// encoder is a reusable buffer with a json.Encoder on it: encoding a
// response allocates nothing of its own once the pool is warm.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

// maxPooledBuffer is the largest buffer put back in the pool: the rare
// large response (a batch of 1000) is not kept in memory.
const maxPooledBuffer = 64 << 10

func (e *encoder) release() {
	if e.buf.Cap() > maxPooledBuffer {
		return
	}
	e.buf.Reset()
	encoders.Put(e)
}
