package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Config describes one backend instance.
type Config struct {
	// Name is the service name (Consul service), required.
	Name string
	// ID is the instance ID; default Name.
	ID string
	// Latency is the service-time model; zero answers at once.
	Latency Latency
	// ErrorRate is the fraction of messages answered 503, in [0, 1]; default 0.
	ErrorRate float64
	// Logger, when set, gets one line per received message (never the body).
	// Nil logs nothing: benchmarks must not pay for logging.
	Logger *slog.Logger
	// OnMessage, when set, is called for every message on arrival, before
	// the modelled latency. It runs on the request goroutine, concurrently
	// with other calls; the Message's slices are valid only during the call.
	OnMessage func(*Message)
	// Query, when set, is offered every request but GET /health and GET
	// /stats first; it returns true when it answered (reads of the
	// service's own state, not counted as messages).
	Query func(*fasthttp.RequestCtx) bool
	// Respond, when set, answers a message in place of the default
	// acknowledgement (after the counters, logging and modelled latency);
	// it returns false to leave the default answer. Error-rate answers
	// still apply first.
	Respond func(*fasthttp.RequestCtx) bool
}

// Message is what a backend saw of one request. Byte slices alias the
// request and must not be kept after OnMessage returns.
type Message struct {
	Received time.Time
	// ServiceTime is the modelled latency this request will be answered
	// after: Received+ServiceTime is when the instance finishes it.
	ServiceTime    time.Duration
	Method         []byte
	Path           []byte
	Route          []byte
	MessageID      []byte
	CorrelationID  []byte
	Attempt        []byte
	IdempotencyKey []byte
	Body           []byte

	hdr *fasthttp.RequestHeader
}

// Header returns the value of any other request header (for example an
// X-Msg-* attribute), nil when absent.
func (m *Message) Header(name string) []byte {
	if m.hdr == nil {
		return nil
	}
	return m.hdr.Peek(name)
}

// Stats are a backend's counters. Received counts messages (not health
// checks); MaxInFlight is the largest number handled at once so far.
type Stats struct {
	Received    int64
	Errors      int64
	InFlight    int64
	MaxInFlight int64
}

// Backend is one instance. Its methods are safe for concurrent use.
type Backend struct {
	cfg      Config
	ack      []byte
	nack     []byte
	healthy  atomic.Bool
	received atomic.Int64
	errors   atomic.Int64
	inflight atomic.Int64
	maxIn    atomic.Int64
	srv      *fasthttp.Server
}

// New validates cfg and builds a backend; call Serve or Run to listen.
func New(cfg Config) (*Backend, error) {
	if cfg.Name == "" {
		return nil, errors.New("backend: name is required")
	}
	if cfg.ID == "" {
		cfg.ID = cfg.Name
	}
	if cfg.ErrorRate < 0 || cfg.ErrorRate > 1 {
		return nil, fmt.Errorf("backend: error rate %v not in [0,1]", cfg.ErrorRate)
	}
	b := &Backend{cfg: cfg}
	b.ack = ackBody(true, cfg.Name, cfg.ID)
	b.nack = ackBody(false, cfg.Name, cfg.ID)
	b.healthy.Store(true)
	b.srv = &fasthttp.Server{
		Handler:              b.Handle,
		Name:                 "demoservice",
		NoDefaultDate:        true,
		NoDefaultContentType: true,
		ReadTimeout:          30 * time.Second,
		IdleTimeout:          60 * time.Second,
	}
	return b, nil
}

func ackBody(ok bool, name, id string) []byte {
	b, _ := json.Marshal(struct {
		OK      bool   `json:"ok"`
		Service string `json:"service"`
		ID      string `json:"id"`
	}{ok, name, id})
	return b
}

// ID is the instance ID.
func (b *Backend) ID() string { return b.cfg.ID }

// Name is the service name.
func (b *Backend) Name() string { return b.cfg.Name }

// SetHealthy makes GET /health answer 200 (true) or 503 (false), so tests
// and benchmarks can fail an instance's Consul check.
func (b *Backend) SetHealthy(ok bool) { b.healthy.Store(ok) }

// Stats returns a snapshot of the counters.
func (b *Backend) Stats() Stats {
	return Stats{
		Received:    b.received.Load(),
		Errors:      b.errors.Load(),
		InFlight:    b.inflight.Load(),
		MaxInFlight: b.maxIn.Load(),
	}
}

// ResetMaxInFlight restarts the MaxInFlight high-water mark from the
// current in-flight count, so a benchmark can measure one run at a time.
func (b *Backend) ResetMaxInFlight() { b.maxIn.Store(b.inflight.Load()) }

// Serve answers requests on ln until Shutdown.
func (b *Backend) Serve(ln net.Listener) error { return b.srv.Serve(ln) }

// Shutdown stops accepting and waits for open requests to finish.
func (b *Backend) Shutdown() error { return b.srv.Shutdown() }

// Run serves on ln until ctx is done, then shuts down gracefully. It
// returns after the server has stopped.
func (b *Backend) Run(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("backend %s: serve: %w", b.cfg.ID, err)
	case <-ctx.Done():
	}
	if err := b.Shutdown(); err != nil {
		return fmt.Errorf("backend %s: shutdown: %w", b.cfg.ID, err)
	}
	return <-errc
}

// Handle is the fasthttp handler: GET /health is the Consul check, GET
// /stats answers the counters as JSON, every other request is a message.
func (b *Backend) Handle(ctx *fasthttp.RequestCtx) {
	if ctx.IsGet() && string(ctx.Path()) == "/stats" {
		s := b.Stats()
		ctx.SetContentType("application/json")
		fmt.Fprintf(ctx, `{"received":%d,"errors":%d,"inflight":%d,"max_inflight":%d}`, s.Received, s.Errors, s.InFlight, s.MaxInFlight)
		return
	}
	if ctx.IsGet() && string(ctx.Path()) == "/health" {
		if !b.healthy.Load() {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			return
		}
		ctx.SetBodyString("ok")
		return
	}
	if b.cfg.Query != nil && b.cfg.Query(ctx) {
		return
	}
	now := time.Now()
	b.received.Add(1)
	n := b.inflight.Add(1)
	defer b.inflight.Add(-1)
	for m := b.maxIn.Load(); n > m && !b.maxIn.CompareAndSwap(m, n); m = b.maxIn.Load() {
	}
	d := b.cfg.Latency.Sample()
	if b.cfg.OnMessage != nil || b.cfg.Logger != nil {
		b.observe(ctx, now, d)
	}
	if d > 0 {
		time.Sleep(d)
	}
	ctx.SetContentType("application/json")
	if b.cfg.ErrorRate > 0 && rand.Float64() < b.cfg.ErrorRate {
		b.errors.Add(1)
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBody(b.nack)
		return
	}
	if b.cfg.Respond != nil && b.cfg.Respond(ctx) {
		return
	}
	ctx.SetBody(b.ack)
}

func (b *Backend) observe(ctx *fasthttp.RequestCtx, now time.Time, service time.Duration) {
	h := &ctx.Request.Header
	m := Message{
		Received:       now,
		ServiceTime:    service,
		Method:         ctx.Method(),
		Path:           ctx.Path(),
		Route:          h.Peek("X-Route"),
		MessageID:      h.Peek("X-Message-Id"),
		CorrelationID:  h.Peek("X-Correlation-Id"),
		Attempt:        h.Peek("X-Delivery-Attempt"),
		IdempotencyKey: h.Peek("Idempotency-Key"),
		Body:           ctx.PostBody(),
		hdr:            h,
	}
	if b.cfg.OnMessage != nil {
		b.cfg.OnMessage(&m)
	}
	if b.cfg.Logger != nil {
		b.cfg.Logger.Info("message received",
			slog.String("instance", b.cfg.ID),
			slog.String("method", string(m.Method)),
			slog.String("path", string(m.Path)),
			slog.String("route", string(m.Route)),
			slog.String("msg_id", string(m.MessageID)),
			slog.String("correlation_id", string(m.CorrelationID)),
			slog.String("attempt", string(m.Attempt)),
			slog.String("idempotency_key", string(m.IdempotencyKey)),
			slog.Int("body_bytes", len(m.Body)),
		)
	}
}
