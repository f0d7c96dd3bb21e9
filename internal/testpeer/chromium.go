package testpeer

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is Debian's chromium, headless, driven over the DevTools
// protocol (chromedp) for tests of the technician's pages. It records
// what a person would see in the browser's console as a problem: script
// exceptions, console.error calls and the browser's own error entries
// (a refused Content-Security-Policy, a failed load).
type Browser struct {
	// Ctx runs chromedp actions in the browser's one tab.
	Ctx context.Context

	mu       sync.Mutex
	problems []string
}

// StartChromium starts chromium (apt-get install chromium) for the test
// and stops it when the test ends. It fails the test if chromium cannot
// start: a browser test never skips.
func StartChromium(t testing.TB) *Browser {
	t.Helper()
	bin := LookPath(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx}
	msgs := chromedp.Console(ctx) // subscribes now: nothing is missed
	go func() {                   // owned by the tab: ends when Cleanup cancels it
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.problem(fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
			}
		}
	}()
	start, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(start, chromedp.Navigate("about:blank")); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("chromium (%s) did not start: %v (apt-get install chromium)", bin, err)
	}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	return b
}

func (b *Browser) problem(s string) {
	b.mu.Lock()
	b.problems = append(b.problems, s)
	b.mu.Unlock()
}

// Problems returns the console's errors so far, and forgets them.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.problems
	b.problems = nil
	return p
}

// Run runs actions in the tab within d, failing the test with what
// failed.
func (b *Browser) Run(t testing.TB, d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// Screenshot writes a full-page PNG of the tab to path at a desktop
// width (1280 CSS pixels) or a phone's (390, as a phone shows it), when
// path is not "" (tests write them only when asked).
func (b *Browser) Screenshot(t testing.TB, path string, phone bool) {
	t.Helper()
	if path == "" {
		return
	}
	view := chromedp.EmulateViewport(1280, 900)
	if phone {
		view = chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2))
	}
	b.Run(t, 30*time.Second, "screenshot "+path, view, chromedp.Sleep(300*time.Millisecond)) // layout settles
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	b.Run(t, 30*time.Second, "reset the viewport", chromedp.EmulateReset())
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
}
