// Package entitlement is the read model of the entitlement check: what
// each user may use, served from memory and kept true by invalidation.
//
// Cache holds, per user, the user's live ACTIVE licenses and, per product,
// the product with its channels sorted; it memoizes each user's answer
// (licensor.EntitlementsAt) with the ETag of its representation, which an
// Encoder (the API's JSON) writes. Notify wraps the store so that this
// instance's writes invalidate the cache at once; FeedWatcher follows the
// change feed for the writes of other instances. Nothing here speaks HTTP.
package entitlement
