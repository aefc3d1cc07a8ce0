package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A docBlock is one fenced code block of a Markdown file.
type docBlock struct {
	line   int    // the line of its opening fence, from 1
	lang   string // the info string's first word
	text   string // its contents, the fence's indentation removed
	notRun string // the reason of a "<!-- not run: reason -->" just above it
}

// shellLangs are the languages of the blocks a reader pastes into a shell.
var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

var notRunMarker = regexp.MustCompile(`^\s*<!--\s*not run:\s*(.*?)\s*-->\s*$`)

// docBlocks returns the fenced blocks of a Markdown text, in order.
func docBlocks(text string) ([]docBlock, error) {
	lines := strings.Split(text, "\n")
	var blocks []docBlock
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " ")
		if !strings.HasPrefix(trimmed, "```") {
			continue
		}
		indent := len(lines[i]) - len(trimmed)
		b := docBlock{line: i + 1}
		if f := strings.Fields(strings.TrimPrefix(trimmed, "```")); len(f) > 0 {
			b.lang = f[0]
		}
		for j := i - 1; j >= 0; j-- {
			if strings.TrimSpace(lines[j]) == "" {
				continue
			}
			if m := notRunMarker.FindStringSubmatch(lines[j]); m != nil {
				b.notRun = m[1]
				if b.notRun == "" {
					return nil, fmt.Errorf("line %d: a not-run marker without a reason", j+1)
				}
			}
			break
		}
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) == "```" {
				closed = true
				break
			}
			body = append(body, strings.TrimPrefix(lines[i], strings.Repeat(" ", indent)))
		}
		if !closed {
			return nil, fmt.Errorf("line %d: the block never closes", b.line)
		}
		b.text = strings.Join(body, "\n") + "\n"
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// docsToRun are the documents whose shell blocks TestDocsShellBlocks runs:
// the README and every page under docs/.
func docsToRun(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir("../../docs", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, strings.TrimPrefix(path, "../../"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// docExpectations are texts the output of a document's blocks must hold,
// beyond every command succeeding: what the page says the reader will see.
var docExpectations = map[string][]string{
	"README.md": {`"type":"License"`, `"order_id":"first-order-1"`, `"status":"ACTIVE"`},
	"docs/api.md": {`"deleted":["2"],"missing":["999"]`, `HTTP/1.1 201 Created`, `HTTP/1.1 204 No Content`,
		`"order_id":"1adc0dbe-3c65-4248-896c-78c049e276c8"`, `"meta":{"changed":true,"previous_status":"ACTIVE"}`,
		`"meta":{"changed":["1"],"unchanged":[],"refused":[]}`},
	"docs/enduser.md":    {`Idempotent-Replayed: true`, `HTTP/1.1 304 Not Modified`, `"entitled":true`, `"payment_method":"billing"`},
	"docs/webhooks.md":   {`"event_type":"product.created"`, `whsec_`, `Deleted webhook 2`, `"paused":true,"paused_at":`, `"paused":false,"paused_at":null`},
	"docs/migration.md":  {`imported:        1`, `already present: 1`, `"order_id":"legacy:boox:40"`, `"start_date":1704060000`},
	"docs/operations.md": {`"id":"1","type":"License"`, `schema already at version`},
}

// TestDocsShellBlocks runs every shell block of the README and of docs/, as
// written and in order, one bash session per document in a fresh
// directory, with the built licensor first on PATH. A block that cannot
// run in a test (a package install, systemctl, a server of your own)
// carries a "<!-- not run: reason -->" line just above it; every other
// block must run and succeed, every curl must get a 2xx or 3xx (the test's
// curl adds --fail-with-body), and nothing a document starts may be left
// running when it ends.
func TestDocsShellBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers")
	}
	for _, tool := range []string{"bash", "curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	bin := filepath.Dir(licensorBinary(t))
	for _, doc := range docsToRun(t) {
		t.Run(strings.ReplaceAll(doc, "/", "_"), func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join("../..", doc))
			if err != nil {
				t.Fatal(err)
			}
			blocks, err := docBlocks(string(text))
			if err != nil {
				t.Fatalf("%s: %v", doc, err)
			}
			var script strings.Builder
			var run []docBlock
			for _, b := range blocks {
				if !shellLangs[b.lang] || b.notRun != "" {
					continue
				}
				if b.lang == "console" {
					t.Errorf("%s:%d: a console block (a transcript) cannot be pasted: make it sh, or mark it <!-- not run: reason -->", doc, b.line)
					continue
				}
				run = append(run, b)
				fmt.Fprintf(&script, "# --- %s:%d\n%s\necho %d >&3\n", doc, b.line, b.text, b.line)
			}
			if len(run) == 0 {
				return
			}
			out, done := runDocScript(t, bin, script.String())
			for _, b := range run {
				if !done[b.line] {
					t.Errorf("%s:%d: this block did not run to its end", doc, b.line)
					break
				}
			}
			for _, want := range docExpectations[doc] {
				if !strings.Contains(out, want) {
					t.Errorf("%s: the output lacks %s", doc, want)
				}
			}
			if t.Failed() {
				t.Logf("output of %s's blocks:\n%s", doc, out)
			}
		})
	}
	for doc := range docExpectations {
		if _, err := os.Stat(filepath.Join("../..", doc)); err != nil {
			t.Errorf("docExpectations names %s: %v", doc, err)
		}
	}
}

// runDocScript runs a document's blocks in bash in a fresh directory and
// returns its output and the lines of the blocks that ran to their end.
// The port 8080 of the text is replaced by a free one.
func runDocScript(t *testing.T, bin, script string) (string, map[int]bool) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the process checks read /proc")
	}
	port := freePort(t)
	script = strings.ReplaceAll(script, ":8080", ":"+port)
	dir := t.TempDir()
	// The test's curl fails on a 4xx or 5xx answer, unless the block
	// already chose how to fail (-f, --fail).
	prelude := `curl() {
	local a rc
	for a in "$@"; do
		case $a in --fail*|-[!-]*f*) command curl "$@"; rc=$?; echo; return $rc;; esac
	done
	command curl --fail-with-body "$@"; rc=$?; echo; return $rc
}
`
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The blocks that ran are written to a file, not a pipe: a server a
	// block starts inherits the descriptor and would hold a pipe open.
	doneW, err := os.Create(filepath.Join(t.TempDir(), "done"))
	if err != nil {
		t.Fatal(err)
	}
	defer doneW.Close()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", prelude+script)
	cmd.Dir = dir
	cmd.ExtraFiles = []*os.File{doneW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k == "DATABASE_URL" || strings.HasPrefix(k, "LICENSOR_") || k == "PATH" || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+dir,
		"LICENSOR_LISTEN=127.0.0.1:"+port, "LICENSOR_LOG_FORMAT=text")
	// A file, not a buffer: exec would wait for a pipe that a server left
	// running holds open.
	out, err := os.Create(filepath.Join(t.TempDir(), "output"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	err = cmd.Wait()
	done := map[int]bool{}
	if b, rerr := os.ReadFile(doneW.Name()); rerr == nil {
		for _, l := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(l); err == nil {
				done[n] = true
			}
		}
	}
	if err != nil {
		t.Errorf("the blocks failed: %v", err)
	}
	// What the document started must be stopped by the document.
	left := groupProcesses(pgid)
	for deadline := time.Now().Add(15 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = groupProcesses(pgid) {
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("the document leaves processes running: %s", strings.Join(left, "; "))
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	text, _ := os.ReadFile(out.Name())
	return string(text), done
}

// groupProcesses lists the live (not zombie) processes of a process group.
func groupProcesses(pgid int) []string {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var live []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 3 || fields[0] == "Z" || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "cmdline"))
		live = append(live, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return live
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestDocBlocksParse checks the block reader on the shapes the pages use.
func TestDocBlocksParse(t *testing.T) {
	text := "intro\n\n```sh\necho one\n```\n\n<!-- not run: installs a package -->\n\n```sh\napt install x\n```\n\n" +
		"- item:\n\n  ```js\n  let a = 1\n  ```\n"
	blocks, err := docBlocks(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 || blocks[0].text != "echo one\n" || blocks[0].notRun != "" ||
		blocks[1].notRun != "installs a package" || blocks[2].lang != "js" || blocks[2].text != "let a = 1\n" {
		t.Errorf("blocks = %+v", blocks)
	}
	if _, err := docBlocks("```sh\nnever closed\n"); err == nil {
		t.Error("an unclosed block was accepted")
	}
	if _, err := docBlocks("<!-- not run: -->\n```sh\nx\n```\n"); err == nil {
		t.Error("a marker without a reason was accepted")
	}
}
