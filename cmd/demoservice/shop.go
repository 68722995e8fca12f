package main

import (
	"encoding/json"
	"sync"

	"github.com/valyala/fasthttp"
)

// shop is the demo's order saga, served by every demoservice started with
// -shop: inventory (reserve, release, stock), payments (charge, declined
// above a total) and orders (cancel). Each instance keeps its own state,
// so the demo runs one inventory instance. Every step is idempotent per
// order ID, as a saga's steps must be: a redelivered reserve, release or
// cancel changes nothing the second time, and a reservation that arrives
// after its order was released is refused. Safe for concurrent use.
type shop struct {
	declineAbove float64 // charge answers 402 above this total; 0 = never

	mu        sync.Mutex
	stock     map[string]int
	initial   int
	held      map[string][]item // order ID -> items reserved and not released
	released  map[string]bool
	cancelled map[string]bool
	counts    shopCounts
}

// shopCounts are the saga's counters, as GET /saga answers them.
type shopCounts struct {
	Reserved  int64 `json:"reserved"`
	Released  int64 `json:"released"`
	Charged   int64 `json:"charged"`
	Declined  int64 `json:"declined"`
	Cancelled int64 `json:"cancelled"`
}

type item struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// order is the part of an order.created payload the saga reads.
type order struct {
	ID    json.RawMessage `json:"id"`
	Total float64         `json:"total"`
	Items []item          `json:"items"`
}

func newShop(initialStock int, declineAbove float64) *shop {
	return &shop{
		declineAbove: declineAbove, initial: initialStock, stock: map[string]int{},
		held: map[string][]item{}, released: map[string]bool{}, cancelled: map[string]bool{},
	}
}

// query answers GET /inventory (stock per SKU; SKUs never touched hold the
// initial stock) and GET /saga (counters).
func (s *shop) query(ctx *fasthttp.RequestCtx) bool {
	if !ctx.IsGet() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var v any
	switch string(ctx.Path()) {
	case "/inventory":
		stock := make(map[string]int, len(s.stock))
		for k, n := range s.stock {
			stock[k] = n
		}
		v = struct {
			Stock   map[string]int `json:"stock"`
			Initial int            `json:"initial"`
			Held    int            `json:"held_orders"`
		}{stock, s.initial, len(s.held)}
	case "/saga":
		v = s.counts
	default:
		return false
	}
	b, _ := json.Marshal(v)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
	return true
}

// respond handles the saga's POST steps; other paths get the default ack.
func (s *shop) respond(ctx *fasthttp.RequestCtx) bool {
	if !ctx.IsPost() {
		return false
	}
	path := string(ctx.Path())
	switch path {
	case "/inventory/reserve", "/inventory/release", "/payments/charge", "/orders/cancel":
	default:
		return false
	}
	var o order
	if err := json.Unmarshal(ctx.PostBody(), &o); err != nil || len(o.ID) == 0 {
		answer(ctx, fasthttp.StatusUnprocessableEntity, `{"ok":false,"reason":"not an order"}`)
		return true
	}
	id := string(o.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch path {
	case "/inventory/reserve":
		if s.released[id] {
			// Compensated before it got here (the reservation waited, the
			// payment failed meanwhile): holding stock now would leak it.
			answer(ctx, fasthttp.StatusConflict, `{"ok":false,"reason":"order already released"}`)
			return true
		}
		if _, dup := s.held[id]; dup {
			break // already reserved (a redelivery)
		}
		for _, it := range o.Items {
			if s.level(it.SKU) < it.Qty {
				answer(ctx, fasthttp.StatusConflict, `{"ok":false,"reason":"out of stock"}`)
				return true
			}
		}
		for _, it := range o.Items {
			s.stock[it.SKU] = s.level(it.SKU) - it.Qty
		}
		s.held[id] = o.Items
		s.counts.Reserved++
	case "/inventory/release":
		// Give back what is held; remember the order either way, so a
		// reservation that arrives after its compensation is refused.
		for _, it := range s.held[id] {
			s.stock[it.SKU] += it.Qty
		}
		delete(s.held, id)
		if !s.released[id] {
			s.released[id] = true
			s.counts.Released++
		}
	case "/payments/charge":
		if s.declineAbove > 0 && o.Total > s.declineAbove {
			s.counts.Declined++
			answer(ctx, fasthttp.StatusPaymentRequired, `{"ok":false,"reason":"payment declined"}`)
			return true
		}
		s.counts.Charged++
	case "/orders/cancel":
		if !s.cancelled[id] {
			s.cancelled[id] = true
			s.counts.Cancelled++
		}
	}
	answer(ctx, fasthttp.StatusOK, `{"ok":true,"step":"`+path+`"}`)
	return true
}

// level is the stock of sku (the initial stock if never touched). Callers
// hold s.mu.
func (s *shop) level(sku string) int {
	if n, ok := s.stock[sku]; ok {
		return n
	}
	return s.initial
}

func answer(ctx *fasthttp.RequestCtx, status int, body string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(body)
}
