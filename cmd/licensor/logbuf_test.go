package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor/internal/testdb"
)

// TestLogsBuffered: access lines wait in memory until the next flush, an
// error or a server message (which flush them in order), or the close at
// shutdown; nothing is lost or reordered.
func TestLogsBuffered(t *testing.T) {
	var out syncBuffer
	logs, err := newLogs(&out, "json", slog.LevelInfo, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	logs.access.Info("request", "n", 1)
	logs.access.Info("request", "n", 2)
	if out.String() != "" {
		t.Fatalf("access lines were written at once: %s", out.String())
	}
	logs.server.Info("server message")
	logs.access.Info("request", "n", 3)
	logs.access.Error("request", "n", 4, "err", "boom")
	logs.access.Info("request", "n", 5)
	logs.close()
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		i := strings.Index(l, `"msg":`)
		got = append(got, l[i:])
	}
	want := []string{
		`"msg":"request","n":1}`, `"msg":"request","n":2}`, `"msg":"server message"}`,
		`"msg":"request","n":3}`, `"msg":"request","n":4,"err":"boom"}`, `"msg":"request","n":5}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLogsFlushWhenFullAndOnTimer(t *testing.T) {
	var out syncBuffer
	logs, err := newLogs(&out, "text", slog.LevelInfo, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	third := strings.Repeat("x", logBufferMax/3)
	logs.access.Info("request", "pad", third)
	logs.access.Info("request", "pad", third)
	if out.String() != "" {
		t.Fatalf("written before the buffer was full")
	}
	logs.access.Info("request", "pad", third)
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Errorf("%d lines written when the buffer overflowed, want all 3", n)
	}
	logs.close()

	var timed syncBuffer
	logs, err = newLogs(&timed, "json", slog.LevelInfo, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.close()
	logs.access.Info("request")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(timed.String(), `"msg":"request"`); {
		if time.Now().After(deadline) {
			t.Fatal("the flusher never wrote the line")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLogsUnbuffered(t *testing.T) {
	var out syncBuffer
	logs, err := newLogs(&out, "json", slog.LevelInfo, 0)
	if err != nil {
		t.Fatal(err)
	}
	logs.access.Info("request")
	if !strings.Contains(out.String(), `"msg":"request"`) {
		t.Errorf("--log-flush 0 did not write at once")
	}
	if _, err := newLogs(io.Discard, "xml", slog.LevelInfo, time.Second); err == nil {
		t.Errorf("a bad log format was accepted")
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "off": 0, "150MiB": 150 << 20, "1GiB": 1 << 30, "64KiB": 64 << 10, "123456": 123456, "99B": 99, "2TiB": 2 << 40,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "150MB", "1.5GiB", "-1", "MiB", "10000000TiB", "lots"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
	if got := formatBytes(150 << 20); got != "150MiB" {
		t.Errorf("formatBytes = %s", got)
	}
	if _, _, err := cli(t, nil, "serve", "--memory-limit", "lots"); err == nil || exitCode(err) != 2 {
		t.Errorf("serve --memory-limit lots: %v", err)
	}
	if _, _, err := cli(t, nil, "serve", "--log-flush", "-1s"); err == nil || exitCode(err) != 2 {
		t.Errorf("serve --log-flush -1s: %v", err)
	}
}

// TestServeMemoryLimit runs the binary: the runtime's limit, as its
// metrics show it, is the flag's, else GOMEMLIMIT's, else the default; its
// GOGC is GOGC's when set, else 400 on PostgreSQL under a memory limit,
// else the runtime's 100.
func TestServeMemoryLimit(t *testing.T) {
	pg := os.Getenv("LICENSOR_POSTGRES_URL") != ""
	for _, c := range []struct {
		name, env, gogc string
		postgres        bool
		args            []string
		want            string // go_gc_gomemlimit_bytes
		log             string
		wantGC          string // go_gc_gogc_percent
		logGC           string
	}{
		{"default", "", "", false, nil, "1.048576e+08", `"limit":"100MiB (default)"`, "100", `"gogc":"100 (default)"`},
		{"flag", "", "", false, []string{"--memory-limit", "123MiB"}, "1.28974848e+08", `"limit":"123MiB (--memory-limit)"`, "100", `"gogc":"100 (default)"`},
		{"GOMEMLIMIT", "100MiB", "", false, nil, "1.048576e+08", `"limit":"100MiB (GOMEMLIMIT)"`, "100", ""},
		{"flag over GOMEMLIMIT", "100MiB", "", false, []string{"--memory-limit", "200MiB"}, "2.097152e+08", `"limit":"200MiB (--memory-limit)"`, "100", ""},
		{"off", "", "", false, []string{"--memory-limit", "off"}, "9.223372036854776e+18", `"limit":"off (--memory-limit)"`, "100", ""},
		{"GOGC", "", "250", false, nil, "1.048576e+08", "", "250", `"gogc":"250 (GOGC)"`},
		{"postgres", "", "", true, nil, "1.572864e+08", `"limit":"150MiB (default)"`, "400", `"gogc":"400 (default)"`},
		{"postgres, no limit", "", "", true, []string{"--memory-limit", "0"}, "9.223372036854776e+18", "", "100", `"gogc":"100 (default)"`},
		{"postgres, GOGC", "", "150", true, nil, "1.572864e+08", "", "150", `"gogc":"150 (GOGC)"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "m.db")
			if c.postgres {
				if !pg {
					t.Skip("LICENSOR_POSTGRES_URL is not set")
				}
				db = testdb.PostgresURL(t)
			}
			t.Setenv("GOMEMLIMIT", c.env)
			t.Setenv("GOGC", c.gogc)
			p := startServer(t, db, c.args...)
			resp, err := http.Get(p.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, want := range []string{"go_gc_gomemlimit_bytes " + c.want + "\n", "go_gc_gogc_percent " + c.wantGC + "\n"} {
				if !strings.Contains(string(b), want) {
					t.Errorf("metrics lack %q", want)
				}
			}
			for _, l := range []string{c.log, c.logGC} {
				if !strings.Contains(p.logs.String(), l) {
					t.Errorf("log lacks %s:\n%s", l, p.logs.String())
				}
			}
		})
	}
}

// TestDefaultGCPercent: 400 only on PostgreSQL under a memory limit.
func TestDefaultGCPercent(t *testing.T) {
	for _, c := range []struct {
		dsn   string
		limit int64
		want  int
	}{
		{"postgres://db.example/licensor", 150 << 20, 400},
		{"postgres://db.example/licensor", 0, 0},
		{"licensor.db", 100 << 20, 0},
		{"licensor.db", 0, 0},
	} {
		if got := defaultGCPercent(c.dsn, c.limit); got != c.want {
			t.Errorf("defaultGCPercent(%q, %d) = %d, want %d", c.dsn, c.limit, got, c.want)
		}
	}
}

// TestDefaultMemoryLimit: SQLite's page caches are outside the Go runtime,
// so its default leaves room for them.
func TestDefaultMemoryLimit(t *testing.T) {
	for dsn, want := range map[string]int64{
		"licensor.db":                          100 << 20,
		"sqlite:/var/lib/licensor/main.db":     100 << 20,
		"postgres://db.example/licensor":       150 << 20,
		"postgresql://db.example/licensor?x=1": 150 << 20,
	} {
		if got := defaultMemoryLimit(dsn); got != want {
			t.Errorf("defaultMemoryLimit(%q) = %d, want %d", dsn, got, want)
		}
	}
}
