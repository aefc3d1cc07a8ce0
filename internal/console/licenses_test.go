package console_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/testdb"
)

// TestLicensesInBrowser: the license search with the API's filters and
// keyset paging, a license's page with its history, and a deletion with
// its confirmation, CSRF refusal, tombstone and change-feed actor; a read
// key may look but not delete.
func TestLicensesInBrowser(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		f := newFixture(t, e.Open(t))
		sports := f.licenses["grants"].ProductID
		for i := range 12 {
			d := licensor.LicenseDraft{UserID: fmt.Sprintf("pager-%02d", i), ProductID: sports, OrderID: ptr(fmt.Sprintf("ord-p%02d", i))}
			if _, err := f.store.CreateLicenses(t.Context(), []licensor.LicenseDraft{d}, licensor.Change{Time: f.now - 100, Actor: "cli"}); err != nil {
				t.Fatal(err)
			}
		}
		b := newBrowser(t)
		shots := e.Name == "sqlite"
		f.signin(t, b, f.writeKey)

		// The search form, then a user's licenses through it.
		b.open(t, f.url("/licenses"))
		b.axe(t, "licenses")
		b.submit(t, "form[role=search] button[type=submit]", map[string]string{"#f-user": "subscriber-42"})
		rows := b.text(t, "table[aria-labelledby=results] tbody")
		if n := strings.Count(rows, "subscriber-42"); n != 5 {
			t.Errorf("licenses of subscriber-42: %d rows\n%s", n, rows)
		}
		// Tick EXPIRED: only the expired license (effective status) is left.
		b.run(t, discard(eval2(`document.querySelector("input[name='filter[status]'][value=EXPIRED]").click(); ""`)))
		b.submit(t, "form[role=search] button[type=submit]", nil)
		rows = b.text(t, "table[aria-labelledby=results] tbody")
		if !strings.Contains(rows, "EXPIRED") || strings.Count(rows, "subscriber-42") != 1 {
			t.Errorf("status EXPIRED:\n%s", rows)
		}
		b.axe(t, "licenses with results")

		// A range on stop_date, through the form: before now there is only
		// the expired license (a null stop_date is "never").
		b.open(t, f.url("/licenses"))
		b.submit(t, "form[role=search] button[type=submit]", map[string]string{"#r-value-0": itoa(f.now)})
		rows = b.text(t, "table[aria-labelledby=results] tbody")
		if want := itoa(f.licenses["expired"].ID); strings.Count(rows, "\n")+1 != 1 || !strings.HasPrefix(rows, want) {
			t.Errorf("stop_date < now: want license %s alone:\n%s", want, rows)
		}
		b.open(t, f.url("/licenses?range_field=stop_date&range_op=lt&range_value=yesterday"))
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "is not a time") {
			t.Errorf("a bad time: alert %q", got)
		}

		// Keyset paging: 13 licenses of Sports, 10 a page, counted.
		b.open(t, f.url(fmt.Sprintf("/licenses?filter[product_id]=%d&size=10&count=1&sort=created_at&desc=1", sports)))
		if got := b.text(t, "#results"); !strings.Contains(got, "13 matching") {
			t.Errorf("count: %q", got)
		}
		ids := map[string]bool{}
		collect := func() int {
			n := eval[int](t, b, `document.querySelectorAll("table[aria-labelledby=results] tbody tr").length`)
			for _, id := range strings.Fields(eval[string](t, b, `[...document.querySelectorAll("table[aria-labelledby=results] tbody tr td:first-child")].map(td => td.innerText).join(" ")`)) {
				if ids[id] {
					t.Errorf("license %s on two pages", id)
				}
				ids[id] = true
			}
			return n
		}
		if n := collect(); n != 10 {
			t.Errorf("page 1: %d rows", n)
		}
		if shots {
			t.Log("screenshot:", b.screenshot(t, "licenses"))
		}
		next := eval[string](t, b, `document.querySelector("a[rel=next]").href`)
		b.submit(t, "a[rel=next]", nil)
		if n := collect(); n != 3 || len(ids) != 13 {
			t.Errorf("page 2: %d rows, %d licenses in all", n, len(ids))
		}
		if got := eval[int](t, b, `document.querySelectorAll("a[rel=next]").length`); got != 0 {
			t.Errorf("the last page has a next link")
		}
		// The page link of one search is refused for another.
		b.open(t, strings.Replace(next, "size=10", "size=10&filter%5Buser_id%5D=pager-01", 1))
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "another search") {
			t.Errorf("a cursor for another search: alert %q", got)
		}
		b.narrow(t, f.url(fmt.Sprintf("/licenses?filter[product_id]=%d&size=10", sports)), map[bool]string{true: "licenses-narrow"}[shots])

		// A license's page and its history.
		l := f.licenses["grants"]
		b.open(t, f.url("/licenses/"+itoa(l.ID)))
		facts := b.text(t, "dl.facts")
		for _, want := range []string{"subscriber-42", "Sports", "ACTIVE", "ord-1001"} {
			if !strings.Contains(facts, want) {
				t.Errorf("license page lacks %q:\n%s", want, facts)
			}
		}
		if got := b.text(t, "main table"); !strings.Contains(got, "license.created") {
			t.Errorf("history: %q", got)
		}
		b.axe(t, "license")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "license"))
		}

		// Delete: a confirmation first; a forged CSRF token changes nothing.
		b.submit(t, "a.button.danger", nil)
		if got := b.text(t, "h1"); !strings.Contains(got, "Delete license") {
			t.Fatalf("confirmation: h1 %q", got)
		}
		b.axe(t, "license deletion")
		if shots {
			t.Log("screenshot:", b.screenshot(t, "license-delete"))
		}
		b.run(t, discard(eval2(`document.querySelector("form[action$='/delete'] input[name=csrf]").value = "forged"; ""`)))
		b.submit(t, "form[action$='/delete'] button", nil)
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "CSRF") {
			t.Errorf("forged CSRF on delete: %q", got)
		}
		if _, err := f.store.FindLicenseByID(t.Context(), l.ID); err != nil {
			t.Fatalf("the forged delete deleted: %v", err)
		}
		b.open(t, f.url("/licenses/"+itoa(l.ID)+"/delete"))
		b.submit(t, "form[action$='/delete'] button", nil)
		if got := b.path(t); got != "/console/licenses/"+itoa(l.ID)+"?done=deleted" {
			t.Errorf("after delete: at %s", got)
		}
		if _, err := f.store.FindLicenseByID(t.Context(), l.ID); licensor.ErrorCode(err) != licensor.CodeLicenseNotFound {
			t.Errorf("after delete, FindLicenseByID: %v", err)
		}
		if got := b.text(t, "main"); !strings.Contains(got, "Deleted.") || !strings.Contains(got, "Tombstone") || !strings.Contains(got, "by ops-alice") {
			t.Errorf("deleted license's page:\n%s", got)
		}
		if ev := f.lastEvent(t); ev.Type != licensor.EventLicenseDeleted || ev.LicenseID != l.ID || ev.Actor != "ops-alice" || !strings.HasPrefix(ev.RequestID, "console-") {
			t.Errorf("change feed: %+v", ev)
		}
		b.axe(t, "deleted license")

		// A read key looks but does not delete.
		b.submit(t, "form[action='/console/signout'] button", nil)
		f.signin(t, b, f.readKey)
		other := f.licenses["suspended"].ID
		b.open(t, f.url("/licenses/"+itoa(other)))
		if n := eval[int](t, b, `document.querySelectorAll("a.button.danger").length`); n != 0 {
			t.Errorf("a read key is offered Delete")
		}
		b.open(t, f.url("/licenses/"+itoa(other)+"/delete"))
		if got := b.text(t, "[role=alert]"); !strings.Contains(got, "write key") {
			t.Errorf("read key on delete: %q", got)
		}
		f.noSecrets(t, b)
	})
}
