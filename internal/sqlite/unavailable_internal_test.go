package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/storetest"
)

// TestUnavailable maps real driver errors: a read-only database and a
// write lock held past the busy timeout are UNAVAILABLE; a constraint
// violation is not.
func TestUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.db")
	rw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if _, err := rw.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Exec(`INSERT INTO t VALUES ('a')`); err != nil {
		t.Fatal(err)
	}
	_, constraint := rw.Exec(`INSERT INTO t VALUES ('a')`)

	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, readOnly := ro.Exec(`INSERT INTO t VALUES ('b')`)

	lock, err := rw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(`INSERT INTO t VALUES ('c')`); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, busy := other.Exec(`INSERT INTO t VALUES ('d')`)
	lock.Rollback()

	storetest.CheckUnavailable(t, unavailable, []storetest.UnavailableCase{
		{Name: "read-only", Err: readOnly, Want: true},
		{Name: "busy", Err: busy, Want: true},
		{Name: "constraint", Err: constraint, Want: false},
		{Name: "domain error", Err: licensor.Errorf(licensor.CodeConflict, "no"), Want: false},
		{Name: "other", Err: errors.New("something else"), Want: false},
	})
}
