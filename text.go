package licensor

import (
	"strings"
	"unicode/utf8"
)

// ValidText reports whether s may be stored as a string attribute: valid
// UTF-8 without a NUL byte. PostgreSQL refuses both in text columns (SQLSTATE
// 22021) while SQLite would store them, so one rule, applied where input is
// decoded, keeps the two engines alike and keeps such bytes out of the
// database altogether.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// TextLen is the length of s as every length limit of the API counts it, in
// attributes and in filters alike: in characters (Unicode code points), not
// bytes, so that "at most 128 characters" means one thing for an order_id
// sent in a license and the same order_id sent as filter[order_id].
func TextLen(s string) int { return utf8.RuneCountInString(s) }
