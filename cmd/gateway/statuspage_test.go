package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/msgroute/gateway/health"
)

const statusRules = `
routes:
  - name: orders-created
    streams: [orders]
    match: 'headers.type == "order.created"'
    service: orders
  - name: big-bills
    streams: [orders]
    match: 'headers.type == "bill" && body.total > 1000'
    priority: 10
    service: billing
  - name: billing
    streams: [orders]
    match: 'headers.type == "bill"'
    service: billing
default:
  action: dlq
`

// metricValue reads one sample from the gateway's /metrics, e.g.
// metricValue(`gateway_route_matches_total{route="x"}`); -1 when absent.
func (h *harness) metricValue(series string) float64 {
	h.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+h.admin+"/metrics", nil)
	if tok := os.Getenv("GATEWAY_ADMIN_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				h.t.Fatalf("/metrics %s: %v", series, err)
			}
			return f
		}
	}
	return -1
}

// openStatusPage navigates to the admin server's status page.
func openStatusPage(t *testing.T, h *harness, addr string) *browser {
	t.Helper()
	b := newBrowser(t)
	if err := b.run(30*time.Second, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatalf("open status page: %v", err)
	}
	return b
}

// savePageScreenshot saves a screenshot in the test's temp dir (and, when
// GATEWAY_SCREENSHOT names a file, there too: `make screenshot`).
func savePageScreenshot(t *testing.T, b *browser, name string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	b.screenshot(p)
	t.Logf("screenshot: %s", p)
	if out := os.Getenv("GATEWAY_SCREENSHOT"); out != "" && name == "status.png" {
		b.screenshot(out)
		t.Logf("screenshot: %s", out)
	}
}

// waitRendered waits until the page has rendered data once.
func waitRendered(t *testing.T, h *harness, b *browser) {
	t.Helper()
	h.waitFor("first data rendered", 15*time.Second, func() error {
		if evalJS[string](b, `document.body.dataset.rendered || ""`) == "" {
			return fmt.Errorf("no data rendered yet")
		}
		return nil
	})
}

func equalsText(want string) func(string) error {
	return func(got string) error {
		if strings.TrimSpace(got) != want {
			return fmt.Errorf("text %q, want %q", got, want)
		}
		return nil
	}
}

// TestStatusPageLive drives the status page in headless Chromium against a
// running gateway (real Redis, Consul, HTTP services): traffic makes its
// numbers move and match /metrics, an instance failing its Consul check
// shows within 3 s, a dead letter appears, and a Redis outage turns the
// red banner on.
func TestStatusPageLive(t *testing.T) {
	h := newHarness(t)
	h.writeRules(statusRules)
	h.backend("orders", "orders-a")
	ob := h.backend("orders", "orders-b")
	bill := h.backend("billing", "billing-1")
	bill.status.Store(400) // permanent: straight to the DLQ
	h.start([]string{"orders"}, "")

	// Load time: straight from the admin server, navigation start to the
	// first data rendered (the page's "first-data" performance mark).
	b := openStatusPage(t, h, h.admin)
	waitRendered(t, h, b)
	loadMs := evalJS[float64](b, `performance.getEntriesByName("first-data")[0].startTime`)
	t.Logf("status page: %d bytes of embedded assets; first data rendered %.0f ms after navigation start", health.AssetBytes(), loadMs)

	// Keyboard: Tab reaches the skip link, Enter jumps to the content, and
	// Tab then walks the data regions (wide tables scroll with the arrows).
	focused := func() string {
		return evalJS[string](b, `(() => { const e = document.activeElement; return e ? (e.id || e.className || e.tagName) : ""; })()`)
	}
	for _, step := range []struct{ keys, want string }{{"\t", "skip"}, {"\r", "main"}, {"\t", "streams"}, {"\t", "routes"}} {
		if err := b.run(10*time.Second, chromedp.KeyEvent(step.keys)); err != nil {
			t.Fatal(err)
		}
		h.waitFor("keyboard focus on "+step.want, 5*time.Second, func() error {
			if got := focused(); got != step.want {
				return fmt.Errorf("focus on %q", got)
			}
			return nil
		})
	}

	// The rest through a shim that adds /streams while the gateway has none.
	if err := b.run(30*time.Second, chromedp.Navigate("http://"+h.streamsShim()+"/")); err != nil {
		t.Fatal(err)
	}
	waitRendered(t, h, b)
	if b.text("#state") != "ready" {
		t.Errorf("readiness pill = %q, want ready", b.text("#state"))
	}

	// Traffic: matches/s goes above 0 while it flows; afterwards the page's
	// count is the /metrics counter.
	load := h.steadyLoad("orders", 100)
	b.waitText("matches/s above 0", `[data-tile="rate"] b`, 10*time.Second, func(s string) error {
		if v, err := strconv.ParseFloat(s, 64); err != nil || v <= 0 {
			return fmt.Errorf("rate tile %q", s)
		}
		return nil
	})
	load.halt()
	h.waitAcked(20*time.Second, "orders")
	series := `gateway_route_matches_total{route="orders-created"}`
	want := h.metricValue(series)
	if want < float64(load.count()) {
		t.Fatalf("%s = %v after %d messages", series, want, load.count())
	}
	b.waitText("route matches equal /metrics", `tr[data-route="orders-created"] td[data-col="matches"]`, 5*time.Second,
		equalsText(strconv.FormatFloat(want, 'f', -1, 64)))
	xlen, err := h.rdb.XLen(context.Background(), "orders").Result()
	if err != nil {
		t.Fatal(err)
	}
	// (/streams is refreshed every few seconds, not on every request.)
	b.waitText("stream length", `#streams tr[data-stream="orders"] td[data-col="length"]`, 15*time.Second, equalsText(strconv.FormatInt(xlen, 10)))
	b.waitText("nothing pending", `#streams tr[data-stream="orders"] td[data-col="pending"]`, 15*time.Second, equalsText("0"))
	for _, id := range []string{"orders-a", "orders-b"} {
		b.waitText(id+" healthy", fmt.Sprintf(`tr[data-instance=%q] td[data-col="state"]`, id), 5*time.Second, equalsText("healthy"))
	}

	// An instance failing its Consul check is shown within 3 s.
	h.setHealth(ob, false)
	took := b.waitText("orders-b gone", `tr[data-instance="orders-b"][data-state="gone"] td[data-col="state"]`, 3*time.Second,
		func(s string) error {
			if !strings.HasPrefix(s, "gone") {
				return fmt.Errorf("state %q", s)
			}
			return nil
		})
	t.Logf("instance turned critical in Consul: shown on the page after %s", took.Round(time.Millisecond))

	// A dead letter appears at the top of the list.
	id := h.publish("orders", "type", "bill", "payload", `{"total":"lots"}`)
	b.waitText("dead letter listed", `#deadletters tbody tr:first-child td[data-col="message"]`, 10*time.Second, equalsText("orders "+id))
	for col, want := range map[string]string{"dlq_reason": "permanent_error", "dlq_route": "billing", "dlq_status": "400"} {
		if got := b.text(`#deadletters tbody tr:first-child td[data-col="` + col + `"]`); got != want {
			t.Errorf("dead letter %s = %q, want %q", col, got, want)
		}
	}
	if got := b.text(`[data-tile="dlq"] b`); got != "1" {
		t.Errorf("recent dead letters tile = %q, want 1", got)
	}
	if got := h.metricValue(`gateway_dlq_total{reason="permanent_error"}`); got != 1 {
		t.Errorf(`gateway_dlq_total{reason="permanent_error"} = %v, want 1 (the page lists 1)`, got)
	}
	// The bill's body.total is no number: big-bills counted an eval error.
	evalErrs := h.metricValue(`gateway_rule_eval_errors_total{route="big-bills"}`)
	if evalErrs != 1 {
		t.Errorf("gateway_rule_eval_errors_total{route=\"big-bills\"} = %v, want 1", evalErrs)
	}
	b.waitText("eval errors equal /metrics", `tr[data-route="big-bills"] td[data-col="eval_errors"]`, 5*time.Second, equalsText("1"))
	savePageScreenshot(t, b, "status.png")

	// A rejected reload: the page shows the error; the old rules stay.
	h.writeRules(strings.Replace(statusRules, `match: 'headers.type == "order.created"'`, `match: 'headers.type =='`, 1))
	b.waitText("reload error shown", "#last-error", 10*time.Second, func(s string) error {
		if !strings.Contains(s, "last reload rejected") || !strings.Contains(s, "orders-created") {
			return fmt.Errorf("last-error %q", s)
		}
		return nil
	})

	// Not ready: the red banner names the failing check, and goes away.
	h.redis.Stop()
	b.waitText("banner on", "#banner", 10*time.Second, func(s string) error {
		if hidden := evalJS[bool](b, `document.getElementById("banner").hidden`); hidden || !strings.Contains(s, "redis") {
			return fmt.Errorf("banner hidden, %q", s)
		}
		return nil
	})
	if title := evalJS[string](b, `document.title`); !strings.HasPrefix(title, "NOT READY") {
		t.Errorf("page title while not ready = %q, want it to start with NOT READY (seen in a background tab)", title)
	}
	savePageScreenshot(t, b, "status-not-ready.png")
	// It keeps refreshing at least every 2 s while endpoints are slow or
	// failing (Redis down: /readyz and /deadletters wait for it).
	renders := func() int { return int(evalJS[float64](b, `Number(document.body.dataset.renders || 0)`)) }
	from, start := renders(), time.Now()
	h.waitFor("3 more refreshes", 15*time.Second, func() error {
		if n := renders() - from; n < 3 {
			return fmt.Errorf("%d refreshes", n)
		}
		return nil
	})
	if took := time.Since(start); took > 6*time.Second+500*time.Millisecond {
		t.Errorf("3 refreshes took %s with Redis down, want at most 2 s each", took)
	} else {
		t.Logf("3 refreshes with Redis down took %s", took.Round(time.Millisecond))
	}
	h.redis.Start()
	b.waitText("banner off", "#state", 20*time.Second, equalsText("ready"))
	if title := evalJS[string](b, `document.title`); title != "gateway status" {
		t.Errorf("page title when ready again = %q, want gateway status", title)
	}
}

// streamsShim serves the admin server through a reverse proxy that
// answers GET /streams itself while the gateway has none (404), in the
// shape of the gateway's /streams, from the real Redis (XLEN, XINFO
// GROUPS, XPENDING). It returns the proxy's address.
func (h *harness) streamsShim() string {
	h.t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: h.admin})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/streams" {
			rp.ServeHTTP(w, r)
			return
		}
		if resp, err := http.Get("http://" + h.admin + "/streams"); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				rp.ServeHTTP(w, r)
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), 500*time.Millisecond)
		defer cancel()
		row := map[string]any{"stream": "orders", "group": "gateway", "consumed_per_sec": 0, "trimmed_total": 0,
			"ordered": false, "owner": "", "oldest_age_seconds": 0, "oldest_unfinished_age_seconds": 0}
		row["length"], _ = h.rdb.XLen(ctx, "orders").Result()
		groups, _ := h.rdb.XInfoGroups(ctx, "orders").Result()
		for _, g := range groups {
			if g.Name == "gateway" {
				row["lag"], row["pending"] = g.Lag, g.Pending
			}
		}
		if first, err := h.rdb.XRangeN(ctx, "orders", "-", "+", 1).Result(); err == nil && len(first) == 1 {
			ms, _ := strconv.ParseInt(strings.Split(first[0].ID, "-")[0], 10, 64)
			row["oldest_age_seconds"] = time.Since(time.UnixMilli(ms)).Seconds()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"streams": []any{row}})
	}))
	h.t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// status is the admin endpoint's HTTP status (with the admin token, if the
// test set one).
func (h *harness) status(path string) int {
	h.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+h.admin+path, nil)
	if tok := os.Getenv("GATEWAY_ADMIN_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
