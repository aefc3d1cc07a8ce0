package jsonapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/licensor/licensor"
)

const MediaType = "application/vnd.api+json"

// Write writes v as a JSON:API document with the given status.
func Write(w http.ResponseWriter, status int, v any) error {
	return WriteJSON(w, status, MediaType, v)
}

// WriteJSON writes v as JSON of the given media type.
func WriteJSON(w http.ResponseWriter, status int, contentType string, v any) error {
	e := encoders.Get().(*encoder)
	defer e.release()
	var b []byte
	if a, ok := v.(Appender); ok {
		var err error
		if b, err = a.AppendJSON(e.buf.AvailableBuffer()); err != nil {
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
	if contentType == MediaType {
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
var contentTypeJSONAPI = []string{MediaType}

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

// Appender is a value that appends its own JSON.
type Appender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// AppendIntPtr appends *n, or null.
func AppendIntPtr(b []byte, n *int64) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *n, 10)
}

// AppendStringPtr appends *s as AppendString does, or null.
func AppendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return AppendString(b, *s)
}

// AppendString appends s as encoding/json writes it: as it is when it needs
// no escaping (printable ASCII but " \ < > &), else by json.Marshal itself
// (control characters, HTML characters, U+2028, invalid UTF-8: rare in
// ids, codes and paths).
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Response renders a JSON:API document with headers (name, value pairs).
func Response(status int, doc any, headers ...string) (licensor.StoredResponse, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return licensor.StoredResponse{}, err
	}
	resp := licensor.StoredResponse{Status: status, Body: b}
	if len(headers) > 0 {
		resp.Headers = map[string]string{}
		for i := 0; i+1 < len(headers); i += 2 {
			resp.Headers[headers[i]] = headers[i+1]
		}
	}
	return resp, nil
}

// WriteResponse sends a rendered response.
func WriteResponse(w http.ResponseWriter, resp licensor.StoredResponse) error {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	if resp.Body == nil {
		w.WriteHeader(resp.Status)
		return nil
	}
	w.Header().Set("Content-Type", MediaType)
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
	return nil
}
