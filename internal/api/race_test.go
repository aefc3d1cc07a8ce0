//go:build race

package api_test

// raceEnabled: the race detector's bookkeeping allocates too, so that
// allocation bounds are looser under it.
const raceEnabled = true
