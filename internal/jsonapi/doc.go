// Package jsonapi is the JSON:API protocol as licensor speaks it, apart from
// any one route: reading request documents (the media type, a capped body,
// limits on the document's shape checked before decoding, the rule for
// strings, an Object walker that reports unknown and malformed members with
// JSON pointers), reading query parameters (each read once, filters, sort,
// keyset pages with opaque cursors bound to their query), writing documents
// (with pooled buffers, and Appender for hand-written hot documents), and
// error documents: ErrorResponse is the one place where a licensor error
// code becomes an HTTP status and an error object. The resources themselves
// (License, Product, ...) and the routes are internal/api's.
package jsonapi
