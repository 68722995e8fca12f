package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"
)

// pageShowsNoData fails the test if the page shows any gateway data: the
// main section is hidden and every data container is empty.
func pageShowsNoData(t *testing.T, b *browser, why string) {
	t.Helper()
	got := evalJS[string](b, `(() => {
		const ids = ["summary", "streams", "routes", "services", "deadletters", "reload"];
		const text = ids.map((id) => document.getElementById(id).textContent).join("");
		return (document.getElementById("main").hidden ? "" : "main visible ") + text + document.getElementById("banner").textContent;
	})()`)
	if got != "" {
		t.Errorf("%s: page shows data: %q", why, got)
	}
	if body := evalJS[string](b, `document.body.innerText`); strings.Contains(body, "orders-created") || strings.Contains(body, "orders-1") {
		t.Errorf("%s: page text names a route or instance: %q", why, body)
	}
}

// loginVisible waits until the token form is shown with the token field
// focused (so a keyboard user can type at once).
func loginVisible(t *testing.T, b *browser, what string) {
	t.Helper()
	b.waitText(what, "#login-msg", 10*time.Second, func(string) error {
		if evalJS[bool](b, `document.getElementById("login").hidden`) {
			return fmt.Errorf("token form hidden")
		}
		if id := evalJS[string](b, `document.activeElement ? document.activeElement.id : ""`); id != "token" {
			return fmt.Errorf("focus on %q, want the token field", id)
		}
		return nil
	})
}

// TestStatusPageNeedsToken: with admin.token set the page's shell loads
// without it but shows no data until the token is typed (keyboard only);
// the token is kept in sessionStorage, sent as a bearer header and never
// put in a URL; a token that stops working brings the prompt back with
// the data gone. On a phone-sized screen nothing overflows sideways.
func TestStatusPageNeedsToken(t *testing.T) {
	const token = "page-tok-5Qx9"
	h := newHarness(t)
	h.writeRules(statusRules)
	h.backend("orders", "orders-1")
	t.Setenv("GATEWAY_ADMIN_TOKEN", token)
	h.start([]string{"orders"}, "")
	h.publish("orders", "type", "order.created", "payload", `{}`)
	h.waitAcked(10*time.Second, "orders")

	b := newBrowser(t)
	if err := b.run(30*time.Second, chromedp.Emulate(device.IPhone13), chromedp.Navigate("http://"+h.admin+"/")); err != nil {
		t.Fatal(err)
	}
	loginVisible(t, b, "token prompt")
	pageShowsNoData(t, b, "before the token")
	savePageScreenshot(t, b, "status-token-prompt.png")

	// A wrong token: asked again, still nothing shown.
	if err := b.run(10*time.Second, chromedp.KeyEvent("wrong-token\r")); err != nil {
		t.Fatal(err)
	}
	b.waitText("wrong token rejected", "#login-msg", 10*time.Second, func(s string) error {
		if !strings.Contains(s, "rejected") {
			return fmt.Errorf("message %q", s)
		}
		return nil
	})
	loginVisible(t, b, "prompt after a wrong token")
	pageShowsNoData(t, b, "after a wrong token")

	// The right token, typed: data appears.
	if err := b.run(10*time.Second, chromedp.KeyEvent(token+"\r")); err != nil {
		t.Fatal(err)
	}
	b.waitText("route shown", `tr[data-route="orders-created"] td[data-col="matches"]`, 10*time.Second, equalsText("1"))
	b.waitText("instance shown", `tr[data-instance="orders-1"] td[data-col="state"]`, 10*time.Second, equalsText("healthy"))
	if h.status("/streams") == http.StatusNotFound { // until /streams exists the page says so
		if got := b.text("#streams"); !strings.Contains(got, "n/a") {
			t.Errorf("streams section without /streams = %q, want n/a", got)
		}
	}
	if got := evalJS[string](b, `sessionStorage.getItem("gateway-admin-token")`); got != token {
		t.Errorf("sessionStorage token = %q, want the typed token", got)
	}
	urls := evalJS[[]string](b, `[location.href, ...performance.getEntriesByType("resource").map((e) => e.name)]`)
	for _, u := range urls {
		if strings.Contains(u, token) {
			t.Errorf("token appears in URL %s", u)
		}
	}
	if len(urls) < 5 {
		t.Errorf("only %d URLs loaded (%v): the page did not fetch its data", len(urls), urls)
	}
	// Readable on a phone: nothing wider than the screen (tables scroll
	// inside their own boxes).
	// (clientWidth is the layout viewport: a mobile browser zooms out, and
	// so widens innerWidth, to fit content that overflows.)
	if sw, cw := evalJS[int](b, `document.documentElement.scrollWidth`), evalJS[int](b, `document.documentElement.clientWidth`); sw > cw {
		t.Errorf("page %d px wide on a %d px phone screen", sw, cw)
	}
	savePageScreenshot(t, b, "status-phone.png")
	// billing has no instance: the page says so, and so do the series the
	// no-healthy-instance and discovery-stale alerts read.
	b.waitText("billing without instances", `table[data-service="billing"] caption`, 5*time.Second, equalsText("billing 0 healthy"))
	for series, want := range map[string]float64{
		`gateway_instances{service="billing",state="healthy"}`:   0,
		`gateway_instances{service="orders",state="healthy"}`:    1,
		`gateway_discovery_staleness_seconds{service="billing"}`: 0,
	} {
		if got := h.metricValue(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}

	// The token stops working (rotated): the prompt comes back, data gone.
	evalJS[any](b, `sessionStorage.setItem("gateway-admin-token", "rotated-away"), null`)
	loginVisible(t, b, "prompt after the token stopped working")
	pageShowsNoData(t, b, "after the token stopped working")
}
