package health

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Check is one readiness check. Fn returns nil when ready; Detail, if set,
// adds information (for example "degraded") without failing readiness.
type Check struct {
	Name   string
	Fn     func(ctx context.Context) error
	Detail func() any
}

// Config configures the admin server.
type Config struct {
	Listen string // default 127.0.0.1:9595
	// Token, when set, is required as "Authorization: Bearer TOKEN" on every
	// endpoint but /healthz, /readyz and the status page's shell (GET / and
	// /assets/*, which hold no data).
	Token  string
	Logger *slog.Logger // default slog.Default()
}

// Sources are the read-only views the server reports. Nil functions make
// their endpoint answer 404.
type Sources struct {
	Gatherer  prometheus.Gatherer
	Checks    []Check
	Rules     func() any
	Instances func() any
	// Streams answers GET /streams: {"streams": Streams()}.
	Streams func() any
	// Explain dry-runs a message against the live rule set.
	Explain func(stream string, fields map[string]string) (any, error)
	// DeadLetters returns up to limit dead-letter entries, newest first,
	// for GET /deadletters (a JSON array; must not be nil).
	DeadLetters func(ctx context.Context, limit int) (any, error)
}

// Server is the admin HTTP server.
type Server struct {
	cfg     Config
	src     Sources
	metrics fasthttp.RequestHandler
	ln      net.Listener
}

// New binds the listen address (so a port conflict fails at start).
func New(cfg Config, src Sources) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9595"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", cfg.Listen, err)
	}
	s := &Server{cfg: cfg, src: src, ln: ln}
	if src.Gatherer != nil {
		s.metrics = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(src.Gatherer, promhttp.HandlerOpts{}))
	}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	srv := &fasthttp.Server{
		Handler: s.handle, Name: "gateway-admin",
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, MaxRequestBodySize: 1 << 20,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
		if err := srv.ShutdownWithContext(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("admin shutdown: %w", err)
		}
		<-errc
		return nil
	}
}

func (s *Server) handle(c *fasthttp.RequestCtx) {
	path := string(c.Path())
	switch path {
	case "/healthz":
		c.SetContentType("text/plain; charset=utf-8")
		c.SetBodyString("ok\n")
		return
	case "/readyz":
		s.readyz(c)
		return
	}
	if statusAsset(c, path) { // the status page's shell holds no data
		return
	}
	if !s.authorized(c) {
		c.Response.Header.Set("WWW-Authenticate", `Bearer realm="gateway-admin"`)
		writeJSON(c, fasthttp.StatusUnauthorized, map[string]string{"error": "unauthorized"})
		return
	}
	switch {
	case path == "/metrics" && s.metrics != nil:
		s.metrics(c)
	case path == "/rules" && s.src.Rules != nil:
		writeJSON(c, 200, s.src.Rules())
	case path == "/instances" && s.src.Instances != nil:
		writeJSON(c, 200, s.src.Instances())
	case path == "/streams" && s.src.Streams != nil:
		writeJSON(c, 200, map[string]any{"streams": s.src.Streams()})
	case path == "/explain" && s.src.Explain != nil:
		s.explain(c)
	case path == "/deadletters" && s.src.DeadLetters != nil:
		s.deadLetters(c)
	default:
		writeJSON(c, fasthttp.StatusNotFound, map[string]string{"error": "not found"})
	}
}

func (s *Server) authorized(c *fasthttp.RequestCtx) bool {
	if s.cfg.Token == "" {
		return true
	}
	want := []byte("Bearer " + s.cfg.Token)
	got := c.Request.Header.Peek("Authorization")
	return subtle.ConstantTimeCompare(got, want) == 1
}

type checkResult struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Detail any    `json:"detail,omitempty"`
}

func (s *Server) readyz(c *fasthttp.RequestCtx) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ready := true
	checks := make(map[string]checkResult, len(s.src.Checks))
	for _, ch := range s.src.Checks {
		r := checkResult{OK: true}
		if err := ch.Fn(ctx); err != nil {
			r = checkResult{OK: false, Error: err.Error()}
			ready = false
		}
		if ch.Detail != nil {
			r.Detail = ch.Detail()
		}
		checks[ch.Name] = r
	}
	status := 200
	if !ready {
		status = fasthttp.StatusServiceUnavailable
	}
	writeJSON(c, status, map[string]any{"ready": ready, "checks": checks})
}

type explainRequest struct {
	Stream string            `json:"stream"`
	Fields map[string]string `json:"fields"`
}

func (s *Server) explain(c *fasthttp.RequestCtx) {
	if !c.IsPost() {
		c.Response.Header.Set("Allow", "POST")
		writeJSON(c, fasthttp.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
		return
	}
	var req explainRequest
	if err := json.Unmarshal(c.PostBody(), &req); err != nil {
		writeJSON(c, fasthttp.StatusBadRequest, map[string]string{"error": "body must be JSON {\"stream\":..,\"fields\":{..}}: " + err.Error()})
		return
	}
	out, err := s.src.Explain(req.Stream, req.Fields)
	if err != nil {
		writeJSON(c, fasthttp.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(c, 200, out)
}

func writeJSON(c *fasthttp.RequestCtx, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		c.Error("encode: "+err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	c.SetStatusCode(status)
	c.SetContentType("application/json")
	c.SetBody(append(b, '\n'))
}
