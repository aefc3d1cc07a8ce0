package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// slogJSON is r as slog.NewJSONHandler writes it.
func slogJSON(t testing.TB, r slog.Record) string {
	t.Helper()
	var buf bytes.Buffer
	if err := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func accessRecord(at time.Time, level slog.Level, msg string, attrs ...slog.Attr) slog.Record {
	r := slog.NewRecord(at, level, msg, 0)
	r.AddAttrs(attrs...)
	return r
}

func TestAppendJSONRecord(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 27, 7, 290973156, time.UTC)
	access := []slog.Attr{
		slog.String("method", "GET"),
		slog.String("path", "/api/license/management/v4/users/41/entitlements"),
		slog.String("route", "GET /api/license/management/v4/users/{user_id}/entitlements"),
		slog.Int("status", 200),
		slog.Int64("bytes", 1851),
		slog.Duration("duration", 53127*time.Nanosecond),
		slog.String("request_id", "8a04dec0ffe81323f482c7e8"),
		slog.String("remote", "127.0.0.1:50000"),
		slog.String("key", "bench"),
	}
	odd := "a\"b\\c\nd\re\tf\x00g\x1fh\x7fi<j>k&l\u2028m\u2029n\xffo\xe2\x80p é 日本 🎉"
	for name, r := range map[string]slog.Record{
		"access line":           accessRecord(at, slog.LevelInfo, "request", access...),
		"5xx":                   accessRecord(at, slog.LevelError, "request", append(access, slog.String("err", "database is locked"))...),
		"no attributes":         accessRecord(at, slog.LevelWarn, "readiness check failed"),
		"no time":               accessRecord(time.Time{}, slog.LevelInfo, "request", access[:3]...),
		"monotonic, local zone": accessRecord(time.Now().In(time.FixedZone("X", 5400)), slog.LevelDebug, "x", slog.Bool("ok", true)),
		"whole seconds":         accessRecord(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), slog.LevelInfo+2, "m"),
		"odd strings":           accessRecord(at, slog.LevelInfo, odd, slog.String(odd, odd), slog.Uint64("u", 1<<63), slog.Int("neg", -7), slog.Duration("d", -time.Second)),
	} {
		got, ok := appendJSONRecord(nil, r)
		if !ok {
			t.Errorf("%s: not written", name)
			continue
		}
		if want := slogJSON(t, r); string(got) != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	// What it leaves to slog.
	for name, r := range map[string]slog.Record{
		"any":          accessRecord(at, slog.LevelInfo, "m", slog.Any("err", errors.New("x"))),
		"float":        accessRecord(at, slog.LevelInfo, "m", slog.Float64("f", 0.5)),
		"time":         accessRecord(at, slog.LevelInfo, "m", slog.Time("t", at)),
		"group":        accessRecord(at, slog.LevelInfo, "m", slog.Group("g", slog.Int("a", 1))),
		"empty key":    accessRecord(at, slog.LevelInfo, "m", slog.Int("", 1)),
		"year 10000":   accessRecord(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "m"),
		"log valuer":   accessRecord(at, slog.LevelInfo, "m", slog.Any("v", slog.AnyValue(logValuer{}))),
		"after string": accessRecord(at, slog.LevelInfo, "m", slog.String("a", "b"), slog.Any("c", []int{1})),
	} {
		if got, ok := appendJSONRecord([]byte("keep"), r); ok || string(got) != "keep" {
			t.Errorf("%s: written (%q), want left to slog", name, got)
		}
	}
}

type logValuer struct{}

func (logValuer) LogValue() slog.Value { return slog.StringValue("v") }

// TestFlushingHandlerJSON: the server's loggers write what slog's JSON
// handler writes, whether a record takes the short way or not, also with
// attributes of their own.
func TestFlushingHandlerJSON(t *testing.T) {
	var out, want bytes.Buffer
	logs, err := newLogs(&out, "json", slog.LevelInfo, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ref := slog.New(slog.NewJSONHandler(&want, &slog.HandlerOptions{Level: slog.LevelInfo}))
	at := time.Date(2026, 12, 3, 12, 0, 0, 1, time.UTC)
	for _, l := range []struct{ got, want *slog.Logger }{
		{logs.access, ref}, {logs.server, ref}, {logs.server.With("component", "outbox"), ref.With("component", "outbox")},
		{logs.access.WithGroup("g"), ref.WithGroup("g")},
	} {
		for _, r := range []slog.Record{
			accessRecord(at, slog.LevelInfo, "request", slog.String("method", "GET"), slog.Int("status", 200)),
			accessRecord(at, slog.LevelError, "request", slog.String("err", "x"), slog.Any("e", errors.New("y"))),
			accessRecord(at, slog.LevelDebug, "not logged"),
		} {
			if l.got.Enabled(context.Background(), r.Level) {
				_ = l.got.Handler().Handle(context.Background(), r)
			}
			if l.want.Enabled(context.Background(), r.Level) {
				_ = l.want.Handler().Handle(context.Background(), r)
			}
		}
	}
	logs.close()
	if out.String() != want.String() {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 8 {
		t.Errorf("%d lines, want 8", n)
	}
}

func FuzzAppendJSONRecord(f *testing.F) {
	f.Add("request", "path", "/api/x?a=b&c=<d>", int64(200), int64(-5))
	f.Add("\u2028", "\x00", "\xff\xfe", int64(0), int64(1<<62))
	f.Fuzz(func(t *testing.T, msg, key, val string, n, d int64) {
		if key == "" {
			key = "k"
		}
		r := accessRecord(time.Unix(0, d).UTC(), slog.Level(n%16), msg, slog.String(key, val), slog.Int64(val+"n", n), slog.Duration("d", time.Duration(d)))
		got, ok := appendJSONRecord(nil, r)
		if !ok {
			if y := r.Time.Year(); y >= 0 && y < 10000 {
				t.Fatalf("not written: %v", r)
			}
			return
		}
		if want := slogJSON(t, r); string(got) != want {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

// BenchmarkAccessLine is one access line of ten attributes, by slog's JSON
// handler and by appendJSONRecord.
func BenchmarkAccessLine(b *testing.B) {
	at := time.Now()
	r := accessRecord(at, slog.LevelInfo, "request",
		slog.String("method", "GET"), slog.String("path", "/api/license/management/v4/users/41/entitlements"),
		slog.String("route", "GET /api/license/management/v4/users/{user_id}/entitlements"), slog.Int("status", 200),
		slog.Int64("bytes", 1851), slog.Duration("duration", 53127), slog.String("request_id", "8a04dec0ffe81323f482c7e8"),
		slog.String("remote", "127.0.0.1:50000"), slog.String("key", "bench"))
	b.Run("slog", func(b *testing.B) {
		buf := newLogBuffer(discard{})
		h := flushingHandler{slog.NewJSONHandler(buf, nil), buf, slog.LevelWarn, false}
		b.ReportAllocs()
		for b.Loop() {
			_ = h.Handle(context.Background(), r)
		}
	})
	b.Run("appendJSONRecord", func(b *testing.B) {
		buf := newLogBuffer(discard{})
		h := flushingHandler{slog.NewJSONHandler(buf, nil), buf, slog.LevelWarn, true}
		b.ReportAllocs()
		for b.Loop() {
			_ = h.Handle(context.Background(), r)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
