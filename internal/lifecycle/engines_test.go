package lifecycle_test

import (
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/testdb"
)

// forEachEngine runs f against every engine under test (see testdb).
func forEachEngine(t *testing.T, f func(t *testing.T, open func(t *testing.T) licensor.Store)) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		f(t, func(t *testing.T) licensor.Store { return e.Open(t) })
	})
}
