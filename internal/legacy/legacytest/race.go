//go:build race

package legacytest

// RaceEnabled reports whether the race detector is on; tests use it to
// shrink data sets that would take minutes under it.
const RaceEnabled = true
