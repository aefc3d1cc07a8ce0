package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEWalkthrough runs the README's curl walkthrough, as written,
// against a real server: every curl must succeed (--fail-with-body), so the
// documentation cannot drift from the behaviour.
func TestREADMEWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile("(?s)## Walkthrough.*?```sh\n(.*?)```").FindSubmatch(readme)
	if section == nil {
		t.Fatal("README has no Walkthrough section with a sh block")
	}
	db := filepath.Join(t.TempDir(), "licensor.db")
	key := createKey(t, db, "me", "write")
	p := startServer(t, db)
	script := strings.ReplaceAll(string(section[1]), "localhost:8080", strings.TrimPrefix(p.url, "http://"))
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", `curl() { command curl --fail-with-body --silent --show-error "$@"; echo; }`+"\n"+script)
	cmd.Env = append(os.Environ(), "KEY="+key)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s\nserver log:\n%s", err, out, p.logs.String())
	}
	for _, want := range []string{`"deleted":["2"],"missing":["999"]`, `HTTP/1.1 201 Created`, `HTTP/1.1 204 No Content`, `"order_id":"1adc0dbe-3c65-4248-896c-78c049e276c8"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("walkthrough output lacks %s:\n%s", want, out)
		}
	}
}
