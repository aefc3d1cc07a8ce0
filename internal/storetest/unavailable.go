package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/licensor/licensor"
)

// UnavailableCase is an error an engine's driver gives and whether the
// engine must report it as UNAVAILABLE (the database cannot be used right
// now: 503, and /readyz says so) rather than as a plain failure.
type UnavailableCase struct {
	Name string
	Err  error
	Want bool
}

// CheckUnavailable checks an engine's mapping of driver errors: the cause
// is kept (errors.Is and the message), the code is UNAVAILABLE exactly when
// a case wants it, and nil stays nil.
func CheckUnavailable(t *testing.T, unavailable func(error) error, cases []UnavailableCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			if tc.Err == nil {
				t.Fatal("the driver gave no error")
			}
			got := unavailable(tc.Err)
			if !errors.Is(got, tc.Err) {
				t.Errorf("the cause is lost: %v", got)
			}
			if is := licensor.ErrorCode(got) == licensor.CodeUnavailable; is != tc.Want {
				t.Errorf("unavailable(%v) has code %s", tc.Err, licensor.ErrorCode(got))
			}
			if tc.Want && !strings.Contains(got.Error(), tc.Err.Error()) {
				t.Errorf("the message lost the cause: %v", got)
			}
		})
	}
	if unavailable(nil) != nil {
		t.Error("unavailable(nil) is not nil")
	}
}
