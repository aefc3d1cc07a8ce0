package console_test

import (
	"strconv"

	"github.com/chromedp/chromedp"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func emulate(w, h int64) chromedp.Action[chromedp.Void] { return chromedp.EmulateViewport(w, h) }

func eval2(expr string) chromedp.Action[string] { return chromedp.Evaluate[string](expr) }
