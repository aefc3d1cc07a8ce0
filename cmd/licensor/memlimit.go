package main

import (
	"flag"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultMemoryLimit is serve's soft memory limit on the database dsn
// unless told otherwise: the Go runtime collects garbage more often as its
// memory nears the limit and returns freed memory to the system sooner, so
// that the resident size stays under about 200 MB. It is a soft limit: a
// live heap larger than it is kept (and costs more collection), never
// refused.
//
// The live heap is 30-60 MB at rest (the entitlement cache's 32 MiB budget
// included) and more while large batches run; too near it, the collector
// runs all the time (at 100 MiB, PostgreSQL at 1M licenses spent 60 % of
// its CPU collecting during BatchCreateLicenses, 0.42 x the reference
// instead of about 1 x). On PostgreSQL the Go runtime is nearly all of the
// process: 150 MiB. On SQLite the process also holds SQLite's page caches,
// which Go does not count (32 MB for the writer, 2 MB per reader, the
// statement journal): the 1M-license benchmark peaked at 223 MB with
// 150 MiB, 212 MB with 120 MiB and 195 MB with 100 MiB (batch creates at
// 0.85 x the reference), so 100 MiB there.
func defaultMemoryLimit(dsn string) int64 {
	if isPostgres(dsn) {
		return 150 << 20
	}
	return 100 << 20
}

// postgresGCPercent is serve's GOGC on PostgreSQL while a memory limit
// applies and GOGC is not set: the collector then runs when the heap has
// grown by four times what is live, or earlier as it nears the limit,
// which stays the bound of the process's memory. On PostgreSQL the live
// heap at rest is far below the limit (30-60 MB against 150 MiB), and at
// the default GOGC of 100 the collector ran every 0.3 s under entitlement
// load and took about an eighth of a check's CPU: licensorbench at 1M
// (BENCHMARKS.md, "Round three, final"), 10k users watching, went from
// 0.50-0.51 x to 0.59-0.60 x the empty-work handler with it (38 to 33 µs
// of server CPU a check), peak RSS 163 MB. On SQLite the live heap is already near its 100 MiB limit with the
// cache full, and the same measurement showed no gain, so SQLite keeps
// the runtime's 100.
const postgresGCPercent = 400

// defaultGCPercent is serve's GOGC on dsn with a memory limit of
// limitBytes (0: none): 0 means the runtime's own (100). Without a limit
// the heap would have no bound but GOGC, so it stays at the runtime's.
func defaultGCPercent(dsn string, limitBytes int64) int {
	if limitBytes > 0 && isPostgres(dsn) {
		return postgresGCPercent
	}
	return 0
}

// appliedGC is what applyGCPercent did, for the log and for restore.
type appliedGC struct {
	source  string // "GOGC", "default"
	percent int    // the collector's GOGC now
	prev    int    // before, -1 when untouched
}

func (a appliedGC) String() string {
	if a.percent < 0 {
		return "off (" + a.source + ")"
	}
	return strconv.Itoa(a.percent) + " (" + a.source + ")"
}

func (a appliedGC) restore() {
	if a.prev >= 0 {
		debug.SetGCPercent(a.prev)
	}
}

// applyGCPercent sets the collector's GOGC to def (0: leave the runtime's)
// unless the GOGC environment variable is set, which the runtime has
// read already and which wins.
func applyGCPercent(getenv func(string) string, def int) appliedGC {
	if set := getenv("GOGC") != ""; set || def == 0 {
		cur := debug.SetGCPercent(100) // read it: put back at once
		debug.SetGCPercent(cur)
		source := "default"
		if set {
			source = "GOGC"
		}
		return appliedGC{source: source, percent: cur, prev: -1}
	}
	return appliedGC{source: "default", percent: def, prev: debug.SetGCPercent(def)}
}

// memoryLimit is the --memory-limit flag: bytes, 0 for none.
type memoryLimit struct{ bytes int64 }

func (m *memoryLimit) String() string {
	if m == nil || m.bytes == 0 {
		return "off"
	}
	return formatBytes(m.bytes)
}

func (m *memoryLimit) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	m.bytes = n
	return nil
}

// appliedLimit is what apply did, for the log and for restore.
type appliedLimit struct {
	source string // "--memory-limit", "GOMEMLIMIT", "default"
	bytes  int64  // 0: none
	prev   int64  // the runtime's limit before, -1 when untouched
}

func (a appliedLimit) String() string {
	if a.bytes == 0 {
		return "off (" + a.source + ")"
	}
	return formatBytes(a.bytes) + " (" + a.source + ")"
}

// restore puts back the limit the process had (serve runs in-process in
// tests).
func (a appliedLimit) restore() {
	if a.prev >= 0 {
		debug.SetMemoryLimit(a.prev)
	}
}

// apply sets the runtime's soft memory limit: the flag when given, else
// GOMEMLIMIT when set (the runtime has read it already), else def.
func (m memoryLimit) apply(fs *flag.FlagSet, getenv func(string) string, def int64) appliedLimit {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "memory-limit" })
	if !given && getenv("GOMEMLIMIT") != "" {
		cur := debug.SetMemoryLimit(-1)
		if cur == noLimit {
			cur = 0
		}
		return appliedLimit{source: "GOMEMLIMIT", bytes: cur, prev: -1}
	}
	source := "default"
	if given {
		source = "--memory-limit"
	} else {
		m.bytes = def
	}
	n := m.bytes
	if n == 0 {
		n = noLimit
	}
	return appliedLimit{source: source, bytes: m.bytes, prev: debug.SetMemoryLimit(n)}
}

// noLimit is the runtime's "no memory limit".
const noLimit = int64(^uint64(0) >> 1)

// parseBytes reads a size as GOMEMLIMIT writes it: a number of bytes with
// an optional unit B, KiB, MiB, GiB or TiB; 0 or "off" is no limit.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return 0, nil
	}
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > noLimit/mult {
		return 0, fmt.Errorf("%q is not a size like 150MiB, 1GiB or a number of bytes (0 or off: no limit)", s)
	}
	return n * mult, nil
}

func formatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
