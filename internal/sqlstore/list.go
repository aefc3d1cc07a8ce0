package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
)

// readList reads the page of list, and when it counts (list.Count) its
// total in the same snapshot (Engine.ReadSnapshot).
func readList[T any](ctx context.Context, e Engine, list *sqlfilter.List, columns string, scan func(Scanner) (T, error)) ([]T, *int64, error) {
	var items []T
	var total *int64
	read := func(q Querier) (err error) {
		total = nil // a retried snapshot starts again
		if items, err = Collect(ctx, q, scan, fmt.Sprintf(list.Query, columns), list.Args...); err != nil || list.Count == "" {
			return err
		}
		total = new(int64)
		return q.QueryRow(ctx, list.Count, list.CountArgs...).Scan(total)
	}
	var err error
	if list.Count != "" {
		err = e.ReadSnapshot(ctx, read)
	} else {
		err = read(e.Reader())
	}
	return items, total, e.Unavailable(err)
}

// FindLicenses lists live licenses, one keyset page at a time, with their
// effective status at q.Now.
func (s Shared) FindLicenses(ctx context.Context, q licensor.LicenseQuery) (*licensor.LicensePage, error) {
	list, err := sqlfilter.Licenses(s.Engine.Reader().Dialect(), q)
	if err != nil {
		return nil, s.fail("find licenses", err)
	}
	page := &licensor.LicensePage{}
	if page.Licenses, page.Total, err = readList(ctx, s.Engine, list, LicenseColumns, ScanLicense); err != nil {
		return nil, s.fail("find licenses", err)
	}
	list.LicensePage(page, q.Now)
	return page, nil
}

// FindProducts lists live products, one keyset page at a time.
func (s Shared) FindProducts(ctx context.Context, q licensor.ProductQuery) (*licensor.ProductPage, error) {
	list, err := sqlfilter.Products(s.Engine.Reader().Dialect(), q)
	if err != nil {
		return nil, err
	}
	page := &licensor.ProductPage{}
	if page.Products, page.Total, err = readList(ctx, s.Engine, list, ProductColumns, Deref(ScanProduct)); err != nil {
		return nil, s.fail("find products", err)
	}
	list.ProductPage(page)
	return page, nil
}

// The entitlement cache's reads: each is a walk of the licenses_live_user_id
// index, which holds every column they read (migration 0011), so that they
// never visit a license's row (TestGrantQueriesReadTheIndexOnly).
const (
	findGrantsSQL = `SELECT id, product_id, start_date, stop_date FROM licenses
WHERE user_id = ? AND status = 'ACTIVE' AND deleted_at IS NULL ORDER BY id`
	listGrantsSQL = `SELECT user_id, status = 'ACTIVE', id, product_id, start_date, stop_date FROM licenses
WHERE user_id > ? AND deleted_at IS NULL ORDER BY user_id, id LIMIT ?`
)

// findUsersGrantsSQL is FindUsersGrants' query: its one argument is an
// array on PostgreSQL, a JSON array (through json_each) on SQLite.
func findUsersGrantsSQL(d sqlfilter.Dialect) string {
	in := "user_id = ANY(?)"
	if d == sqlfilter.SQLite {
		in = "user_id IN (SELECT value FROM json_each(?))"
	}
	return `SELECT user_id, true, id, product_id, start_date, stop_date FROM licenses
WHERE ` + in + ` AND status = 'ACTIVE' AND deleted_at IS NULL ORDER BY user_id, id`
}

// GrantQueries returns the entitlement cache's queries on d (FindGrants,
// ListGrants, FindUsersGrants, with ? placeholders) with their arguments
// for users a and b: for the engines' tests of their plans.
func GrantQueries(d sqlfilter.Dialect, a, b string) map[string][]any {
	users := any([]string{a, b})
	if d == sqlfilter.SQLite {
		j, _ := json.Marshal(users) // []string: cannot fail
		users = string(j)
	}
	return map[string][]any{
		findGrantsSQL:         {a},
		listGrantsSQL:         {"", 100},
		findUsersGrantsSQL(d): {users},
	}
}

// FindGrants returns the grants of user's live ACTIVE licenses, in id
// order: four columns of each (on the readers' prepared statement), not
// the whole license.
func (s Shared) FindGrants(ctx context.Context, user string) ([]licensor.Grant, error) {
	gs, err := Collect(ctx, s.Engine.Reader(), scanGrant, findGrantsSQL, user)
	if err != nil {
		return nil, s.fail("find grants", s.Engine.Unavailable(err))
	}
	return gs, nil
}

// ListGrants returns the live licenses of the users after after, with the
// grants of the ACTIVE ones, in (user_id, id) order, at most limit: a walk
// of the licenses_live_user_id index.
func (s Shared) ListGrants(ctx context.Context, after string, limit int) ([]licensor.UserGrant, error) {
	gs, err := Collect(ctx, s.Engine.Reader(), scanUserGrant, listGrantsSQL, after, limit)
	if err != nil {
		return nil, s.fail("list grants", s.Engine.Unavailable(err))
	}
	return gs, nil
}

// FindUsersGrants returns the grants of the live ACTIVE licenses of users,
// in (user_id, id) order: one statement whatever the number of users (an
// array on PostgreSQL, a JSON array through json_each on SQLite), each
// user an index lookup.
func (s Shared) FindUsersGrants(ctx context.Context, users []string) ([]licensor.UserGrant, error) {
	if len(users) > licensor.MaxGrantUsers {
		return nil, fmt.Errorf("find grants of %d users: more than %d", len(users), licensor.MaxGrantUsers)
	}
	if len(users) == 0 {
		return nil, nil
	}
	d := s.Engine.Reader().Dialect()
	arg := any(users)
	if d == sqlfilter.SQLite {
		b, err := json.Marshal(users)
		if err != nil {
			return nil, fmt.Errorf("find grants: %w", err)
		}
		arg = string(b)
	}
	gs, err := Collect(ctx, s.Engine.Reader(), scanUserGrant, findUsersGrantsSQL(d), arg)
	if err != nil {
		return nil, s.fail("find grants", s.Engine.Unavailable(err))
	}
	return gs, nil
}

func scanUserGrant(r Scanner) (licensor.UserGrant, error) {
	var g licensor.UserGrant
	var id, product, start int64
	var stop *int64
	if err := r.Scan(&g.User, &g.Active, &id, &product, &start, &stop); err != nil {
		return g, err
	}
	if g.Active {
		g.Grant = licensor.NewGrant(id, product, start, stop)
	}
	return g, nil
}

func scanGrant(r Scanner) (licensor.Grant, error) {
	var id, product, start int64
	var stop *int64
	err := r.Scan(&id, &product, &start, &stop)
	return licensor.NewGrant(id, product, start, stop), err
}
