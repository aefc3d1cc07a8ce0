package licensor

import "testing"

func TestValidText(t *testing.T) {
	for s, want := range map[string]bool{
		"":                   true,
		"Sport megapack":     true,
		"Łódź ✓ 🎬":           true,
		"line\nbreak\t":      true,
		"nul\x00inside":      false,
		"\x00":               false,
		"latin1 caf\xe9":     false,
		"\xff\xfeU\x00":      false,
		"truncated \xe2\x82": false,
	} {
		if got := ValidText(s); got != want {
			t.Errorf("ValidText(%q) = %v, want %v", s, got, want)
		}
	}
}
