package storetest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/licensor/licensor"
)

// poisonRounds and poisonValid size testCreateLicensesPoisonIsolated: in
// each round poisonValid valid writes race the poison writes, so that
// they share groups.
const (
	poisonRounds = 10
	poisonValid  = 30
)

// testCreateLicensesPoisonIsolated races valid writes against writes that
// fail, of every class a store can meet (bytes the database refuses, in a
// single create, a batch and a product; a unique order id already taken;
// a product that does not exist), round after round: every valid write
// succeeds, and every failing one gets its own error. (The API refuses
// such bytes before they reach a store; the store must still not let one
// write fail another.)
func testCreateLicensesPoisonIsolated(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	taken := createLicenses(t, s, t0, licensor.LicenseDraft{UserID: "holder", ProductID: p.ID, OrderID: new("taken")})[0]
	type poison struct {
		name  string
		write func() error
		check func(err error) error // nil if err is the write's own outcome
	}
	// encoding: PostgreSQL refuses the bytes (SQLSTATE 22021), SQLite
	// stores them; either is the write's own outcome.
	encoding := func(err error) error {
		if err == nil || strings.Contains(err.Error(), "22021") {
			return nil
		}
		return fmt.Errorf("want nil or SQLSTATE 22021, got %v", err)
	}
	code := func(c licensor.Code) func(error) error {
		return func(err error) error {
			if licensor.ErrorCode(err) != c {
				return fmt.Errorf("want %s, got %v", c, err)
			}
			return nil
		}
	}
	create := func(ds ...licensor.LicenseDraft) error {
		_, err := s.CreateLicenses(t.Context(), ds, at(t0))
		return err
	}
	var valid, invalid int
	for round := range poisonRounds {
		r := strconv.Itoa(round)
		poisons := []poison{
			{"NUL order_id", func() error {
				return create(licensor.LicenseDraft{UserID: "p", ProductID: p.ID, OrderID: new("nul-\x00-" + r)})
			}, encoding},
			{"invalid UTF-8 payment_method", func() error {
				return create(licensor.LicenseDraft{UserID: "p", ProductID: p.ID, PaymentMethod: new("card-\xff-" + r)})
			}, encoding},
			{"NUL in a batch", func() error {
				return create(draft("p", p.ID), licensor.LicenseDraft{UserID: "p", ProductID: p.ID, OrderID: new("batch-\x00-" + r)})
			}, encoding},
			{"NUL product description", func() error {
				q := monthly()
				q.Description = "d\x00" + r
				return s.CreateProduct(t.Context(), &q, at(t0))
			}, encoding},
			{"order_id taken", func() error {
				return create(licensor.LicenseDraft{UserID: "p", ProductID: p.ID, OrderID: taken.OrderID})
			}, func(err error) error {
				var ie licensor.ItemErrors
				if !errors.As(err, &ie) || len(ie) != 1 || ie[0].Err.Code != licensor.CodeOrderIDConflict {
					return fmt.Errorf("want ORDER_ID_CONFLICT, got %v", err)
				}
				return nil
			}},
			{"unknown product", func() error { return create(draft("p", missingID)) }, code(licensor.CodeProductNotFound)},
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		validErrs := make([]error, poisonValid)
		poisonErrs := make([]error, len(poisons))
		for i := range poisonValid {
			wg.Go(func() {
				<-start
				d := draft("v"+strconv.Itoa(i), p.ID)
				switch i % 3 {
				case 0:
					d.OrderID = new("v-" + r + "-" + strconv.Itoa(i))
				case 1:
					d.PaymentMethod = new("card")
				}
				if i == poisonValid-1 {
					validErrs[i] = create(d, draft("v-batch", p.ID))
					return
				}
				validErrs[i] = create(d)
			})
		}
		for i, ps := range poisons {
			wg.Go(func() {
				<-start
				poisonErrs[i] = ps.write()
			})
		}
		close(start)
		wg.Wait()
		for i, err := range validErrs {
			if err != nil {
				valid++
				t.Errorf("round %d: valid write %d: %v", round, i, err)
			}
		}
		for i, err := range poisonErrs {
			if e := poisons[i].check(err); e != nil {
				invalid++
				t.Errorf("round %d: %s: %v", round, poisons[i].name, e)
			}
		}
	}
	t.Logf("%d rounds: %d of %d valid writes failed, %d of %d failing writes got another error than their own",
		poisonRounds, valid, poisonRounds*poisonValid, invalid, poisonRounds*6)
	if valid > 0 {
		t.Fatalf("%d of %d valid writes failed", valid, poisonRounds*poisonValid)
	}
	// Every valid write is there, once.
	want := poisonRounds*(poisonValid+1) + 1
	got := 0
	for _, l := range allLicenses(t, s, licensor.LicenseFilter{}, t0) {
		if strings.HasPrefix(l.UserID, "v") || l.UserID == "holder" {
			got++
		}
	}
	if got != want {
		t.Errorf("%d valid licenses stored, want %d", got, want)
	}
}
