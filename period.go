package licensor

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Period is an ISO-8601 duration with calendar parts (years, months, weeks,
// days) and clock parts (hours, minutes, seconds). Only non-negative integer
// components are accepted: P1Y, P1M, P30D, P2W, PT48H, P1DT12H.
type Period struct {
	Years, Months, Weeks, Days int
	Hours, Minutes, Seconds    int
}

// MaxPeriodComponent caps each component so that arithmetic cannot overflow.
const MaxPeriodComponent = 100000

// ParsePeriod parses an ISO-8601 duration such as "P1M" or "PT48H".
func ParsePeriod(s string) (Period, error) {
	var p Period
	if len(s) < 2 || s[0] != 'P' {
		return p, fmt.Errorf("%q is not an ISO-8601 duration (like P1M, P30D, PT48H)", s)
	}
	inTime, any := false, false
	seen := map[string]bool{}
	for i := 1; i < len(s); {
		if s[i] == 'T' {
			if inTime || i == len(s)-1 {
				return Period{}, fmt.Errorf("%q: misplaced T", s)
			}
			inTime = true
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j == len(s) {
			return Period{}, fmt.Errorf("%q is not an ISO-8601 duration (like P1M, P30D, PT48H)", s)
		}
		n, err := strconv.Atoi(s[i:j])
		if err != nil || n > MaxPeriodComponent {
			return Period{}, fmt.Errorf("%q: component too large (at most %d)", s, MaxPeriodComponent)
		}
		unit := string(s[j])
		key := unit
		if inTime {
			key = "T" + unit
		}
		if seen[key] {
			return Period{}, fmt.Errorf("%q: %s given twice", s, unit)
		}
		seen[key] = true
		switch {
		case !inTime && unit == "Y":
			p.Years = n
		case !inTime && unit == "M":
			p.Months = n
		case !inTime && unit == "W":
			p.Weeks = n
		case !inTime && unit == "D":
			p.Days = n
		case inTime && unit == "H":
			p.Hours = n
		case inTime && unit == "M":
			p.Minutes = n
		case inTime && unit == "S":
			p.Seconds = n
		default:
			return Period{}, fmt.Errorf("%q: unexpected %q", s, unit)
		}
		any = true
		i = j + 1
	}
	if !any {
		return Period{}, errors.New("an ISO-8601 duration needs at least one component")
	}
	if p.IsZero() {
		return Period{}, fmt.Errorf("%q is a zero duration", s)
	}
	return p, nil
}

// IsZero reports whether every component is zero.
func (p Period) IsZero() bool { return p == Period{} }

// AddTo adds p to t in UTC with calendar arithmetic: years and months move
// the calendar date and clamp to the end of a shorter month (Jan 31 + P1M is
// Feb 28 or 29), then weeks, days and the clock parts are added.
func (p Period) AddTo(t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	months := int(m) - 1 + p.Months + 12*p.Years
	y += months / 12
	m = time.Month(months%12 + 1)
	if last := daysIn(y, m); d > last {
		d = last
	}
	hh, mm, ss := t.Clock()
	t = time.Date(y, m, d, hh, mm, ss, t.Nanosecond(), time.UTC)
	t = t.AddDate(0, 0, 7*p.Weeks+p.Days)
	return t.Add(time.Duration(p.Hours)*time.Hour + time.Duration(p.Minutes)*time.Minute + time.Duration(p.Seconds)*time.Second)
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
