package licensor

import "testing"

// TestSuccessorKeepsTheLead: a successor falls due as far before its stop
// as its predecessor did, so that renewing ahead holds period after period.
func TestSuccessorKeepsTheLead(t *testing.T) {
	const day = 86400
	p := &Product{ID: 1, LicensePeriod: "P30D"}
	start, stop := int64(1_700_000_000), int64(1_700_000_000+30*day)
	for _, c := range []struct {
		name   string
		expiry *int64
		want   int64 // the successor's expiry_date
	}{
		{"at its stop", new(stop), stop + 30*day},
		{"a day ahead", new(stop - day), stop + 29*day},
		{"after its stop", new(stop + day), stop + 30*day},
		{"a lead longer than the next period", new(start - 40*day), stop},
	} {
		l := &License{ID: 7, UserID: "u", ProductID: 1, Status: StatusActive, StartDate: start, StopDate: new(stop),
			Recurring: true, ExpiryDate: c.expiry}
		s, err := Successor(l, p, stop-day)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.StartDate != stop || *s.StopDate != stop+30*day || *s.ExpiryDate != c.want {
			t.Errorf("%s: successor [%d, %d) expiry %d, want [%d, %d) expiry %d", c.name,
				s.StartDate, *s.StopDate, *s.ExpiryDate, stop, stop+30*day, c.want)
		}
	}
}
