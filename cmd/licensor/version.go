package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Release builds stamp these with the linker (goreleaser's defaults):
//
//	go build -ldflags "-X main.version=v0.1.0 -X main.commit=$(git rev-parse HEAD) -X main.date=$(date -u +%FT%TZ)" ./cmd/licensor
//
// A build that does not stamp them (go build, go install, go run) falls back
// to what the Go toolchain records: the module version for go install
// module@version, the VCS revision and commit time for a build in a checkout.
var (
	version = ""
	commit  = ""
	date    = ""
)

// build is what a binary knows of its own making.
type build struct {
	Version string // v0.1.0, or (devel) for an unreleased build
	Commit  string // the VCS revision, with -dirty when the tree had changes; "" when unknown
	Date    string // the build (or, unstamped, the commit) time in RFC 3339; "" when unknown
	Go      string // the Go version it was built with
}

// currentBuild reads the stamped variables, and the toolchain's build
// information where they are empty.
func currentBuild() build {
	b := build{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = &debug.BuildInfo{}
	}
	if b.Version == "" {
		b.Version = info.Main.Version
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.time":
			if b.Date == "" {
				b.Date = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && commit == "" && b.Commit != "" {
		b.Commit += "-dirty"
	}
	return b
}

// String is the one line `licensor version` prints.
func (b build) String() string {
	s := "licensor " + b.Version
	if b.Commit != "" {
		s += " commit " + b.Commit
	}
	if b.Date != "" {
		s += " built " + b.Date
	}
	return s + " " + b.Go
}

// versionString is the version alone, for the User-Agent and the start-up log.
func versionString() string { return currentBuild().Version }

func printVersion(w io.Writer) {
	fmt.Fprintln(w, currentBuild())
}
