package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser is a headless Debian Chromium driven over the DevTools protocol
// (as in internal/api's browser tests), recording every request URL and
// console message of its tab.
type browser struct {
	ctx context.Context

	mu       sync.Mutex
	requests []string
	console  []string
}

// newBrowser starts Chromium (LICENSOR_CHROMIUM, or chromium on the PATH).
// Without one the test is skipped, unless LICENSOR_BROWSER_REQUIRED=1 (CI).
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
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	b := &browser{}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(b.record))
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	b.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return b
}

func (b *browser) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *runtime.EventConsoleAPICalled:
		b.console = append(b.console, string(ev.Type))
	case *cdplog.EventEntryAdded: // the browser's own messages: CSP violations among them
		b.console = append(b.console, string(ev.Entry.Level)+": "+ev.Entry.Text)
	case *runtime.EventExceptionThrown:
		b.console = append(b.console, "exception: "+ev.ExceptionDetails.Text)
	}
}

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

func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// open navigates to url.
func (b *browser) open(t *testing.T, url string) {
	t.Helper()
	b.run(t, chromedp.Navigate(url))
}

// submit fills the fields (CSS selector → value) and submits the form of
// the button, waiting for the next page to load.
func (b *browser) submit(t *testing.T, button string, fields map[string]string) {
	t.Helper()
	var acts []chromedp.Action[chromedp.Void]
	for sel, v := range fields {
		acts = append(acts, chromedp.SetValue(chromedp.CSS(sel), v))
	}
	acts = append(acts, discard(chromedp.Evaluate[int](`window.__before = 1`)))
	acts = append(acts, chromedp.Click(chromedp.CSS(button)))
	b.run(t, acts...)
	// The click navigates: wait (through the navigation's own errors) for
	// the next page to be complete.
	deadline := time.Now().Add(20 * time.Second)
	for {
		done, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.__before === undefined && document.readyState === "complete"`))
		if err == nil && done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("submit %s: the next page did not load (%v)", button, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	return eval[string](t, b, `(document.querySelector(`+quote(sel)+`) || {innerText: ""}).innerText`)
}

func (b *browser) html(t *testing.T) string {
	t.Helper()
	return eval[string](t, b, `document.documentElement.outerHTML`)
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// screenshot saves a full-page PNG under the artifact directory:
// $LICENSOR_ARTIFACTS/console, or testdata/out (ignored by git).
func (b *browser) screenshot(t *testing.T, name string) string {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("testdata", "out")
	if a := os.Getenv("LICENSOR_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// axe runs axe-core (LICENSOR_AXE: the path of axe.min.js, installed from
// npm by .ci/console-axe) on the page and fails on any violation. Without
// LICENSOR_AXE the check is skipped, unless LICENSOR_AXE_REQUIRED=1 (CI).
func (b *browser) axe(t *testing.T, what string) {
	t.Helper()
	path := os.Getenv("LICENSOR_AXE")
	if path == "" {
		if os.Getenv("LICENSOR_AXE_REQUIRED") == "1" {
			t.Fatal("LICENSOR_AXE_REQUIRED=1 but LICENSOR_AXE (the path of axe-core's axe.min.js) is not set: run .ci/console-axe")
		}
		t.Logf("axe-core not checked on %s: set LICENSOR_AXE to axe.min.js (npm install axe-core)", what)
		return
	}
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read axe-core: %v", err)
	}
	// Runtime.evaluate runs outside the page's CSP, which forbids every script.
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](string(src)+";\ntrue")); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	out := eval[string](t, b, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}).then(r => r.violations.map(v => v.id + ": " + v.help + " [" + v.nodes.map(n => n.target.join(" ")).join("; ") + "]").join("\n"))`)
	if out != "" {
		t.Errorf("axe-core violations on %s:\n%s", what, out)
	}
}

func discard[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error { _, err := a(ctx, tg); return err })
}
