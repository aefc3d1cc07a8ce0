package postgres_test

import (
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/storetest"
	"github.com/licensor/licensor/internal/testdb"
)

// maxSchemas caps the test schemas (and connection pools of 8) alive at
// once, whatever -parallel is, so that the server's max_connections holds.
const maxSchemas = 4

func TestStore(t *testing.T) {
	if !testdb.PostgresConfigured(t) {
		t.Skip("LICENSOR_POSTGRES_URL is not set")
	}
	slots := make(chan struct{}, maxSchemas)
	storetest.Run(t, func(t *testing.T) licensor.Store {
		slots <- struct{}{}
		t.Cleanup(func() { <-slots })
		return testdb.OpenPostgres(t)
	})
}
