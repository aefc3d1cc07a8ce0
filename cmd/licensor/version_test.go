package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestVersionStamped builds the command as a release does, with the
// version, commit and date given to the linker, and reads them back.
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "licensor")
	ldflags := "-X main.version=v1.2.3 -X main.commit=0123456789abcdef -X main.date=2026-12-02T10:00:00Z"
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("licensor version: %v\n%s", err, out)
	}
	want := "licensor v1.2.3 commit 0123456789abcdef built 2026-12-02T10:00:00Z " + runtime.Version() + "\n"
	if string(out) != want {
		t.Fatalf("licensor version = %q, want %q", out, want)
	}
}

// TestVersionFromVCS: a build from a checkout that stamps nothing still
// names its commit and the commit's time (what the toolchain records).
func TestVersionFromVCS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (git rev-parse HEAD: %v): nothing for the toolchain to record", err)
	}
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(root)), ".git")); err != nil || !fi.IsDir() {
		t.Skip("a git worktree (.git is a file): the Go toolchain records no VCS information there")
	}
	bin := filepath.Join(t.TempDir(), "licensor")
	cmd := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	for _, kv := range cmd.Environ() {
		if !strings.HasPrefix(kv, "GOFLAGS=") { // a GOFLAGS=-buildvcs=false beats the command line
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("licensor version: %v\n%s", err, out)
	}
	re := regexp.MustCompile(`^licensor \S+ commit ` + strings.TrimSpace(string(head)) + `(-dirty)? built \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ go\S+\n$`)
	if !re.Match(out) {
		t.Fatalf("licensor version = %q, want it to match %s", out, re)
	}
}

// TestVersionUnstamped: with neither stamps nor build information the
// version is (devel) and the line still ends with the Go version.
func TestVersionUnstamped(t *testing.T) {
	b := currentBuild() // the test binary: not stamped, no VCS information
	if b.Version == "" || b.Go != runtime.Version() {
		t.Fatalf("currentBuild() = %+v", b)
	}
	if s := b.String(); !strings.HasPrefix(s, "licensor "+b.Version) || !strings.HasSuffix(s, " "+runtime.Version()) {
		t.Fatalf("String() = %q", s)
	}
}
