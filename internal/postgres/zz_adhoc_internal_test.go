package postgres

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/licensor/licensor"
)

func TestAdhocShuffled(t *testing.T) {
	u := schemaURL(t)
	a, b := openTest(t, u), openTest(t, u)
	if err := a.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := licensor.NewProduct("p")
	a.CreateProduct(t.Context(), &p, licensor.Change{Time: 1})
	var mu sync.Mutex
	holders := map[string]map[int64]bool{}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			db := a
			if i%2 == 1 {
				db = b
			}
			perm := rand.Perm(10)
			var drafts []licensor.LicenseDraft
			for _, k := range perm {
				o := fmt.Sprint("o", k)
				drafts = append(drafts, licensor.LicenseDraft{UserID: "u", ProductID: p.ID, OrderID: &o})
			}
			ls, err := db.CreateLicenses(t.Context(), drafts, licensor.Change{Time: 2})
			mu.Lock()
			defer mu.Unlock()
			var items licensor.ItemErrors
			add := func(o string, id int64) {
				if holders[o] == nil {
					holders[o] = map[int64]bool{}
				}
				holders[o][id] = true
			}
			switch {
			case err == nil:
				for _, l := range ls {
					add(*l.OrderID, l.ID)
				}
			case errors.As(err, &items):
				for _, it := range items {
					var id int64
					fmt.Sscan(it.Err.Meta["existing_id"].(string), &id)
					add(*drafts[it.Index].OrderID, id)
				}
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for o, ids := range holders {
		if len(ids) != 1 {
			t.Errorf("%s: %v", o, ids)
		}
	}
}
