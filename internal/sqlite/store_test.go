package sqlite_test

import (
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/storetest"
	"github.com/licensor/licensor/internal/testdb"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) licensor.Store { return testdb.OpenSQLite(t) })
}
