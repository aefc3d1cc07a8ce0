package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logBuffer holds log lines in memory and writes them to w in one write:
// at every flush (every interval, by the background goroutine of run), when
// more than logBufferMax bytes wait, and whenever asked. Each Write is one
// whole record (slog handlers write a record at once), so lines are never
// split, and they reach w in the order they were written.
type logBuffer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// logBufferMax is how many bytes may wait before a Write flushes them
// itself.
const logBufferMax = 64 << 10

func newLogBuffer(w io.Writer) *logBuffer {
	return &logBuffer{w: w, buf: make([]byte, 0, logBufferMax+4096)}
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > logBufferMax {
		b.flushLocked()
	}
	return len(p), nil
}

// Flush writes what waits.
func (b *logBuffer) Flush() {
	b.mu.Lock()
	b.flushLocked()
	b.mu.Unlock()
}

func (b *logBuffer) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	_, _ = b.w.Write(b.buf) // nowhere to report a failing log
	b.buf = b.buf[:0]
}

// run flushes every interval until ctx ends, then once more.
func (b *logBuffer) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			b.Flush()
			return
		case <-t.C:
			b.Flush()
		}
	}
}

// flushingHandler is a slog.Handler that flushes a logBuffer after every
// record at or above level: the server's own messages (level MinInt32: all
// of them) are written at once, while access log lines (level Warn: only the
// 5xx ones, logged at Error) wait for the next flush.
//
// With json set, Handler is slog.NewJSONHandler(buf, …) with no attributes
// or groups of its own and no ReplaceAttr, and the records it can
// (appendJSONRecord: every access line) are written without it, the same
// bytes.
type flushingHandler struct {
	slog.Handler
	buf   *logBuffer
	level slog.Level
	json  bool
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if !h.json || !h.buf.writeJSONRecord(r) {
		err = h.Handler.Handle(ctx, r)
	}
	if r.Level >= h.level {
		h.buf.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.buf, h.level, false}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.buf, h.level, false}
}

// writeJSONRecord writes r as a line of JSON (appendJSONRecord), reporting
// false, having written nothing, when it cannot.
func (b *logBuffer) writeJSONRecord(r slog.Record) bool {
	var room [1024]byte // an access line is 300 to 500 bytes
	line, ok := appendJSONRecord(room[:0], r)
	if ok {
		_, _ = b.Write(line)
	}
	return ok
}
