package licensor

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidUserID: the check is the regular expression of the contract,
// ^[A-Za-z0-9._:-]{1,64}$, for user ids and channel ids alike.
func TestValidUserID(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	r := rand.New(rand.NewPCG(3, 4))
	cases := []string{"", "41", "a.b_c:d-e", "a b", "é", strings.Repeat("x", 64), strings.Repeat("x", 65), "a/b", "a\x00"}
	const alphabet = "azAZ09._:-/ é\x00~"
	for range 2000 {
		b := make([]byte, r.IntN(70))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		want := pattern.MatchString(c)
		if got := ValidUserID(c); got != want {
			t.Errorf("ValidUserID(%q) = %v, want %v", c, got, want)
		}
		if got := ValidChannelID(c); got != want {
			t.Errorf("ValidChannelID(%q) = %v, want %v", c, got, want)
		}
	}
}
