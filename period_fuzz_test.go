package licensor_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

// formatPeriod writes p in ISO-8601, omitting zero components.
func formatPeriod(p licensor.Period) string {
	var b strings.Builder
	b.WriteByte('P')
	part := func(n int, unit byte) {
		if n != 0 {
			b.WriteString(strconv.Itoa(n))
			b.WriteByte(unit)
		}
	}
	part(p.Years, 'Y')
	part(p.Months, 'M')
	part(p.Weeks, 'W')
	part(p.Days, 'D')
	if p.Hours != 0 || p.Minutes != 0 || p.Seconds != 0 {
		b.WriteByte('T')
		part(p.Hours, 'H')
		part(p.Minutes, 'M')
		part(p.Seconds, 'S')
	}
	return b.String()
}

// maxUnix is 9999-12-31T23:59:59Z, the last second licensor reasons about.
const maxUnix = 253402300799

// FuzzPeriod checks ParsePeriod and Period.AddTo. Seeds are in
// testdata/fuzz/FuzzPeriod; run it briefly with
//
//	go test -run='^$' -fuzz='^FuzzPeriod$' -fuzztime=10s .
//
// Properties: a parsed period has at least one non-zero component, none
// negative or above MaxPeriodComponent, and reads back the same from its
// canonical form; AddTo never panics, always moves forward, keeps the time
// of day for calendar periods, clamps to the end of a shorter month, adds
// exactly its length for periods without years and months (UTC has no
// daylight saving), and a larger period never ends earlier.
func FuzzPeriod(f *testing.F) {
	f.Add("P1M", int64(1769817600))
	f.Add("P1Y2M3W4DT5H6M7S", int64(1700000000))
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		p, err := licensor.ParsePeriod(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			if p != (licensor.Period{}) {
				t.Fatalf("%q: an error with a period %+v", s, p)
			}
			return
		}
		if p.IsZero() {
			t.Fatalf("%q parsed to a zero period", s)
		}
		for _, n := range []int{p.Years, p.Months, p.Weeks, p.Days, p.Hours, p.Minutes, p.Seconds} {
			if n < 0 || n > licensor.MaxPeriodComponent {
				t.Fatalf("%q: component %d out of range", s, n)
			}
		}
		canon := formatPeriod(p)
		if again, err := licensor.ParsePeriod(canon); err != nil || again != p {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, p, canon, again, err)
		}

		_ = p.AddTo(time.Unix(unix, 0)) // any instant: no panic
		if unix < 0 || unix > maxUnix {
			return
		}
		start := time.Unix(unix, 0).UTC()
		end := p.AddTo(start)
		if !end.After(start) {
			t.Fatalf("%s from %v ends at %v", canon, start, end)
		}

		calendar := licensor.Period{Years: p.Years, Months: p.Months}
		if !calendar.IsZero() {
			// Years and months move the date and keep the clock, clamping
			// the day to the end of a shorter month.
			moved := calendar.AddTo(start)
			if moved.Hour() != start.Hour() || moved.Minute() != start.Minute() || moved.Second() != start.Second() {
				t.Fatalf("%s from %v lands at %v: the time of day changed", formatPeriod(calendar), start, moved)
			}
			months := int(start.Month()) - 1 + p.Months + 12*p.Years
			wantYear, wantMonth := start.Year()+months/12, time.Month(months%12+1)
			lastDay := time.Date(wantYear, wantMonth+1, 0, 0, 0, 0, 0, time.UTC).Day()
			if moved.Year() != wantYear || moved.Month() != wantMonth || moved.Day() != min(start.Day(), lastDay) {
				t.Fatalf("%s from %v lands at %v", formatPeriod(calendar), start, moved)
			}
		} else {
			// A fixed length: the same for every start. (In seconds:
			// 100000 weeks overflow a time.Duration.)
			want := int64(7*p.Weeks+p.Days)*86400 + int64(p.Hours)*3600 + int64(p.Minutes)*60 + int64(p.Seconds)
			if got := end.Unix() - start.Unix(); got != want {
				t.Fatalf("%s from %v lasts %d s, want %d s", canon, start, got, want)
			}
		}

		// A larger period ends no earlier: add one to each component in turn.
		for i := range 7 {
			q := p
			c := []*int{&q.Years, &q.Months, &q.Weeks, &q.Days, &q.Hours, &q.Minutes, &q.Seconds}[i]
			if *c == licensor.MaxPeriodComponent {
				continue
			}
			*c++
			if later := q.AddTo(start); later.Before(end) {
				t.Fatalf("%s from %v ends at %v, before %s (%v)", formatPeriod(q), start, later, canon, end)
			}
		}
	})
}
