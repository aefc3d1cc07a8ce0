// Package legacy reads license data exported from the legacy license API
// (GET api/user/<email>/license) and converts it, exactly, into v4 license
// drafts. It does no I/O with the server: cmd/licensor's "import legacy"
// command feeds it and sends what it produces through the public client.
//
// The input formats, the mapping files and every conversion rule are
// described for operators in docs/migration.md; in brief:
//
//   - JSON: a stream of legacy documents
//     {"license":{"resultSet":{...},"licenseList":{"licenses":[...]}}}, one
//     per user. A document names its user by a wrapper member next to
//     "license": "email" (the e-mail itself) or "url" (the legacy request URL
//     .../api/user/<email>/license); failing both, by the file's name
//     (<email>.json). Documents may be concatenated, one per line or
//     pretty-printed, or listed in one top-level array.
//   - CSV: a header row naming the columns email, id, status, startDate,
//     stopDate, purchaseDate, price, currency, paymentMethod (optional),
//     recurring and productUrl or productId, in any order.
//   - Mapping files: CSV with the header email,user_id (users) and
//     legacy_product_id,product_id (products).
//
// Input is decoded first (NewDecoder, ReadEncoded): UTF-8 with or without a
// byte order mark, UTF-16 with one, or as named (Latin-1 read as
// Windows-1252); bytes not valid in the encoding fail the input with their
// line, and nothing is replaced by U+FFFD. A broken record costs that
// record: see ReadJSON and ReadCSV for the rules by which reading resumes.
//
// Conversion (Converter.Convert): local "YYYY-MM-DD hh:mm:ss" times in one
// IANA time zone become unix seconds (a time in a DST gap is moved forward
// by the length of the gap; a time in an overlap takes the earlier instant);
// prices are converted from their decimal text to minor units with integer
// arithmetic only; statuses are matched case-insensitively; the order_id is
// "legacy:<service>:<legacy id>", so that importing twice creates nothing
// twice.
package legacy
