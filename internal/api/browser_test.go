package api_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser is a headless Debian Chromium driven over the DevTools protocol,
// recording every request its pages make and every console message.
type browser struct {
	ctx context.Context

	mu       sync.Mutex
	requests []string // URLs, in the order they were sent
	console  []string // console messages and exceptions
}

// newBrowser starts Chromium (LICENSOR_CHROMIUM, or chromium on the PATH;
// Debian's package: apt-get install chromium). Without one the test is
// skipped, unless LICENSOR_BROWSER_REQUIRED=1 (as in CI), which fails it.
// Nothing is downloaded: no browser of its own, no network but loopback.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := os.Getenv("LICENSOR_CHROMIUM")
	if path == "" {
		path, _ = exec.LookPath("chromium")
	}
	if path == "" {
		if os.Getenv("LICENSOR_BROWSER_REQUIRED") == "1" {
			t.Fatal("no Chromium (LICENSOR_BROWSER_REQUIRED=1): apt-get install chromium, or set LICENSOR_CHROMIUM")
		}
		t.Skip("no Chromium on the PATH (apt-get install chromium); LICENSOR_BROWSER_REQUIRED=1 makes this a failure")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	b := &browser{}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(b.record))
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	b.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return b
}

// record keeps the requests and console lines of the tab. It runs in the
// loop that reads the tab's messages: it only appends, under the lock.
func (b *browser) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
		}
		b.console = append(b.console, string(ev.Type)+": "+strings.Join(parts, " "))
	case *cdplog.EventEntryAdded: // among them the browser's own: CSP violations
		b.console = append(b.console, string(ev.Entry.Level)+": "+ev.Entry.Text)
	case *runtime.EventExceptionThrown:
		text := ev.ExceptionDetails.Text
		if ex := ev.ExceptionDetails.Exception; ex != nil {
			text += " " + ex.Description
		}
		b.console = append(b.console, "exception: "+text)
	}
}

// run runs actions in the browser's tab.
func (b *browser) run(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatalf("browser: %v\nconsole: %s", err, strings.Join(b.consoleLines(), "\n"))
	}
}

func (b *browser) requestURLs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.requests...)
}

func (b *browser) consoleLines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// offOrigin returns the recorded requests that went anywhere but the given
// origins (data: and blob: URLs stay in the page).
func (b *browser) offOrigin(origins ...string) []string {
	var off []string
	for _, u := range b.requestURLs() {
		if strings.HasPrefix(u, "data:") || strings.HasPrefix(u, "blob:") {
			continue
		}
		ok := false
		for _, o := range origins {
			ok = ok || u == o || strings.HasPrefix(u, o+"/")
		}
		if !ok {
			off = append(off, u)
		}
	}
	return off
}

// eval evaluates a JavaScript expression in the tab and decodes its value.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v\nconsole: %s", expr, err, strings.Join(b.consoleLines(), "\n"))
	}
	return v
}

// waitFor polls a JavaScript expression in the tab until it is truthy.
func waitFor(t *testing.T, b *browser, expr string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("waiting for %s: %v\nconsole: %s", expr, err, strings.Join(b.consoleLines(), "\n"))
	}
}
