package main

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fasthttp"
)

func shopCall(t *testing.T, s *shop, method, path, body string) (int, string) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	ctx.Request.SetBodyString(body)
	if !s.query(&ctx) && !s.respond(&ctx) {
		return 0, ""
	}
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

// TestShopSagaSteps: reserve takes stock, release gives back exactly what
// was reserved, every step is idempotent per order, a reservation after its
// order's release is refused, payments above the limit are declined with
// 402.
func TestShopSagaSteps(t *testing.T) {
	s := newShop(10, 1000)
	order := `{"id":"o-1","total":1500,"items":[{"sku":"a","qty":3},{"sku":"b","qty":1}]}`
	steps := []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/inventory/reserve", order, 200},
		{"POST", "/inventory/reserve", order, 200}, // redelivery: no second reservation
		{"POST", "/payments/charge", order, 402},
		{"POST", "/payments/charge", `{"id":"o-2","total":20}`, 200},
		{"POST", "/inventory/release", order, 200},
		{"POST", "/inventory/release", order, 200}, // redelivery: nothing more released
		{"POST", "/orders/cancel", order, 200},
		{"POST", "/orders/cancel", order, 200},
		{"POST", "/inventory/reserve", `{"id":"o-3","items":[{"sku":"a","qty":11}]}`, 409},
		// Compensation before the action: the late reservation is refused.
		{"POST", "/inventory/release", `{"id":"o-4","items":[{"sku":"a","qty":2}]}`, 200},
		{"POST", "/inventory/reserve", `{"id":"o-4","items":[{"sku":"a","qty":2}]}`, 409},
		{"POST", "/inventory/reserve", `not json`, 422},
	}
	for _, st := range steps {
		if got, body := shopCall(t, s, st.method, st.path, st.body); got != st.status {
			t.Errorf("%s %s %s = %d %s, want %d", st.method, st.path, st.body, got, body, st.status)
		}
	}
	_, body := shopCall(t, s, "GET", "/inventory", "")
	var inv struct {
		Stock map[string]int `json:"stock"`
		Held  int            `json:"held_orders"`
	}
	if err := json.Unmarshal([]byte(body), &inv); err != nil {
		t.Fatal(err)
	}
	if inv.Stock["a"] != 10 || inv.Stock["b"] != 10 || inv.Held != 0 {
		t.Errorf("inventory after reserve+release = %s, want a and b back at 10, nothing held", body)
	}
	_, body = shopCall(t, s, "GET", "/saga", "")
	if want := `{"reserved":1,"released":2,"charged":1,"declined":1,"cancelled":1}`; body != want {
		t.Errorf("GET /saga = %s, want %s", body, want)
	}
	if code, _ := shopCall(t, s, "POST", "/other", order); code != 0 {
		t.Errorf("POST /other answered by the shop (%d), want the default ack", code)
	}
}
