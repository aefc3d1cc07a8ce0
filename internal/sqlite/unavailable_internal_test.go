package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/licensor/licensor"
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

	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"read-only", readOnly, true},
		{"busy", busy, true},
		{"constraint", constraint, false},
		{"domain error", licensor.Errorf(licensor.CodeConflict, "no"), false},
		{"other", errors.New("something else"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("the driver gave no error")
			}
			got := unavailable(tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("the cause is lost: %v", got)
			}
			if is := licensor.ErrorCode(got) == licensor.CodeUnavailable; is != tc.want {
				t.Errorf("unavailable(%v) has code %s", tc.err, licensor.ErrorCode(got))
			}
			if tc.want && !strings.Contains(got.Error(), tc.err.Error()) {
				t.Errorf("the message lost the cause: %v", got)
			}
		})
	}
	if unavailable(nil) != nil {
		t.Error("unavailable(nil) is not nil")
	}
}
