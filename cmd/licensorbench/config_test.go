package main

import (
	"errors"
	"io"
	"slices"
	"testing"
)

// TestServerArgsAndEnv: --server-arg and --server-env are repeatable and go
// to the licensor server alone; a malformed one is a usage error.
func TestServerArgsAndEnv(t *testing.T) {
	cfg, err := parseConfig([]string{"--server-env", "GOGC=200", "--server-env", "GODEBUG=gctrace=1",
		"--server-arg=--entitlement-cache-bytes=134217728", "--server-arg", "--memory-limit=300MiB"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"GOGC=200", "GODEBUG=gctrace=1"}; !slices.Equal(cfg.serverEnv, want) {
		t.Errorf("serverEnv = %q, want %q", cfg.serverEnv, want)
	}
	if want := []string{"--entitlement-cache-bytes=134217728", "--memory-limit=300MiB"}; !slices.Equal(cfg.serverArgs, want) {
		t.Errorf("serverArgs = %q, want %q", cfg.serverArgs, want)
	}
	for _, bad := range [][]string{{"--server-env", "GOGC"}, {"--server-env", "=1"}, {"--server-arg", "cache"}} {
		var ue usageError
		if _, err := parseConfig(bad, io.Discard); !errors.As(err, &ue) {
			t.Errorf("%q: err = %v, want a usage error", bad, err)
		}
	}
}
