package jsonapi

import (
	"testing"

	"github.com/licensor/licensor"
)

func TestPathIDCanonical(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64 // 0: refused
	}{
		{"1", 1}, {"42", 42}, {"9223372036854775807", 9223372036854775807},
		{"0", 0}, {"007", 0}, {"+7", 0}, {"-7", 0}, {"-0", 0}, {"", 0}, {"7a", 0}, {" 7", 0},
		{"9223372036854775808", 0}, {"1_000", 0}, {"0x10", 0},
	} {
		got, err := PathID(c.in, "license_id")
		if c.want == 0 {
			if err == nil || licensor.ErrorCode(err) != licensor.CodeInvalidID {
				t.Errorf("PathID(%q) = %d, %v; want INVALID_ID", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("PathID(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}
