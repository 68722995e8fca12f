package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	demo "github.com/msgroute/gateway/internal/backend"
	"github.com/msgroute/gateway/internal/testenv"
)

// demoService starts a demoservice process registered in the test's
// Consul and returns its address once its check passes.
func (h *harness) demoService(name, id string, args ...string) string {
	h.t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(h.t))
	cmd := exec.Command(binary(h.t, "demoservice"), append([]string{"-name", name, "-id", id, "-listen", addr,
		"-consul", h.consul.Addr, "-quiet"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := demo.WaitPassing(ctx, h.capi, name, 1); err != nil {
		h.t.Fatalf("demoservice %s: %v", id, err)
	}
	return addr
}

// getJSON decodes GET http://addr/path into v.
func getJSON(t *testing.T, addr, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

type inventory struct {
	Stock   map[string]int `json:"stock"`
	Initial int            `json:"initial"`
	Held    int            `json:"held_orders"`
}

func (inv inventory) level(sku string) int {
	if n, ok := inv.Stock[sku]; ok {
		return n
	}
	return inv.Initial
}

// TestSagaDeclinedOrderIsCompensated runs the demo's order saga with the
// shipped configs/rules.yaml and real demoservice processes: a declined
// order (payment 402) is reserved, dead-lettered at payment, and its
// on_failure event releases the stock and cancels the order, so inventory
// ends as it was; `gateway request` prints each step's outcome. An
// accepted order keeps its reservation.
func TestSagaDeclinedOrderIsCompensated(t *testing.T) {
	h := newHarness(t)
	rules, err := os.ReadFile("../../configs/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := os.ReadFile("../../configs/schemas/order.json")
	if err != nil {
		t.Fatal(err)
	}
	h.writeRules(string(rules))
	if err := os.MkdirAll(filepath.Join(h.dir, "schemas"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "schemas", "order.json"), schema, 0o644); err != nil {
		t.Fatal(err)
	}
	inv := h.demoService("inventory", "inventory-1", "-shop", "-stock", "100")
	pay := h.demoService("payments", "payments-1", "-shop", "-decline-above", "1000")
	ord := h.demoService("orders", "orders-1", "-shop", "-tags", "priority")
	// As scripts/demo.sh: audit subscribes in its own registration.
	h.demoService("audit", "audit-1", "-subscribe",
		`orders={"stream":"orders","match":"headers.type startsWith 'order.'","path":"/audit"}`)
	h.start([]string{"orders", "orders.compensate"}, "")
	cfg, _ := h.writeConfig("cli.yaml", "cli", []string{"orders"}, "")

	var before inventory
	getJSON(t, inv, "/inventory", &before)

	// Declined: reserve, charge (402), orders-created, audit/orders, then
	// the two compensations, each replying to the same reply_to.
	code, out, errText := cli("request", "--config", cfg, "--stream", "orders", "--timeout", "30s", "--replies", "6",
		"--field", "type=order.created", "--payload", `{"id":"o-declined","total":1500,"region":"us","items":[{"sku":"sku-7","qty":3}]}`)
	if code != 1 {
		t.Fatalf("declined order: exit %d, want 1\n%s\n%s", code, out, errText)
	}
	steps := map[string]string{}
	for _, r := range decodeReplies(t, out) {
		steps[r["route"]] = r["outcome"] + " " + r["status"]
	}
	t.Logf("declined order's steps: %v", steps)
	want := map[string]string{
		"inventory-reserve": "delivered 200", "payment-charge": "dead_lettered 402",
		"orders-created": "delivered 200", "audit/orders": "delivered 200",
		"inventory-release": "delivered 200", "order-cancel": "delivered 200",
	}
	for route, w := range want {
		if steps[route] != w {
			t.Errorf("step %s = %q, want %q", route, steps[route], w)
		}
	}
	var after inventory
	getJSON(t, inv, "/inventory", &after)
	if after.level("sku-7") != before.level("sku-7") || after.Held != 0 {
		t.Errorf("inventory after the declined order: sku-7 %d (before %d), held orders %d; want unchanged",
			after.level("sku-7"), before.level("sku-7"), after.Held)
	}

	// Accepted: reserved and charged, nothing compensated.
	code, out, errText = cli("request", "--config", cfg, "--stream", "orders", "--timeout", "30s", "--replies", "4",
		"--field", "type=order.created", "--payload", `{"id":"o-ok","total":40,"region":"us","items":[{"sku":"sku-7","qty":2}]}`)
	if code != 0 {
		t.Fatalf("accepted order: exit %d, want 0\n%s\n%s", code, out, errText)
	}
	h.waitAcked(15*time.Second, "orders", "orders.compensate")
	var final inventory
	getJSON(t, inv, "/inventory", &final)
	var invSaga, paySaga, ordSaga struct{ Reserved, Released, Charged, Declined, Cancelled int }
	getJSON(t, inv, "/saga", &invSaga)
	getJSON(t, pay, "/saga", &paySaga)
	getJSON(t, ord, "/saga", &ordSaga)
	t.Logf("sku-7 stock: %d before, %d after the declined order, %d after the accepted one; reserved %d, released %d, charged %d, declined %d, cancelled %d",
		before.level("sku-7"), after.level("sku-7"), final.level("sku-7"), invSaga.Reserved, invSaga.Released,
		paySaga.Charged, paySaga.Declined, ordSaga.Cancelled)
	if final.level("sku-7") != before.level("sku-7")-2 || final.Held != 1 {
		t.Errorf("after the accepted order: sku-7 %d, held %d; want %d and 1", final.level("sku-7"), final.Held, before.level("sku-7")-2)
	}
	got := fmt.Sprint(invSaga.Reserved, invSaga.Released, paySaga.Charged, paySaga.Declined, ordSaga.Cancelled)
	if got != "2 1 1 1 1" {
		t.Errorf("reserved, released, charged, declined, cancelled = %s, want 2 1 1 1 1", got)
	}
	var dlq []string
	for _, m := range h.dlq() {
		dlq = append(dlq, fmt.Sprint(m.Values["dlq_route"], "/", m.Values["dlq_reason"]))
	}
	if fmt.Sprint(dlq) != "[payment-charge/permanent_error]" {
		t.Errorf("dead letters = %v, want only the declined payment", dlq)
	}
}
