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
