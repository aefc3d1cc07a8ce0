package sqlfilter

import (
	"reflect"
	"testing"
)

func TestRebind(t *testing.T) {
	for _, c := range []struct {
		d        Dialect
		in, want string
	}{
		{PostgreSQL, "UPDATE t SET a = ?, b = ? WHERE id = ?", "UPDATE t SET a = $1, b = $2 WHERE id = $3"},
		{PostgreSQL, "SELECT 1 WHERE id = $1", "SELECT 1 WHERE id = $1"},
		{SQLite, "UPDATE t SET a = ? WHERE id = ?", "UPDATE t SET a = ? WHERE id = ?"},
	} {
		if got := c.d.Rebind(c.in); got != c.want {
			t.Errorf("Rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestInIDs(t *testing.T) {
	ph := SQLite.Args()
	ph.Arg("x")
	if got := ph.InIDs("id", []int64{3, 1, 20}); got != "id IN (SELECT value FROM json_each(?))" {
		t.Errorf("SQLite: %q", got)
	}
	if !reflect.DeepEqual(ph.Values, []any{"x", "[3,1,20]"}) {
		t.Errorf("SQLite values: %#v", ph.Values)
	}
	ph = PostgreSQL.Args()
	ph.Arg("x")
	if got := ph.InIDs("id", []int64{3, 1}); got != "id = ANY($2)" {
		t.Errorf("PostgreSQL: %q", got)
	}
	if !reflect.DeepEqual(ph.Values, []any{"x", []int64{3, 1}}) {
		t.Errorf("PostgreSQL values: %#v", ph.Values)
	}
	if got := SQLite.Args().InIDs("id", nil); got != "id IN (SELECT value FROM json_each(?))" {
		t.Errorf("empty: %q", got)
	}
}
