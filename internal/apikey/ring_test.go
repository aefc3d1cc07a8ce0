package apikey

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/licensor/licensor"
)

// TestKeyPrefixAgrees: keyPrefix accepts what licensor.APIKeyPrefix does,
// for keys without surrounding space, and returns the same prefix.
func TestKeyPrefixAgrees(t *testing.T) {
	secret, prefix, _ := licensor.NewAPIKeySecret()
	inputs := []string{
		secret, "", "lk_", prefix, prefix + "_", " " + secret, secret + " ", strings.ToUpper(secret),
		"lk_abcdefgh_abcdefghijklmnopqrstuvwxyz234567", "lk_abcdefgh_abcdefghijklmnopqrstuvwxyz234568",
		"lk_abcdefg1_abcdefghijklmnopqrstuvwxyz234567", "lk-abcdefgh_abcdefghijklmnopqrstuvwxyz234567",
		"lk_abcdefghXabcdefghijklmnopqrstuvwxyz234567", "lk_abcdefgh_abcdefghijklmnopqrstuvwxyz23456",
		"lk_abcdefgh_abcdefghijklmnopqrstuvwxyz2345677", "lk_abcdefgh_abcdefghijklmnopqrstuvwxyz23456\xff",
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "abcdefghijklmnopqrstuvwxyz234567_ABZ0189-\x00\xff"
	for range 20000 {
		b := []byte(secret)
		for range 1 + r.IntN(2) {
			b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		want, wantOK := licensor.APIKeyPrefix(in)
		if strings.TrimSpace(in) != in {
			wantOK = false // Verify's callers trim; keyPrefix takes no space
		}
		got, ok := keyPrefix(in)
		if ok != wantOK || (ok && got != want) {
			t.Errorf("keyPrefix(%q) = %q, %v; licensor.APIKeyPrefix says %q, %v", in, got, ok, want, wantOK)
		}
	}
}
