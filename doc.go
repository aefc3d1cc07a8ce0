// Package licensor is the vocabulary of the licensor service: licenses,
// products, API keys, the rules that hold between them, the error codes every
// layer speaks, and the Store interface that each storage engine implements.
//
// It imports only the standard library. Storage engines live in
// internal/sqlite and internal/postgres, the HTTP API in internal/api, the
// public Go client in client, and the wiring in cmd/licensor.
package licensor
